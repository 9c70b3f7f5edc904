package gpt

import (
	"math"
	"testing"
)

// TestFastMath checks tanh32 and exp32 against math.Tanh and math.Exp
// (float64) on a dense grid and at the edges of their ranges.
func TestFastMath(t *testing.T) {
	var worstTanh, worstExp float64
	for i := -1_000_000; i <= 1_000_000; i++ {
		x := float32(i) * 1e-5 * 1.7 // [-17, 17]
		want := math.Tanh(float64(x))
		got := float64(tanh32(x))
		if e := math.Abs(got-want) / max(math.Abs(want), 1e-30); e > worstTanh && want != 0 {
			worstTanh = e
		}
		if got < -1 || got > 1 {
			t.Fatalf("tanh32(%g) = %g, outside [-1, 1]", x, got)
		}
	}
	for i := -1_000_000; i <= 1_000_000; i++ {
		x := float32(i) * 8.8e-5 // [-88, 88]
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if want < 0x1p-126 {
			continue // subnormal results: exp32 may flush
		}
		if e := math.Abs(got-want) / want; e > worstExp {
			worstExp = e
		}
	}
	t.Logf("max relative error: tanh32 %.3g, exp32 %.3g", worstTanh, worstExp)
	if worstTanh > 1e-6 {
		t.Errorf("tanh32 max relative error %g > 1e-6", worstTanh)
	}
	if worstExp > 3e-7 {
		t.Errorf("exp32 max relative error %g > 3e-7", worstExp)
	}
	for _, c := range []struct{ x, want float32 }{
		{0, 0}, {1e-6, 1e-6}, {-1e-6, -1e-6}, {20, 1}, {-20, -1},
		{float32(math.Inf(1)), 1}, {float32(math.Inf(-1)), -1},
	} {
		if got := tanh32(c.x); math.Abs(float64(got-c.want)) > 1e-7 {
			t.Errorf("tanh32(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {-100, 0}, {float32(math.Inf(-1)), 0},
	} {
		if got := exp32(c.x); got != c.want {
			t.Errorf("exp32(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	nan := float32(math.NaN())
	if !math.IsNaN(float64(tanh32(nan))) || !math.IsNaN(float64(exp32(nan))) {
		t.Errorf("tanh32(NaN) = %g, exp32(NaN) = %g, want NaN", tanh32(nan), exp32(nan))
	}
}
