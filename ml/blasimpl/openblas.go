//go:build openblas && cgo

package blasimpl

/*
#cgo LDFLAGS: -lopenblas
extern void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
extern void openblas_set_num_threads(int n);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
*/
import "C"

import (
	"strings"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// CBLAS enum values (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

var openblasName string

func init() {
	// One OpenBLAS thread per call: the parallel split is ours, over a tile
	// grid fixed by the shape, so results do not depend on thread counts.
	C.openblas_set_num_threads(1)
	version := "unknown"
	if f := strings.Fields(C.GoString(C.openblas_get_config())); len(f) > 1 {
		version = f[1]
	}
	// OpenBLAS picks its kernels by CPU at run time, and they round
	// differently, so the core name is part of the backend's name.
	core := strings.ToLower(C.GoString(C.openblas_get_corename()))
	openblasName = "openblas-" + version + "-" + core + "-v1"
	register(registration{short: "openblas", priority: 20, make: func() Backend { return openblasBackend{} }})
}

// openblasBackend calls OpenBLAS's cblas_sgemm single-threaded on each tile
// of a fixed grid.
type openblasBackend struct{ gonum.Implementation }

func (openblasBackend) Name() string { return openblasName }

func (openblasBackend) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(openblasTiler{}, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

type openblasTiler struct{}

func (openblasTiler) tile(m, n, k int) (int, int) { return grid(m, n, 192, 256, 32, 64) }

func (openblasTiler) run(g *gemm, i0, i1, j0, j1 int) {
	ta, ai := C.int(cblasNoTrans), i0*g.lda
	if g.tA {
		ta, ai = cblasTrans, i0
	}
	tb, bj := C.int(cblasNoTrans), j0
	if g.tB {
		tb, bj = cblasTrans, j0*g.ldb
	}
	C.cblas_sgemm(cblasRowMajor, ta, tb, C.int(i1-i0), C.int(j1-j0), C.int(g.k),
		C.float(g.alpha), (*C.float)(&g.a[ai]), C.int(g.lda), (*C.float)(&g.b[bj]), C.int(g.ldb),
		1, (*C.float)(&g.c[i0*g.ldc+j0]), C.int(g.ldc))
}
