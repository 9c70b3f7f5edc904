// Package blasimpl owns the float32 matrix-product backend that sits behind
// gonum's blas32 package. The numeric engine calls blas32.Gemm only; this
// package decides, through blas32.Use, which Sgemm answers.
//
// Every backend is multi-threaded and bit-identical at any thread count:
// the output is cut into a tile grid that depends only on the problem
// shape, each tile is computed by one goroutine with the K dimension summed
// serially in a fixed block order, so the threads only decide who computes
// a tile, never how. Different backends round differently (FMA or not,
// different K blocking), which is why Name enters cache keys.
//
// Backends by build:
//
//	gonum     always; gonum's pure-Go Sgemm
//	simd      GOEXPERIMENT=simd on amd64, and the CPU has AVX2 and FMA
//	openblas  build tag openblas with cgo and libopenblas (-lopenblas)
package blasimpl

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend is a float32 BLAS whose Sgemm is deterministic across thread counts.
type Backend interface {
	blas.Float32
	// Name identifies the backend and its numeric behaviour, with a version
	// suffix that changes whenever results may change.
	Name() string
}

type registration struct {
	short    string // what Use accepts, e.g. "simd"
	priority int    // higher is faster; Default picks the highest
	make     func() Backend
}

var (
	registry = map[string]registration{}
	mu       sync.Mutex
	current  Backend
	threads  atomic.Int64 // 0 means runtime.GOMAXPROCS(0)
)

// register adds a backend. The backends' files call it from package-level
// variable initialisers, which all run before any init function, so that
// init below sees every backend of the build. (An earlier version
// registered from init functions: blasimpl.go's init ran first, and every
// build silently defaulted to gonum unless a caller ran Use(Default()).)
func register(r registration) bool {
	registry[r.short] = r
	return true
}

var _ = register(registration{short: "gonum", priority: 0, make: func() Backend { return gonumBackend{} }})

// defaultAtInit is the backend init installed (for tests).
var defaultAtInit string

func init() {
	if err := Use(Default()); err != nil {
		panic(err)
	}
	defaultAtInit = Name()
}

// Available lists the backends this build and CPU can use, fastest first.
func Available() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		pi, pj := registry[names[i]].priority, registry[names[j]].priority
		if pi != pj {
			return pi > pj
		}
		return names[i] < names[j]
	})
	return names
}

// Default is the fastest backend available in this build, chosen by the
// measurements in docs/bench/gemm.md.
func Default() string { return Available()[0] }

// Use installs the named backend (one of Available, or "" for Default)
// behind blas32.
func Use(name string) error {
	if name == "" {
		name = Default()
	}
	r, ok := registry[name]
	if !ok {
		return fmt.Errorf("unknown matrix backend %q: this build has %s%s",
			name, strings.Join(Available(), ", "), buildHint(name))
	}
	b := r.make()
	mu.Lock()
	defer mu.Unlock()
	current = b
	blas32.Use(b)
	return nil
}

func buildHint(name string) string {
	switch name {
	case "simd":
		return " (simd needs GOEXPERIMENT=simd on amd64 and a CPU with AVX2 and FMA)"
	case "openblas":
		return " (openblas needs -tags openblas, cgo, libopenblas-dev and CGO_LDFLAGS=-lopenblas)"
	}
	return ""
}

// Name is the versioned name of the installed backend, e.g. "simd-avx2-v1".
// It belongs in every cache key of a result computed with matrix products.
func Name() string {
	mu.Lock()
	defer mu.Unlock()
	return current.Name()
}

// Current returns the installed backend.
func Current() Backend {
	mu.Lock()
	defer mu.Unlock()
	return current
}

// SetThreads sets how many goroutines one matrix product may use; n <= 0
// means runtime.GOMAXPROCS(0), the default. Results do not depend on it.
func SetThreads(n int) {
	if n < 0 {
		n = 0
	}
	threads.Store(int64(n))
}

// Threads is the number of goroutines a matrix product may use.
func Threads() int {
	if n := threads.Load(); n > 0 {
		return int(n)
	}
	return runtime.GOMAXPROCS(0)
}

// gonumBackend is gonum's pure-Go Sgemm driven by our own split. gonum
// v0.17 is deterministic across GOMAXPROCS by itself (fixed 64x64 output
// blocks, K summed serially in 64-blocks), but it always uses GOMAXPROCS
// goroutines; we run the same 64x64x64 blocks as serial gonum calls on our
// workers, so SetThreads holds for every backend.
type gonumBackend struct{ gonum.Implementation }

func (gonumBackend) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(gonumTiler{}, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gonumBlock is gonum's own block size (blas/gonum blockSize): a call on
// one block stays on gonum's serial path.
const gonumBlock = 64

type gonumTiler struct{}

func (gonumTiler) tile(m, n, k int) (int, int) { return gonumBlock, gonumBlock }

func (gonumTiler) run(g *gemm, i0, i1, j0, j1 int) {
	tA, tB := blas.NoTrans, blas.NoTrans
	if g.tA {
		tA = blas.Trans
	}
	if g.tB {
		tB = blas.Trans
	}
	for p0 := 0; p0 < g.k; p0 += gonumBlock {
		kc := min(gonumBlock, g.k-p0)
		ai, bi := i0*g.lda+p0, p0*g.ldb+j0
		if g.tA {
			ai = p0*g.lda + i0
		}
		if g.tB {
			bi = j0*g.ldb + p0
		}
		gonum.Implementation{}.Sgemm(tA, tB, i1-i0, j1-j0, kc, g.alpha,
			g.a[ai:], g.lda, g.b[bi:], g.ldb, 1, g.c[i0*g.ldc+j0:], g.ldc)
	}
}

// Name includes gonum's version, since its rounding is gonum's code.
func (gonumBackend) Name() string { return "gonum-" + gonumVersion + "-v1" }

// gonumVersion must match go.mod; TestGonumVersion checks it.
const gonumVersion = "0.17.0"
