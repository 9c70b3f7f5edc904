package blasimpl

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
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
