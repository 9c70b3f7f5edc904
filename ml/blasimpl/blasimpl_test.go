package blasimpl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// problem is one Sgemm call with random operands; ld* exceed the widths by
// pad so that strided access is exercised.
type problem struct {
	tA, tB      blas.Transpose
	m, n, k     int
	alpha, beta float32
	a, b, c     []float32
	lda, ldb    int
	ldc         int
}

func newProblem(rng *rand.Rand, tA, tB blas.Transpose, m, n, k, pad int, alpha, beta float32) problem {
	p := problem{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	aRows, aCols := m, k
	if tA == blas.Trans {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if tB == blas.Trans {
		bRows, bCols = n, k
	}
	p.lda, p.ldb, p.ldc = max(1, aCols+pad), max(1, bCols+pad), max(1, n+pad)
	p.a = randSlice(rng, aRows*p.lda)
	p.b = randSlice(rng, bRows*p.ldb)
	p.c = randSlice(rng, m*p.ldc)
	return p
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// run computes the problem with b and returns the new C (the inputs stay).
func (p problem) run(b Backend) []float32 {
	c := slices.Clone(p.c)
	b.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
	return c
}

// check compares got with a float64 reference product. Each element may be
// off by a few float32 ulps of the sum of absolute terms: rounding error of
// a k-term float32 sum is bounded by about k*eps*sum|terms|, and we allow
// 2*(k+2)*eps of it.
func (p problem) check(t *testing.T, name string, got []float32) {
	t.Helper()
	const eps = 1.0 / (1 << 23)
	g := gemm{tA: p.tA == blas.Trans, tB: p.tB == blas.Trans, a: p.a, lda: p.lda, b: p.b, ldb: p.ldb}
	bad := 0
	for i := range p.m {
		for j := 0; j < p.ldc; j++ {
			idx := i*p.ldc + j
			if j >= p.n {
				if got[idx] != p.c[idx] {
					t.Fatalf("%s: wrote C[%d,%d] outside the n=%d columns", name, i, j, p.n)
				}
				continue
			}
			var sum, abs float64
			for q := range p.k {
				v := float64(g.opA(i, q)) * float64(g.opB(q, j))
				sum += v
				abs += math.Abs(v)
			}
			want := float64(p.alpha)*sum + float64(p.beta)*float64(p.c[idx])
			if p.beta == 0 {
				want = float64(p.alpha) * sum
			}
			scale := math.Abs(float64(p.alpha))*abs + math.Abs(float64(p.beta)*float64(p.c[idx]))
			tol := 2 * float64(p.k+2) * eps * scale
			if diff := math.Abs(float64(got[idx]) - want); diff > tol || math.IsNaN(float64(got[idx])) {
				if bad++; bad <= 3 {
					t.Errorf("%s %v: C[%d,%d] = %v, want %v (tol %.3g)", name, p, i, j, got[idx], want, tol)
				}
			}
		}
	}
}

func (p problem) String() string {
	return fmt.Sprintf("m=%d n=%d k=%d tA=%c tB=%c alpha=%g beta=%g lda=%d ldb=%d ldc=%d",
		p.m, p.n, p.k, p.tA, p.tB, p.alpha, p.beta, p.lda, p.ldb, p.ldc)
}

func backends(t testing.TB) []Backend {
	var bs []Backend
	for _, name := range Available() {
		bs = append(bs, registry[name].make())
	}
	return bs
}

var transposes = []blas.Transpose{blas.NoTrans, blas.Trans}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 7, 17, 64, 129}
	if testing.Short() {
		sizes = []int{1, 7, 17, 33}
	}
	for _, b := range backends(t) {
		for _, tA := range transposes {
			for _, tB := range transposes {
				for _, m := range sizes {
					for _, n := range sizes {
						for _, k := range sizes {
							p := newProblem(rng, tA, tB, m, n, k, rng.IntN(3), 1, 0)
							p.check(t, b.Name(), p.run(b))
						}
					}
				}
			}
		}
	}
}

func TestAlphaBeta(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, b := range backends(t) {
		for _, ab := range [][2]float32{{1, 1}, {0.5, -2}, {-1.5, 0}, {0, 0.25}, {0, 1}, {2, 1}} {
			for _, tA := range transposes {
				for _, tB := range transposes {
					p := newProblem(rng, tA, tB, 37, 45, 300, 5, ab[0], ab[1])
					p.check(t, b.Name(), p.run(b))
				}
			}
		}
	}
}

// TestBetaZeroIgnoresNaN checks the BLAS rule that beta = 0 overwrites C,
// even when C holds NaN.
func TestBetaZeroIgnoresNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, b := range backends(t) {
		p := newProblem(rng, blas.NoTrans, blas.NoTrans, 20, 20, 20, 0, 1, 0)
		for i := range p.c {
			p.c[i] = float32(math.NaN())
		}
		p.check(t, b.Name(), p.run(b))
	}
}

func TestRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 60
	if testing.Short() {
		n = 15
	}
	for _, b := range backends(t) {
		for range n {
			p := newProblem(rng, transposes[rng.IntN(2)], transposes[rng.IntN(2)],
				1+rng.IntN(300), 1+rng.IntN(300), 1+rng.IntN(600), rng.IntN(20),
				float32(rng.NormFloat64()), float32(rng.NormFloat64()))
			p.check(t, b.Name(), p.run(b))
		}
	}
}

// TestDeterministicAcrossThreads runs shapes big enough to go parallel at
// GOMAXPROCS 1, 2 and 4 (and SetThreads 3) and wants identical bits.
func TestDeterministicAcrossThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer SetThreads(0)
	rng := rand.New(rand.NewPCG(9, 10))
	shapes := [][3]int{{768, 128, 128}, {128, 512, 768}, {300, 257, 530}, {768, 65, 128}}
	for _, b := range backends(t) {
		for _, s := range shapes {
			for _, tA := range transposes {
				for _, tB := range transposes {
					p := newProblem(rng, tA, tB, s[0], s[1], s[2], 3, 1, 1)
					runtime.GOMAXPROCS(1)
					want := p.run(b)
					for _, procs := range []int{2, 4} {
						runtime.GOMAXPROCS(procs)
						if got := p.run(b); !slices.Equal(got, want) {
							t.Errorf("%s %v: GOMAXPROCS %d differs from GOMAXPROCS 1", b.Name(), p, procs)
						}
					}
					SetThreads(3)
					if got := p.run(b); !slices.Equal(got, want) {
						t.Errorf("%s %v: SetThreads(3) differs from one thread", b.Name(), p)
					}
					SetThreads(0)
				}
			}
		}
	}
}

func TestPanics(t *testing.T) {
	a := make([]float32, 100)
	cases := []struct {
		want string
		call func(Backend)
	}{
		{"blas: illegal transpose", func(b Backend) { b.Sgemm('x', blas.NoTrans, 2, 2, 2, 1, a, 2, a, 2, 0, a, 2) }},
		{"blas: m < 0", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, -1, 2, 2, 1, a, 2, a, 2, 0, a, 2) }},
		{"blas: k < 0", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, -1, 1, a, 2, a, 2, 0, a, 2) }},
		{"blas: bad leading dimension of A", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2) }},
		{"blas: bad leading dimension of B", func(b Backend) { b.Sgemm(blas.NoTrans, blas.Trans, 2, 2, 3, 1, a, 3, a, 2, 0, a, 2) }},
		{"blas: bad leading dimension of C", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 3, 2, 1, a, 2, a, 3, 0, a, 2) }},
		{"blas: insufficient length of a", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 20, 2, 10, 1, a, 10, a, 2, 0, a, 2) }},
		{"blas: insufficient length of b", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 20, 10, 1, a, 10, a, 20, 0, a, 20) }},
		{"blas: insufficient length of c", func(b Backend) { b.Sgemm(blas.NoTrans, blas.NoTrans, 20, 20, 1, 1, a, 1, a, 20, 0, a, 20) }},
	}
	for _, b := range backends(t) {
		for _, tc := range cases {
			func() {
				defer func() {
					if r := recover(); r != tc.want {
						t.Errorf("%s: panic %v, want %q", b.Name(), r, tc.want)
					}
				}()
				tc.call(b)
			}()
		}
	}
}

func TestUse(t *testing.T) {
	defer Use(Default())
	for _, name := range Available() {
		if err := Use(name); err != nil {
			t.Fatal(err)
		}
		t.Logf("Use(%q): Name() = %q", name, Name())
		if !strings.HasPrefix(Name(), name+"-") || !strings.Contains(Name(), "-v") {
			t.Errorf("Use(%q) installed %q, want a versioned %s name", name, Name(), name)
		}
		if blas32.Implementation() != Current() {
			t.Errorf("Use(%q) did not install the backend in blas32", name)
		}
		// The engine's path: blas32.Gemm on general matrices.
		a := blas32.General{Rows: 2, Cols: 3, Stride: 3, Data: []float32{1, 2, 3, 4, 5, 6}}
		b := blas32.General{Rows: 3, Cols: 1, Stride: 1, Data: []float32{1, 0, -1}}
		c := blas32.General{Rows: 2, Cols: 1, Stride: 1, Data: []float32{9, 9}}
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, b, 0, c)
		if c.Data[0] != -2 || c.Data[1] != -2 {
			t.Errorf("%s: blas32.Gemm gave %v, want [-2 -2]", name, c.Data)
		}
	}
	err := Use("cuda")
	if err == nil || !strings.Contains(err.Error(), `unknown matrix backend "cuda": this build has `) {
		t.Errorf("Use(cuda) error = %v", err)
	}
	err = Use("openblas")
	if !slices.Contains(Available(), "openblas") && (err == nil || !strings.Contains(err.Error(), "-tags openblas")) {
		t.Errorf("Use(openblas) without the build tag: error %v lacks the build hint", err)
	}
	if Default() != Available()[0] {
		t.Errorf("Default() = %q, not the first of %v", Default(), Available())
	}
}

// TestDefaultAtInit checks that the package installs the fastest backend of
// the build by itself: callers that never call Use (the CLI's stages) get it.
func TestDefaultAtInit(t *testing.T) {
	want := registry[Default()].make().Name()
	if defaultAtInit != want {
		t.Errorf("backend installed at init = %q, want the default %q (of %v)", defaultAtInit, want, Available())
	}
}

// TestGonumVersion keeps the gonum backend's name in step with go.mod.
func TestGonumVersion(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`gonum.org/v1/gonum v(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require gonum.org/v1/gonum")
	}
	if string(m[1]) != gonumVersion {
		t.Errorf("go.mod has gonum %s but gonumVersion says %s: update it (the name enters cache keys)", m[1], gonumVersion)
	}
}

func TestGrid(t *testing.T) {
	cases := []struct{ m, n, tm, tn int }{
		{1024, 1024, 96, 256}, // plenty of tiles: unchanged
		{768, 128, 96, 256},   // already 8 x 1
		{128, 128, 24, 64},    // dW of a 128x128 weight: 6 x 2
		{64, 64, 24, 64},      // cannot shrink further: 3 x 1
	}
	for _, c := range cases {
		if tm, tn := grid(c.m, c.n, 96, 256, 24, 64); tm != c.tm || tn != c.tn {
			t.Errorf("grid(%d, %d) = %d x %d, want %d x %d", c.m, c.n, tm, tn, c.tm, c.tn)
		}
	}
}
