//go:build openblas && cgo

package blasimpl

/*
#cgo LDFLAGS: -lopenblas
#include <stdlib.h>
#include <strings.h>
extern void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
// Only DYNAMIC_ARCH builds (Debian's) have these; weak, so that other
// builds still link.
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern int blas_thread_shutdown_(void) __attribute__((weak));

// llmlab_better_core names the OpenBLAS core type this CPU can run, or NULL.
static const char *llmlab_better_core(void) {
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512cd")) {
		return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
	}
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		return "Haswell";
	}
	return NULL;
}

// llmlab_fix_core re-runs OpenBLAS's kernel selection with the core type
// this CPU supports when OpenBLAS fell back to Prescott (SSE3) because it
// does not know the CPU model (0.3.21 on Emerald Rapids, family 6 model
// 207). It is what OPENBLAS_CORETYPE does at load time, done before any
// BLAS call; a user's OPENBLAS_CORETYPE is left alone. Returns 1 if it
// switched.
//
// OpenBLAS's thread pool, started by its load-time constructor, runs the
// same kernel selection when a pool thread first allocates its buffer; on
// a loaded machine that can overlap with ours (seen once: a NULL core
// pointer in gotoblas_dynamic_init). So the pool is shut down first, which
// joins its threads. We never use it: OpenBLAS runs one thread per call.
static int llmlab_fix_core(void) {
	if (getenv("OPENBLAS_CORETYPE") != NULL || !gotoblas_dynamic_init || !gotoblas_dynamic_quit ||
	    !blas_thread_shutdown_) {
		return 0;
	}
	if (strcasecmp(openblas_get_corename(), "prescott") != 0) {
		return 0;
	}
	const char *core = llmlab_better_core();
	if (core == NULL) {
		return 0;
	}
	blas_thread_shutdown_();
	setenv("OPENBLAS_CORETYPE", core, 1);
	gotoblas_dynamic_quit();
	gotoblas_dynamic_init();
	unsetenv("OPENBLAS_CORETYPE"); // not for child processes
	return 1;
}
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

var (
	openblasName string
	// coreFixed is true when init replaced OpenBLAS's Prescott fallback.
	coreFixed bool
)

// openblasThreads is OpenBLAS's own thread count; init sets it to 1.
func openblasThreads() int { return int(C.openblas_get_num_threads()) }

// cpuHasAVX2 reports whether the CPU runs OpenBLAS's Haswell kernels or better.
func cpuHasAVX2() bool { return C.llmlab_better_core() != nil }

var _ = registerOpenBLAS()

func registerOpenBLAS() bool {
	// One OpenBLAS thread per call: the parallel split is ours, over a tile
	// grid fixed by the shape, so results do not depend on thread counts.
	C.openblas_set_num_threads(1)
	// Debian's OpenBLAS 0.3.21 does not know recent CPUs and then runs its
	// SSE3 kernels, 2-3x slower than the AVX-512 ones (docs/bench/gpt.md).
	coreFixed = C.llmlab_fix_core() != 0
	version := "unknown"
	if f := strings.Fields(C.GoString(C.openblas_get_config())); len(f) > 1 {
		version = f[1]
	}
	// OpenBLAS picks its kernels by CPU at run time, and they round
	// differently, so the core name is part of the backend's name.
	core := strings.ToLower(C.GoString(C.openblas_get_corename()))
	openblasName = "openblas-" + version + "-" + core + "-v1"
	return register(registration{short: "openblas", priority: 20, make: func() Backend { return openblasBackend{} }})
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
