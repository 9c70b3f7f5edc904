package blasimpl

import (
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
)

// gemm holds one Sgemm call: C = alpha*op(A)*op(B) + beta*C, row-major.
type gemm struct {
	tA, tB  bool
	m, n, k int
	alpha   float32
	a       []float32
	lda     int
	b       []float32
	ldb     int
	c       []float32
	ldc     int
}

// opA is element (i, p) of op(A).
func (g *gemm) opA(i, p int) float32 {
	if g.tA {
		return g.a[p*g.lda+i]
	}
	return g.a[i*g.lda+p]
}

// opB is element (p, j) of op(B).
func (g *gemm) opB(p, j int) float32 {
	if g.tB {
		return g.b[j*g.ldb+p]
	}
	return g.b[p*g.ldb+j]
}

// tiler computes C[i0:i1, j0:j1] += alpha * op(A)[i0:i1, :] * op(B)[:, j0:j1]
// serially. Its result for a tile must depend only on the inputs and the
// tile bounds, never on which goroutine runs it.
type tiler interface {
	// tile returns the tile grid for an m x n x k product; it may depend on
	// the shape only.
	tile(m, n, k int) (tm, tn int)
	run(g *gemm, i0, i1, j0, j1 int)
}

// grid shrinks a tm x tn tile, halving the wider side down to minTM and
// minTN, until an m x n output has at least minJobs tiles, so that small
// outputs with a long K still spread over the threads. It depends on the
// shape only, never on the thread count.
func grid(m, n, tm, tn, minTM, minTN int) (int, int) {
	const minJobs = 8
	for ((m+tm-1)/tm)*((n+tn-1)/tn) < minJobs {
		switch {
		case tn/2 >= minTN && (tn >= tm || tm/2 < minTM):
			tn /= 2
		case tm/2 >= minTM:
			tm /= 2
		default:
			return tm, tn
		}
	}
	return tm, tn
}

// parallelMinFlops is the product size (2mnk) below which one goroutine
// does everything: spawning costs about a microsecond per goroutine.
const parallelMinFlops = 1 << 20

// sgemm validates like gonum, applies beta, then runs the tiles of t on up
// to Threads() goroutines.
func sgemm(t tiler, tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := gemm{m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc}
	g.tA = checkTrans(tA)
	g.tB = checkTrans(tB)
	checkShapes(&g)
	if m == 0 || n == 0 {
		return
	}
	if (alpha == 0 || k == 0) && beta == 1 {
		return
	}
	if beta != 1 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if alpha == 0 || k == 0 {
		return
	}

	tm, tn := t.tile(m, n, k)
	rows, cols := (m+tm-1)/tm, (n+tn-1)/tn
	jobs := rows * cols
	job := func(idx int) {
		i0, j0 := (idx/cols)*tm, (idx%cols)*tn
		t.run(&g, i0, min(i0+tm, m), j0, min(j0+tn, n))
	}
	workers := min(Threads(), jobs)
	if workers <= 1 || 2*m*n*k < parallelMinFlops {
		for idx := range jobs {
			job(idx)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() {
			for idx := int(next.Add(1) - 1); idx < jobs; idx = int(next.Add(1) - 1) {
				job(idx)
			}
		})
	}
	for idx := int(next.Add(1) - 1); idx < jobs; idx = int(next.Add(1) - 1) {
		job(idx)
	}
	wg.Wait()
}

// Panic messages are gonum's, so callers see the same errors on any backend.
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

func checkTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic(badTranspose)
}

func checkShapes(g *gemm) {
	m, n, k := g.m, g.n, g.k
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aRows, aCols := m, k
	if g.tA {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if g.tB {
		bRows, bCols = n, k
	}
	if g.lda < max(1, aCols) {
		panic(badLdA)
	}
	if g.ldb < max(1, bCols) {
		panic(badLdB)
	}
	if g.ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if aRows > 0 && aCols > 0 && len(g.a) < (aRows-1)*g.lda+aCols {
		panic(shortA)
	}
	if bRows > 0 && bCols > 0 && len(g.b) < (bRows-1)*g.ldb+bCols {
		panic(shortB)
	}
	if len(g.c) < (m-1)*g.ldc+n {
		panic(shortC)
	}
}
