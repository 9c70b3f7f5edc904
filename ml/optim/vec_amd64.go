//go:build goexperiment.simd && amd64

package optim

import "simd/archsimd"

var vecAVX2 = archsimd.X86.AVX2()

// adamwVec is the AdamW loop of Update on 8 lanes at a time, with the
// scalar loop's float32 operations in the same order (no fused
// multiply-add; VSQRTPS is the correctly rounded square root, as is
// float32(math.Sqrt(float64(x)))), so its bits are the scalar loop's. It
// returns how many leading elements it updated.
func adamwVec(p, g, m, v []float32, b1, b2, bc1, bc2, lr, eps, decay float32) int {
	if !vecAVX2 {
		return 0
	}
	n := len(p) &^ 7
	g, m, v = g[:n], m[:n], v[:n]
	vb1, vb2 := archsimd.BroadcastFloat32x8(b1), archsimd.BroadcastFloat32x8(b2)
	c1, c2 := archsimd.BroadcastFloat32x8(1-b1), archsimd.BroadcastFloat32x8(1-b2)
	vbc1, vbc2 := archsimd.BroadcastFloat32x8(bc1), archsimd.BroadcastFloat32x8(bc2)
	vlr, veps, vdec := archsimd.BroadcastFloat32x8(lr), archsimd.BroadcastFloat32x8(eps), archsimd.BroadcastFloat32x8(decay)
	for i := 0; i < n; i += 8 {
		gi := archsimd.LoadFloat32x8Slice(g[i : i+8])
		mi := vb1.Mul(archsimd.LoadFloat32x8Slice(m[i : i+8])).Add(c1.Mul(gi))
		vi := vb2.Mul(archsimd.LoadFloat32x8Slice(v[i : i+8])).Add(c2.Mul(gi).Mul(gi))
		mi.StoreSlice(m[i : i+8])
		vi.StoreSlice(v[i : i+8])
		mhat := mi.Div(vbc1)
		vhat := vi.Div(vbc2)
		pi := archsimd.LoadFloat32x8Slice(p[i : i+8])
		pi = pi.Sub(vdec.Mul(pi))
		pi = pi.Sub(vlr.Mul(mhat).Div(vhat.Sqrt().Add(veps)))
		pi.StoreSlice(p[i : i+8])
	}
	archsimd.ClearAVXUpperBits() // the scalar code after us is SSE: avoid the dirty-upper-state penalty
	return n
}
