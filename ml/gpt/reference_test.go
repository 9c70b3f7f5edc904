package gpt

import (
	"math"
	"testing"

	"github.com/llmlab/llmlab/ml/safetensors"
)

// TestPyTorchReference compares logits, losses and gradients with PyTorch
// 1.13 on a tiny GPT-2 (2 layers, 2 heads, 16 dims, context 8, vocab 11).
// The fixtures come from testdata/make_reference.py; see its doc string.
// Tolerances: logits and losses to 1e-5 relative (float32 with different
// summation orders agrees to a few ulps of the largest terms); gradients to
// 1e-4 of the tensor's largest magnitude, since they pass through more
// cancelling sums.
func TestPyTorchReference(t *testing.T) {
	wf, err := safetensors.ReadFile("testdata/tiny_gpt2.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	of, err := safetensors.ReadFile("testdata/tiny_gpt2_outputs.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Layers: 2, Heads: 2, Dim: 16, Context: 8, Vocab: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadTensors(wf); err != nil {
		t.Fatal(err)
	}
	get := func(name string) []float32 {
		v, _, err := of.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	toInt := func(v []float32) []int32 {
		out := make([]int32, len(v))
		for i, x := range v {
			out[i] = int32(x)
		}
		return out
	}
	toMask := func(v []float32) []uint8 {
		out := make([]uint8, len(v))
		for i, x := range v {
			out[i] = uint8(x)
		}
		return out
	}
	inputs, targets, mask := toInt(get("inputs")), toInt(get("targets")), toMask(get("mask"))
	B, T := 2, 8

	masked, err := m.Forward(inputs, targets, mask, B, T)
	if err != nil {
		t.Fatal(err)
	}
	if want := get("masked_loss")[0]; relDiff(masked, want) > 1e-5 {
		t.Errorf("masked loss %.8g, PyTorch %.8g", masked, want)
	}
	loss, err := m.Forward(inputs, targets, nil, B, T)
	if err != nil {
		t.Fatal(err)
	}
	if want := get("loss")[0]; relDiff(loss, want) > 1e-5 {
		t.Errorf("loss %.8g, PyTorch %.8g", loss, want)
	}
	wantLogits := get("logits")
	logits := m.Logits()
	scale := maxAbs(wantLogits)
	worst := 0.0
	for i := range wantLogits {
		d := math.Abs(float64(logits[i]-wantLogits[i])) / scale
		worst = max(worst, d)
		if d > 1e-5 {
			t.Fatalf("logit %d = %.8g, PyTorch %.8g", i, logits[i], wantLogits[i])
		}
	}
	t.Logf("logits: worst difference %.2g of the largest logit", worst)

	m.ZeroGrad()
	if err := m.Backward(); err != nil {
		t.Fatal(err)
	}
	for i, pt := range m.GradTensors() {
		want := get("grad." + m.Tensors()[i].Name)
		scale := maxAbs(want)
		for j := range want {
			if d := math.Abs(float64(pt.Data[j]-want[j])) / scale; d > 1e-4 {
				t.Errorf("grad %s[%d] = %.8g, PyTorch %.8g", pt.Name, j, pt.Data[j], want[j])
				break
			}
		}
	}
}

func relDiff(a, b float32) float64 {
	return math.Abs(float64(a-b)) / math.Max(math.Abs(float64(b)), 1e-30)
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}
