//go:build goexperiment.simd && amd64

package gpt

import "simd/archsimd"

// AVX2 versions of the elementwise loops. Each lane performs exactly the
// float32 operations of the scalar loop in the same order (separate
// multiplies and adds, no fused multiply-add), so results are bit-identical
// to the pure-Go build; TestVectorLoopsMatchScalar checks that. Each
// function handles a multiple of 8 elements and returns how many; the
// caller runs the scalar loop on the rest.

var vecAVX2 = archsimd.X86.AVX2()

func bcast(x float32) archsimd.Float32x8 { return archsimd.BroadcastFloat32x8(x) }

// tanhK holds tanh32's constants broadcast once per loop: broadcasting
// inside the loop cost more than the arithmetic.
type tanhK struct {
	hi, lo                     archsimd.Float32x8
	p0, p1, p2, p3, p4, p5, p6 archsimd.Float32x8
	q0, q1, q2, q3             archsimd.Float32x8
}

func newTanhK() *tanhK {
	const clamp = 7.90531110763549805
	return &tanhK{hi: bcast(clamp), lo: bcast(-clamp),
		p0: bcast(-2.76076847742355e-16), p1: bcast(2.00018790482477e-13), p2: bcast(-8.60467152213735e-11),
		p3: bcast(5.12229709037114e-08), p4: bcast(1.48572235717979e-05), p5: bcast(6.37261928875436e-04),
		p6: bcast(4.89352455891786e-03),
		q0: bcast(1.19825839466702e-06), q1: bcast(1.18534705686654e-04), q2: bcast(2.26843463243900e-03),
		q3: bcast(4.89352518554385e-03)}
}

// tanh is tanh32 on 8 lanes.
func (k *tanhK) tanh(x archsimd.Float32x8) archsimd.Float32x8 {
	x = k.hi.Merge(x, x.Greater(k.hi)) // NaN fails both comparisons and stays
	x = k.lo.Merge(x, x.Less(k.lo))
	x2 := x.Mul(x)
	p := k.p0.Mul(x2).Add(k.p1)
	p = p.Mul(x2).Add(k.p2)
	p = p.Mul(x2).Add(k.p3)
	p = p.Mul(x2).Add(k.p4)
	p = p.Mul(x2).Add(k.p5)
	p = p.Mul(x2).Add(k.p6)
	q := k.q0.Mul(x2).Add(k.q1)
	q = q.Mul(x2).Add(k.q2)
	q = q.Mul(x2).Add(k.q3)
	return p.Mul(x).Div(q)
}

func geluForwardVec(out, th, inp []float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(inp) &^ 7
	out, th = out[:n], th[:n]
	c, scale, half, one := bcast(0.044715), bcast(geluScale), bcast(0.5), bcast(1)
	k := newTanhK()
	for i := 0; i < n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(inp[i : i+8])
		u := c.Mul(x).Mul(x).Mul(x).Add(x).Mul(scale)
		t := k.tanh(u)
		t.StoreSlice(th[i : i+8])
		half.Mul(x).Mul(one.Add(t)).StoreSlice(out[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

func geluBackwardVec(dinp, inp, th, dout []float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(inp) &^ 7
	dinp, th, dout = dinp[:n], th[:n], dout[:n]
	c3, scale, half, one := bcast(3*0.044715), bcast(geluScale), bcast(0.5), bcast(1)
	for i := 0; i < n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(inp[i : i+8])
		t := archsimd.LoadFloat32x8Slice(th[i : i+8])
		sech2 := one.Sub(t.Mul(t))
		a := half.Mul(one.Add(t))
		b := half.Mul(x).Mul(sech2).Mul(scale).Mul(one.Add(c3.Mul(x).Mul(x)))
		local := a.Add(b)
		d := archsimd.LoadFloat32x8Slice(dinp[i : i+8])
		d.Add(local.Mul(archsimd.LoadFloat32x8Slice(dout[i : i+8]))).StoreSlice(dinp[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

// addVec: out = a + b.
func addVec(out, a, b []float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(out) &^ 7
	a, b = a[:n], b[:n]
	for i := 0; i < n; i += 8 {
		archsimd.LoadFloat32x8Slice(a[i : i+8]).Add(archsimd.LoadFloat32x8Slice(b[i : i+8])).StoreSlice(out[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

// accumulateVec: dst += src.
func accumulateVec(dst, src []float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(dst) &^ 7
	src = src[:n]
	for i := 0; i < n; i += 8 {
		archsimd.LoadFloat32x8Slice(dst[i : i+8]).Add(archsimd.LoadFloat32x8Slice(src[i : i+8])).StoreSlice(dst[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

// lnParamGradVec: dbias += d; dweight += (x - m) * rs * d.
func lnParamGradVec(dweight, dbias, x, d []float32, m, rs float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(x) &^ 7
	dweight, dbias, d = dweight[:n], dbias[:n], d[:n]
	mv, rv := bcast(m), bcast(rs)
	for i := 0; i < n; i += 8 {
		dv := archsimd.LoadFloat32x8Slice(d[i : i+8])
		archsimd.LoadFloat32x8Slice(dbias[i : i+8]).Add(dv).StoreSlice(dbias[i : i+8])
		xv := archsimd.LoadFloat32x8Slice(x[i : i+8])
		g := xv.Sub(mv).Mul(rv).Mul(dv)
		archsimd.LoadFloat32x8Slice(dweight[i : i+8]).Add(g).StoreSlice(dweight[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

// expK holds exp32's constants, broadcast once.
type expK struct {
	magic, log2e, ln2hi, ln2lo, low, zero, one archsimd.Float32x8
	y0, y1, y2, y3, y4, y5                     archsimd.Float32x8
	bias                                       archsimd.Int32x8
}

// expConsts is nil without AVX2 (broadcasting would fault there).
var expConsts = newExpK()

func newExpK() *expK {
	if !vecAVX2 {
		return nil
	}
	return &expK{magic: bcast(12582912), log2e: bcast(1.44269504088896341),
		ln2hi: bcast(0.693359375), ln2lo: bcast(-2.12194440e-4), low: bcast(-87.33654), zero: bcast(0), one: bcast(1),
		y0: bcast(1.9875691500e-4), y1: bcast(1.3981999507e-3), y2: bcast(8.3334519073e-3),
		y3: bcast(4.1665795894e-2), y4: bcast(1.6666665459e-1), y5: bcast(5.0000001201e-1),
		bias: archsimd.BroadcastInt32x8(127)}
}

// exp is exp32 on 8 lanes (x <= 88).
func (k *expK) exp(x archsimd.Float32x8) archsimd.Float32x8 {
	n := x.Mul(k.log2e).Add(k.magic).Sub(k.magic)
	r := x.Sub(n.Mul(k.ln2hi)).Sub(n.Mul(k.ln2lo))
	y := k.y0.Mul(r).Add(k.y1)
	y = y.Mul(r).Add(k.y2)
	y = y.Mul(r).Add(k.y3)
	y = y.Mul(r).Add(k.y4)
	y = y.Mul(r).Add(k.y5)
	pow2 := n.ConvertToInt32().Add(k.bias).ShiftAllLeft(23).AsFloat32x8()
	e := y.Mul(r.Mul(r)).Add(r).Add(k.one).Mul(pow2)
	return k.zero.Merge(e, x.Less(k.low)) // NaN stays NaN
}

// expShiftVec: r[i] = exp32(r[i] - shift).
func expShiftVec(r []float32, shift float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(r) &^ 7
	s := bcast(shift)
	k := expConsts
	for i := 0; i < n; i += 8 {
		k.exp(archsimd.LoadFloat32x8Slice(r[i : i+8]).Sub(s)).StoreSlice(r[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}

// scaleVec: r[i] *= c.
func scaleVec(r []float32, c float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(r) &^ 7
	cv := bcast(c)
	for i := 0; i < n; i += 8 {
		archsimd.LoadFloat32x8Slice(r[i : i+8]).Mul(cv).StoreSlice(r[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}
