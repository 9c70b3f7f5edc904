package blasimpl

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the products of nanoGPT shakespeare-char (batch 12 x
// context 64 = 768 rows, 128 dims, MLP 512, qkv 384, vocab 65, 4 heads of
// 32) with weights stored in x out, plus 1024^3.
var benchShapes = []struct {
	name    string
	tA, tB  blas.Transpose
	m, n, k int
}{
	{"cube1024", blas.NoTrans, blas.NoTrans, 1024, 1024, 1024},
	{"fwd_qkv", blas.NoTrans, blas.NoTrans, 768, 384, 128},
	{"fwd_proj", blas.NoTrans, blas.NoTrans, 768, 128, 128},
	{"fwd_mlp_up", blas.NoTrans, blas.NoTrans, 768, 512, 128},
	{"fwd_mlp_down", blas.NoTrans, blas.NoTrans, 768, 128, 512},
	{"fwd_lmhead", blas.NoTrans, blas.NoTrans, 768, 65, 128},
	{"bwd_dx_mlp_up", blas.NoTrans, blas.Trans, 768, 128, 512},
	{"bwd_dw_mlp_up", blas.Trans, blas.NoTrans, 128, 512, 768},
	{"bwd_dx_lmhead", blas.NoTrans, blas.Trans, 768, 128, 65},
	{"bwd_dw_lmhead", blas.Trans, blas.NoTrans, 128, 65, 768},
	{"tt_proj", blas.Trans, blas.Trans, 768, 128, 128},
	{"attn_qk", blas.NoTrans, blas.Trans, 64, 64, 32},
	{"attn_av", blas.NoTrans, blas.NoTrans, 64, 32, 64},
	{"attn_bwd_dk", blas.Trans, blas.NoTrans, 64, 32, 64},
}

// BenchmarkGemm reports GFLOP/s (2mnk per product) per backend, shape and
// thread count (SetThreads and GOMAXPROCS, since gonum follows the latter):
// go test -run x -bench Gemm ./ml/blasimpl/
func BenchmarkGemm(b *testing.B) {
	defer SetThreads(0)
	rng := rand.New(rand.NewPCG(11, 12))
	bes := backends(b)
	for _, s := range benchShapes {
		p := newProblem(rng, s.tA, s.tB, s.m, s.n, s.k, 0, 1, 0)
		for _, threads := range []int{1, 2} {
			// Backends side by side, so that load from other processes
			// hits them alike.
			for _, be := range bes {
				b.Run(fmt.Sprintf("%s/t%d/%s", s.name, threads, shortName(be)), func(b *testing.B) {
					SetThreads(threads)
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
					for b.Loop() {
						be.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc)
					}
					b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

func shortName(b Backend) string {
	for name, r := range registry {
		if r.make().Name() == b.Name() {
			return name
		}
	}
	return b.Name()
}

// stepGemms lists the matrix products of one nanoGPT shakespeare-char
// training step (4 layers, 4 heads of 32, 128 dims, context 64, batch 12,
// vocab 65), forward and backward, with weights stored in x out.
func stepGemms() []gemm {
	const rows, dim, heads, ctx, hd, layers, vocab = 768, 128, 4, 64, 32, 4, 65
	var gs []gemm
	add := func(tA, tB bool, m, n, k, times int) {
		for range times {
			gs = append(gs, gemm{tA: tA, tB: tB, m: m, n: n, k: k})
		}
	}
	linear := func(in, out int) {
		add(false, false, rows, out, in, 1) // Y = X W
		add(false, true, rows, in, out, 1)  // dX = dY Wᵀ
		add(true, false, in, out, rows, 1)  // dW = Xᵀ dY
	}
	for range layers {
		linear(dim, 3*dim)
		linear(dim, dim)
		linear(dim, 4*dim)
		linear(4*dim, dim)
		per := rows / ctx * heads
		add(false, true, ctx, ctx, hd, 2*per)  // S = Q Kᵀ, dP = dO Vᵀ
		add(false, false, ctx, hd, ctx, 2*per) // O = P V, dQ = dS K
		add(true, false, ctx, hd, ctx, 2*per)  // dV = Pᵀ dO, dK = dSᵀ Q
	}
	linear(dim, vocab)
	return gs
}

// BenchmarkStep runs all products of one nanoGPT training step per
// backend and thread count; ms/step bounds the tokens per second the matrix
// products allow (768 tokens per step).
func BenchmarkStep(b *testing.B) {
	defer SetThreads(0)
	rng := rand.New(rand.NewPCG(17, 18))
	var probs []problem
	flops := 0.0
	for _, g := range stepGemms() {
		tA, tB := blas.NoTrans, blas.NoTrans
		if g.tA {
			tA = blas.Trans
		}
		if g.tB {
			tB = blas.Trans
		}
		probs = append(probs, newProblem(rng, tA, tB, g.m, g.n, g.k, 0, 1, 0))
		flops += 2 * float64(g.m*g.n*g.k)
	}
	bes := backends(b)
	for _, threads := range []int{1, 2} {
		for _, be := range bes {
			b.Run(fmt.Sprintf("t%d/%s", threads, shortName(be)), func(b *testing.B) {
				SetThreads(threads)
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				for b.Loop() {
					for _, p := range probs {
						be.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec*1e3, "ms/step")
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkGonumSplit compares gonum's Sgemm called directly with the gonum
// backend (the same blocks run by our split), one run, side by side.
func BenchmarkGonumSplit(b *testing.B) {
	defer SetThreads(0)
	rng := rand.New(rand.NewPCG(19, 20))
	for _, s := range benchShapes {
		p := newProblem(rng, s.tA, s.tB, s.m, s.n, s.k, 0, 1, 0)
		for _, threads := range []int{1, 2} {
			for _, v := range []struct {
				name string
				be   blas.Float32Level3
			}{{"direct", gonum.Implementation{}}, {"split", gonumBackend{}}} {
				b.Run(fmt.Sprintf("%s/t%d/%s", s.name, threads, v.name), func(b *testing.B) {
					SetThreads(threads)
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
					for b.Loop() {
						v.be.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, p.c, p.ldc)
					}
					b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
