package optim

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// TestAdamWMatchesPyTorch replays testdata/adamw_reference.json, written by
// testdata/make_reference.py with PyTorch 1.13's AdamW and clip_grad_norm_.
// float32 with a different operation order: parameters agree to 1e-6.
func TestAdamWMatchesPyTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/adamw_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Grads  [][]float32
		LRs    []float64
		Norms  []float64
		Params []float32
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	params := []float32{0.5, -1.0, 2.0, 0.25, 0.1, -0.2}
	opt, err := NewAdamW(6, []Segment{{0, 4, true}, {4, 2, false}}, DefaultAdamW)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range ref.Grads {
		grads := append([]float32(nil), g...)
		norm := ClipGlobalNorm(grads, 1.0)
		if math.Abs(norm-ref.Norms[i]) > 1e-6*ref.Norms[i] {
			t.Errorf("step %d: norm %.8g, PyTorch %.8g", i, norm, ref.Norms[i])
		}
		opt.Update(params, grads, ref.LRs[i])
	}
	for i := range params {
		if math.Abs(float64(params[i]-ref.Params[i])) > 1e-6 {
			t.Errorf("param %d = %.8g, PyTorch %.8g", i, params[i], ref.Params[i])
		}
	}
	if opt.Step != 3 {
		t.Errorf("Step = %d, want 3", opt.Step)
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{LR: 1e-3, MinLR: 1e-4, Warmup: 100, Total: 2000}
	cases := []struct {
		step int
		want float64
	}{
		{0, 1e-3 * 1 / 101},
		{99, 1e-3 * 100 / 101},
		{100, 1e-3},                    // cosine starts at the peak
		{1050, 1e-4 + 0.5*(1e-3-1e-4)}, // half way: cos(pi/2) = 0
		{2000, 1e-4},
		{5000, 1e-4},
	}
	for _, c := range cases {
		if got := s.At(c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("At(%d) = %g, want %g", c.step, got, c.want)
		}
	}
	// Warm-up longer than the run: only warm-up values, never above LR.
	s = Schedule{LR: 1, MinLR: 0.1, Warmup: 10, Total: 5}
	if got := s.At(4); got != 5.0/11 {
		t.Errorf("At(4) with long warm-up = %g, want %g", got, 5.0/11)
	}
}

func TestClipBelowLimitUnchanged(t *testing.T) {
	g := []float32{0.3, 0.4}
	if n := ClipGlobalNorm(g, 1); math.Abs(n-0.5) > 1e-7 || g[0] != 0.3 || g[1] != 0.4 {
		t.Errorf("norm %g, grads %v", n, g)
	}
	g = []float32{3, 4}
	ClipGlobalNorm(g, 1)
	if math.Abs(float64(g[0])-0.6) > 1e-6 || math.Abs(float64(g[1])-0.8) > 1e-6 {
		t.Errorf("clipped grads %v, want [0.6 0.8]", g)
	}
}

func TestSegmentsErrors(t *testing.T) {
	if _, err := NewAdamW(5, []Segment{{0, 4, true}}, DefaultAdamW); err == nil || !strings.Contains(err.Error(), "segments cover 4 of 5 parameters") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewAdamW(5, []Segment{{0, 2, true}, {3, 2, false}}, DefaultAdamW); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Errorf("err = %v", err)
	}
}
