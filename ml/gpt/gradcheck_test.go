package gpt

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Gradient checks by central finite differences.
//
// Every layer function runs in float32. The checked objective is
// f = sum_i out_i * r_i for fixed random r (so the upstream gradient is r),
// summed in float64. Each input element is moved by +-h (h = 1e-2; the
// difference quotient uses the float32-rounded step actually taken). The
// float32 rounding of the forward pass contributes an error of about
// 1e-7 * |f| / h ~ 1e-5 to the difference, and the truncation error is
// O(h^2) ~ 1e-4 for these smooth functions, so we require
// |analytic - numeric| <= 2e-3 + 2e-2 * |analytic| for each element.

const fdStep = 1e-2

func randSlice(r *rand.Rand, n int, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * std)
	}
	return s
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// checkGrad compares analytic with central differences of f over x.
func checkGrad(t *testing.T, name string, x, analytic []float32, f func() float64) {
	t.Helper()
	worst := 0.0
	for i := range x {
		orig := x[i]
		xp, xm := orig+fdStep, orig-fdStep
		x[i] = xp
		fp := f()
		x[i] = xm
		fm := f()
		x[i] = orig
		num := (fp - fm) / (float64(xp) - float64(xm))
		a := float64(analytic[i])
		diff := math.Abs(a - num)
		if diff > 2e-3+2e-2*math.Abs(a) {
			t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", name, i, a, num)
			return
		}
		worst = max(worst, diff)
	}
	t.Logf("%s: %d elements, worst abs diff %.2g", name, len(x), worst)
}

func TestGradLayernorm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	N, C := 3, 8
	inp, w, b := randSlice(r, N*C, 1), randSlice(r, C, 1), randSlice(r, C, 1)
	up := randSlice(r, N*C, 1)
	out, mean, rstd := make([]float32, N*C), make([]float32, N), make([]float32, N)
	f := func() float64 {
		layernormForward(out, mean, rstd, inp, w, b, N, C, 1e-5)
		return dot64(out, up)
	}
	f()
	din, dw, db := make([]float32, N*C), make([]float32, C), make([]float32, C)
	layernormBackward(din, dw, db, up, inp, w, mean, rstd, N, C)
	checkGrad(t, "inp", inp, din, f)
	checkGrad(t, "weight", w, dw, f)
	checkGrad(t, "bias", b, db, f)
}

func TestGradMatmul(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 3))
	N, IC, OC := 4, 5, 6
	inp, w, b := randSlice(r, N*IC, 1), randSlice(r, IC*OC, 1), randSlice(r, OC, 1)
	up := randSlice(r, N*OC, 1)
	out := make([]float32, N*OC)
	f := func() float64 {
		matmulForward(out, inp, w, b, N, IC, OC)
		return dot64(out, up)
	}
	din, dw, db := make([]float32, N*IC), make([]float32, IC*OC), make([]float32, OC)
	matmulBackward(din, dw, db, up, inp, w, N, IC, OC)
	checkGrad(t, "inp", inp, din, f)
	checkGrad(t, "weight", w, dw, f)
	checkGrad(t, "bias", b, db, f)
}

func TestGradHead(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 4))
	N, C, V := 3, 4, 7
	inp, wte := randSlice(r, N*C, 1), randSlice(r, V*C, 1)
	up := randSlice(r, N*V, 1)
	out := make([]float32, N*V)
	f := func() float64 {
		headForward(out, inp, wte, N, C, V)
		return dot64(out, up)
	}
	din, dwte := make([]float32, N*C), make([]float32, V*C)
	headBackward(din, dwte, up, inp, wte, N, C, V)
	checkGrad(t, "inp", inp, din, f)
	checkGrad(t, "wte", wte, dwte, f)
}

func TestGradAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 5))
	B, T, C, NH := 2, 4, 8, 2
	qkv := randSlice(r, B*T*3*C, 1)
	up := randSlice(r, B*T*C, 1)
	out, att := make([]float32, B*T*C), make([]float32, B*NH*T*T)
	f := func() float64 {
		attentionForward(out, att, qkv, B, T, C, NH)
		return dot64(out, up)
	}
	f()
	dqkv := make([]float32, B*T*3*C)
	attentionBackward(dqkv, up, qkv, att, make([]float32, B*NH*T*T), B, T, C, NH)
	checkGrad(t, "qkv", qkv, dqkv, f)
}

func TestGradGelu(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 6))
	N := 40
	inp := randSlice(r, N, 2)
	up := randSlice(r, N, 1)
	out, th := make([]float32, N), make([]float32, N)
	f := func() float64 {
		geluForward(out, th, inp, N)
		return dot64(out, up)
	}
	f()
	din := make([]float32, N)
	geluBackward(din, inp, th, up, N)
	checkGrad(t, "inp", inp, din, f)
}

func TestGradEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 7))
	B, T, C, V := 2, 3, 4, 5
	inp := []int32{1, 4, 1, 0, 2, 4}
	wte, wpe := randSlice(r, V*C, 1), randSlice(r, T*C, 1)
	up := randSlice(r, B*T*C, 1)
	out := make([]float32, B*T*C)
	f := func() float64 {
		encoderForward(out, inp, wte, wpe, B, T, C)
		return dot64(out, up)
	}
	dwte, dwpe := make([]float32, V*C), make([]float32, T*C)
	encoderBackward(dwte, dwpe, up, inp, B, T, C)
	checkGrad(t, "wte", wte, dwte, f)
	checkGrad(t, "wpe", wpe, dwpe, f)
}

func TestGradCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 8))
	N, V := 4, 6
	logits := randSlice(r, N*V, 2)
	targets := []int32{0, 5, 2, 2}
	weights := []float32{0.5, 0, 0.25, 0.25} // row 1 masked
	probs, losses := make([]float32, N*V), make([]float32, N)
	f := func() float64 {
		softmaxForward(probs, logits, N, V)
		crossEntropyForward(losses, probs, targets, weights, N, V)
		return dot64(losses, weights)
	}
	f()
	if losses[1] != 0 {
		t.Errorf("masked row has loss %g, want 0", losses[1])
	}
	dl := make([]float32, N*V)
	crossEntropySoftmaxBackward(dl, probs, targets, weights, N, V)
	checkGrad(t, "logits", logits, dl, f)
}

// tinyModel has every parameter perturbed away from its initial value so
// that LayerNorm weights, biases and all paths carry non-trivial gradients.
func tinyModel(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range m.Params {
		m.Params[i] += float32(r.NormFloat64() * 0.1)
	}
	return m
}

func TestGradModel(t *testing.T) {
	cfg := Config{Layers: 2, Heads: 2, Dim: 8, Context: 5, Vocab: 7}
	m := tinyModel(t, cfg, 3)
	B, T := 2, 4
	inputs := []int32{1, 2, 3, 4, 6, 5, 0, 1}
	targets := []int32{2, 3, 4, 5, 5, 0, 1, 6}
	mask := []uint8{1, 1, 0, 1, 1, 1, 1, 0}
	loss := func() float64 {
		l, err := m.Forward(inputs, targets, mask, B, T)
		if err != nil {
			t.Fatal(err)
		}
		return float64(l)
	}
	loss()
	m.ZeroGrad()
	if err := m.Backward(); err != nil {
		t.Fatal(err)
	}
	grads := append([]float32(nil), m.Grads...)
	for i, pt := range m.Tensors() {
		gt := m.GradTensors()[i]
		_ = gt
		off := offsetOf(m.Params, pt.Data)
		checkGrad(t, pt.Name, pt.Data, grads[off:off+len(pt.Data)], loss)
	}
}

func offsetOf(all, sub []float32) int {
	for i := range all {
		if &all[i] == &sub[0] {
			return i
		}
	}
	panic("not a sub-slice")
}
