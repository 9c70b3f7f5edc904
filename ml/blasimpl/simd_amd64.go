//go:build goexperiment.simd && amd64

package blasimpl

import (
	"simd/archsimd"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var _ = registerSimd()

func registerSimd() bool {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		return register(registration{short: "simd", priority: 10, make: func() Backend { return &simdBackend{t: bestSimdTiler()} }})
	}
	return false
}

// bestSimdTiler picks the micro-kernel. An AVX-512 6x32 variant (same
// bits) measured slower here: Go's register allocator uses only 15 vector
// registers, so its 12 Float32x16 accumulators spill (docs/bench/gemm.md).
func bestSimdTiler() simdTiler {
	return simdTiler{nr: 16, kernel: kernel6x16}
}

// simdBackend is a packed, register-blocked AVX2+FMA Sgemm (GotoBLAS
// layout): op(B) is packed into kc x nr panels, op(A) into mr x kc panels,
// and a mr x nr micro-kernel keeps the C tile in 12 YMM registers.
//
// Each element of C is accumulated as acc = fma(a[i,p], b[p,j], acc) for p
// in a kc block in increasing order, then c = fma(alpha, acc, c), block
// after block. Nothing in that depends on where the element sits in a tile,
// so the result is the same at any thread count and any tile grid.
type simdBackend struct {
	gonum.Implementation
	t simdTiler
}

// Name changes whenever the summation order above changes.
func (simdBackend) Name() string { return "simd-avx2-v1" }

func (s simdBackend) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(s.t, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

const (
	simdMR = 6   // micro-tile rows
	simdMC = 96  // job tile rows (a multiple of simdMR)
	simdNC = 256 // job tile columns (a multiple of every nr)
	simdKC = 256 // K block: fixed, it sets the summation order

	simdMaxNR = 16 // widest micro-kernel
)

// simdScratch holds the packed panels. The kernel steps its pointers one
// row past the last panel it reads; slack keeps them inside this object.
type simdScratch struct {
	a     [simdMC * simdKC]float32
	b     [simdKC * simdNC]float32
	slack [simdMaxNR]float32
}

// simdFree keeps packing buffers across calls; unlike a sync.Pool it is not
// emptied by the garbage collector, which a training loop runs often.
var simdFree = make(chan *simdScratch, 16)

func getScratch() *simdScratch {
	select {
	case s := <-simdFree:
		return s
	default:
		return new(simdScratch)
	}
}

func putScratch(s *simdScratch) {
	select {
	case simdFree <- s:
	default:
	}
}

// simdTiler runs kernel, an mr x nr micro-kernel with mr = simdMR and
// nr columns.
type simdTiler struct {
	nr     int
	kernel func(kc int, a, b, c []float32, ldc int, alpha float32)
}

func (simdTiler) tile(m, n, k int) (int, int) {
	return grid(m, n, simdMC, simdNC, 4*simdMR, 4*simdMaxNR)
}

func (t simdTiler) run(g *gemm, i0, i1, j0, j1 int) {
	s := getScratch()
	defer putScratch(s)
	mt, nt := i1-i0, j1-j0
	var edge [simdMR * simdMaxNR]float32
	for p0 := 0; p0 < g.k; p0 += simdKC {
		kc := min(simdKC, g.k-p0)
		packA(g, s.a[:], i0, i1, p0, kc)
		packB(g, s.b[:], t.nr, j0, j1, p0, kc)
		for jr := 0; jr < nt; jr += t.nr {
			nr := min(t.nr, nt-jr)
			bp := s.b[jr*kc:]
			for ir := 0; ir < mt; ir += simdMR {
				mr := min(simdMR, mt-ir)
				ap := s.a[ir*kc:]
				ci := (i0+ir)*g.ldc + j0 + jr
				if mr == simdMR && nr == t.nr {
					t.kernel(kc, ap, bp, g.c[ci:], g.ldc, g.alpha)
					continue
				}
				// Edge: run the same kernel on a copy of the C tile.
				for i := range mr {
					copy(edge[i*t.nr:i*t.nr+nr], g.c[ci+i*g.ldc:ci+i*g.ldc+nr])
				}
				t.kernel(kc, ap, bp, edge[:], t.nr, g.alpha)
				for i := range mr {
					copy(g.c[ci+i*g.ldc:ci+i*g.ldc+nr], edge[i*t.nr:i*t.nr+nr])
				}
			}
		}
		// The packing loops and the callers' scalar code are SSE; after
		// 256-bit code without VZEROUPPER every SSE instruction carries a
		// false dependency (Intel), which made them several times slower.
		archsimd.ClearAVXUpperBits()
	}
}

// packA writes op(A)[i0:i1, p0:p0+kc] as consecutive mr x kc panels, each
// stored p-major (mr values per p), rows past i1 zero.
func packA(g *gemm, dst []float32, i0, i1, p0, kc int) {
	for ir := i0; ir < i1; ir += simdMR {
		mr := min(simdMR, i1-ir)
		d := dst[(ir-i0)*kc : (ir-i0)*kc+simdMR*kc]
		switch {
		case g.tA && mr == simdMR:
			for p := range kc {
				src := g.a[(p0+p)*g.lda+ir : (p0+p)*g.lda+ir+simdMR]
				e := d[p*simdMR : p*simdMR+simdMR]
				e[0], e[1], e[2], e[3], e[4], e[5] = src[0], src[1], src[2], src[3], src[4], src[5]
			}
		case mr == simdMR:
			r0 := g.a[ir*g.lda+p0 : ir*g.lda+p0+kc]
			r1 := g.a[(ir+1)*g.lda+p0 : (ir+1)*g.lda+p0+kc]
			r2 := g.a[(ir+2)*g.lda+p0 : (ir+2)*g.lda+p0+kc]
			r3 := g.a[(ir+3)*g.lda+p0 : (ir+3)*g.lda+p0+kc]
			r4 := g.a[(ir+4)*g.lda+p0 : (ir+4)*g.lda+p0+kc]
			r5 := g.a[(ir+5)*g.lda+p0 : (ir+5)*g.lda+p0+kc]
			for p := range kc {
				e := d[p*simdMR : p*simdMR+simdMR]
				e[0], e[1], e[2], e[3], e[4], e[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
		default:
			clear(d)
			for p := range kc {
				for i := range mr {
					d[p*simdMR+i] = g.opA(ir+i, p0+p)
				}
			}
		}
	}
}

// packB writes op(B)[p0:p0+kc, j0:j1] as consecutive kc x width panels, each
// stored p-major (width values per p), columns past j1 zero.
func packB(g *gemm, dst []float32, width, j0, j1, p0, kc int) {
	for jr := j0; jr < j1; jr += width {
		nr := min(width, j1-jr)
		d := dst[(jr-j0)*kc : (jr-j0)*kc+width*kc]
		if nr < width {
			clear(d)
		}
		if !g.tB {
			if nr%8 == 0 {
				for p := range kc {
					src := g.b[(p0+p)*g.ldb+jr : (p0+p)*g.ldb+jr+nr]
					for j := 0; j < nr; j += 8 {
						archsimd.LoadFloat32x8Slice(src[j:]).StoreSlice(d[p*width+j:])
					}
				}
				archsimd.ClearAVXUpperBits() // scalar copies may follow
				continue
			}
			for p := range kc {
				src := g.b[(p0+p)*g.ldb+jr : (p0+p)*g.ldb+jr+nr]
				for j, v := range src {
					d[p*width+j] = v
				}
			}
			continue
		}
		var rows [simdMaxNR][]float32
		for j := range nr {
			rows[j] = g.b[(jr+j)*g.ldb+p0 : (jr+j)*g.ldb+p0+kc]
		}
		for p := range kc {
			e := d[p*width : p*width+nr]
			for j := range e {
				e[j] = rows[j][p]
			}
		}
	}
}

func at8(s []float32, i int) *[8]float32 {
	return (*[8]float32)(unsafe.Pointer(unsafe.SliceData(s[i:])))
}

// kernel6x16 does c[0:6, 0:16] = fma(alpha, a·b, c) for one packed 6 x kc
// panel a and kc x 16 panel b, both inside a simdScratch; c has row stride
// ldc.
func kernel6x16(kc int, a, b, c []float32, ldc int, alpha float32) {
	_ = a[simdMR*kc-1]
	_ = b[16*kc-1]
	_ = c[5*ldc+15]
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 archsimd.Float32x8
	pa := unsafe.Pointer(unsafe.SliceData(a))
	pb := unsafe.Pointer(unsafe.SliceData(b))
	// alpha goes to memory as a vector before the loop and is loaded as
	// one after it: with a scalar alpha the compiler reloads it inside the
	// loop with a legacy-SSE MOVSS, and on Intel CPUs an SSE instruction
	// among 256-bit code with dirty upper halves costs a state transition
	// (measured: 1 GFLOP/s instead of tens on an Emerald Rapids VM).
	var alv [8]float32
	for i := range alv {
		alv[i] = alpha
	}
	for range kc {
		v0 := archsimd.LoadFloat32x8((*[8]float32)(pb))
		v1 := archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(pb, 32)))
		x := archsimd.BroadcastFloat32x8(*(*float32)(pa))
		c00 = x.MulAdd(v0, c00)
		c01 = x.MulAdd(v1, c01)
		x = archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(pa, 4)))
		c10 = x.MulAdd(v0, c10)
		c11 = x.MulAdd(v1, c11)
		x = archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(pa, 8)))
		c20 = x.MulAdd(v0, c20)
		c21 = x.MulAdd(v1, c21)
		x = archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(pa, 12)))
		c30 = x.MulAdd(v0, c30)
		c31 = x.MulAdd(v1, c31)
		x = archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(pa, 16)))
		c40 = x.MulAdd(v0, c40)
		c41 = x.MulAdd(v1, c41)
		x = archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(pa, 20)))
		c50 = x.MulAdd(v0, c50)
		c51 = x.MulAdd(v1, c51)
		// After the last p these point just past the panels: still inside
		// simdScratch thanks to its slack, as checkptr and the GC require.
		pa = unsafe.Add(pa, 4*simdMR)
		pb = unsafe.Add(pb, 4*16)
	}
	al := archsimd.LoadFloat32x8(&alv)
	store := func(off int, v0, v1 archsimd.Float32x8) {
		p0, p1 := at8(c, off), at8(c, off+8)
		al.MulAdd(v0, archsimd.LoadFloat32x8(p0)).Store(p0)
		al.MulAdd(v1, archsimd.LoadFloat32x8(p1)).Store(p1)
	}
	store(0, c00, c01)
	store(ldc, c10, c11)
	store(2*ldc, c20, c21)
	store(3*ldc, c30, c31)
	store(4*ldc, c40, c41)
	store(5*ldc, c50, c51)
}
