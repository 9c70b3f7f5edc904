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

// tanh32x8 is tanh32 on 8 lanes.
func tanh32x8(x archsimd.Float32x8) archsimd.Float32x8 {
	const clamp = 7.90531110763549805
	hi, lo := bcast(clamp), bcast(-clamp)
	x = hi.Merge(x, x.Greater(hi)) // NaN fails both comparisons and stays
	x = lo.Merge(x, x.Less(lo))
	x2 := x.Mul(x)
	p := bcast(-2.76076847742355e-16).Mul(x2).Add(bcast(2.00018790482477e-13))
	p = p.Mul(x2).Add(bcast(-8.60467152213735e-11))
	p = p.Mul(x2).Add(bcast(5.12229709037114e-08))
	p = p.Mul(x2).Add(bcast(1.48572235717979e-05))
	p = p.Mul(x2).Add(bcast(6.37261928875436e-04))
	p = p.Mul(x2).Add(bcast(4.89352455891786e-03))
	q := bcast(1.19825839466702e-06).Mul(x2).Add(bcast(1.18534705686654e-04))
	q = q.Mul(x2).Add(bcast(2.26843463243900e-03))
	q = q.Mul(x2).Add(bcast(4.89352518554385e-03))
	return p.Mul(x).Div(q)
}

func geluForwardVec(out, th, inp []float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(inp) &^ 7
	out, th = out[:n], th[:n]
	c, scale, half, one := bcast(0.044715), bcast(geluScale), bcast(0.5), bcast(1)
	for i := 0; i < n; i += 8 {
		x := archsimd.LoadFloat32x8Slice(inp[i : i+8])
		u := c.Mul(x).Mul(x).Mul(x).Add(x).Mul(scale)
		t := tanh32x8(u)
		t.StoreSlice(th[i : i+8])
		half.Mul(x).Mul(one.Add(t)).StoreSlice(out[i : i+8])
	}
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
	return n
}
