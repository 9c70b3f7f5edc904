package lora

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/safetensors"
)

var tinyCfg = gpt.Config{Layers: 2, Heads: 2, Dim: 8, Context: 6, Vocab: 11}

// tinyModel has every parameter random (LayerNorm ones near 1), so that no
// path of the forward is trivially zero.
func tinyModel(t *testing.T, seed uint64) *gpt.Model {
	t.Helper()
	m, err := gpt.New(tinyCfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 0))
	for _, ts := range m.Tensors() {
		for i := range ts.Data {
			v := r.NormFloat64() * 0.3
			if strings.Contains(ts.Name, "ln_") && strings.HasSuffix(ts.Name, ".weight") {
				v = 1 + 0.1*v
			}
			ts.Data[i] = float32(v)
		}
	}
	return m
}

func randomize(a *Adapter, seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range a.Params {
		a.Params[i] = float32(r.NormFloat64() * std)
	}
	a.Apply()
}

func batch(seed uint64, B, T int) (inputs, targets []int32, mask []uint8) {
	r := rand.New(rand.NewPCG(seed, 2))
	for range B * T {
		inputs = append(inputs, int32(r.IntN(tinyCfg.Vocab)))
		targets = append(targets, int32(r.IntN(tinyCfg.Vocab)))
		mask = append(mask, uint8(r.IntN(2)))
	}
	mask[0] = 1
	return
}

func logitsOf(t *testing.T, m *gpt.Model, inputs []int32, B, T int) []float32 {
	t.Helper()
	if _, err := m.Forward(inputs, nil, nil, B, T); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(m.Logits())
}

func maxDiff(a []float32, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

var allTargets = []string{"attn", "attn_proj", "mlp"}

// The reference forward agrees with ml/gpt on the base model, so it can
// judge the adapted one.
func TestReferenceMatchesModel(t *testing.T) {
	m := tinyModel(t, 1)
	inputs, _, _ := batch(1, 2, 6)
	got := logitsOf(t, m, inputs, 2, 6)
	want, _ := newRef(m).forward(inputs, nil, nil, 2, 6)
	if d := maxDiff(got, want); d > 1e-4 {
		t.Fatalf("model and reference logits differ by %g", d)
	}
}

// B = 0 (PEFT's initialisation) leaves the model's outputs bit for bit.
func TestZeroBLeavesBaseUnchanged(t *testing.T) {
	for _, targets := range [][]string{{"attn"}, allTargets} {
		m := tinyModel(t, 2)
		inputs, _, _ := batch(2, 2, 6)
		before := logitsOf(t, m, inputs, 2, 6)
		params := slices.Clone(m.Params)
		a, err := New(m, Config{Rank: 4, Alpha: 8, Targets: targets}, 3)
		if err != nil {
			t.Fatal(err)
		}
		nonzeroA := false
		for _, md := range a.Modules {
			for _, v := range md.A {
				nonzeroA = nonzeroA || v != 0
			}
			for _, v := range md.B {
				if v != 0 {
					t.Fatalf("%s: B starts at %g, want 0", md.Name, v)
				}
			}
		}
		if !nonzeroA {
			t.Fatal("A is all zero: the initialisation drew nothing")
		}
		if !slices.Equal(params, m.Params) {
			t.Fatalf("targets %v: New changed the model's parameters", targets)
		}
		if after := logitsOf(t, m, inputs, 2, 6); !slices.Equal(before, after) {
			t.Fatalf("targets %v: logits changed with B = 0", targets)
		}
	}
}

// A is PEFT's kaiming_uniform(a=sqrt(5)): within ±1/sqrt(in), spread over it.
func TestInitBounds(t *testing.T) {
	m := tinyModel(t, 3)
	a, err := New(m, Config{Rank: 8, Alpha: 16, Targets: allTargets}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range a.Modules {
		bound := 1 / math.Sqrt(float64(md.In))
		hi := 0.0
		for _, v := range md.A {
			if math.Abs(float64(v)) > bound {
				t.Fatalf("%s: A value %g outside ±%g", md.Name, v, bound)
			}
			hi = max(hi, math.Abs(float64(v)))
		}
		if hi < bound/2 {
			t.Fatalf("%s: largest |A| %g, expected close to %g", md.Name, hi, bound)
		}
	}
}

// The merged weights give the logits of base plus adapter computed by the
// reference, which adds scale·x·Aᵀ·Bᵀ to each targeted Conv1D output.
func TestMergedMatchesBasePlusAdapter(t *testing.T) {
	for _, targets := range [][]string{{"attn"}, {"attn_proj"}, {"mlp"}, allTargets} {
		m := tinyModel(t, 4)
		a, err := New(m, Config{Rank: 3, Alpha: 5, Targets: targets}, 1)
		if err != nil {
			t.Fatal(err)
		}
		randomize(a, 9, 0.3)
		inputs, _, _ := batch(4, 2, 6)
		got := logitsOf(t, m, inputs, 2, 6)
		ref := newRef(m).withAdapter(a)
		want, _ := ref.forward(inputs, nil, nil, 2, 6)
		if d := maxDiff(got, want); d > 1e-4 {
			t.Fatalf("targets %v: merged logits differ from base plus adapter by %g", targets, d)
		}
		plain, _ := newRef(m).withAdapter(a).withoutLoRA().forward(inputs, nil, nil, 2, 6)
		if d := maxDiff(got, plain); d < 1e-2 {
			t.Fatalf("targets %v: the adapter changes the logits by only %g; the test cannot see it", targets, d)
		}
	}
}

func (r *refModel) withoutLoRA() *refModel { r.lora = map[string]*refAdapter{}; return r }

// Analytic gradients of A and B against central differences of the float64
// reference loss (h = 1e-4: truncation error ~1e-8, rounding ~1e-12/h).
// The analytic side runs in float32, accumulated over every position, so we
// allow |analytic - numeric| <= 1e-4 + 1e-3·|numeric|.
func TestGradCheck(t *testing.T) {
	m := tinyModel(t, 5)
	a, err := New(m, Config{Rank: 2, Alpha: 3, Targets: allTargets}, 2)
	if err != nil {
		t.Fatal(err)
	}
	randomize(a, 11, 0.2)
	B, T := 2, 5
	inputs, targets, mask := batch(5, B, T)
	if _, err := m.Forward(inputs, targets, mask, B, T); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := m.Backward(); err != nil {
		t.Fatal(err)
	}
	a.ComputeGrads()
	ref := newRef(m).withAdapter(a)
	const h = 1e-4
	checked, worst := 0, 0.0
	for _, md := range a.Modules {
		ra := ref.lora[md.Name]
		for _, p := range []struct {
			name string
			x    []float64
			g    []float32
		}{{md.Name + ".A", ra.A, md.GA}, {md.Name + ".B", ra.B, md.GB}} {
			for i := range p.x {
				orig := p.x[i]
				p.x[i] = orig + h
				_, lp := ref.forward(inputs, targets, mask, B, T)
				p.x[i] = orig - h
				_, lm := ref.forward(inputs, targets, mask, B, T)
				p.x[i] = orig
				num := (lp - lm) / (2 * h)
				d := math.Abs(float64(p.g[i]) - num)
				if d > 1e-4+1e-3*math.Abs(num) {
					t.Fatalf("%s[%d]: analytic %.7g, numeric %.7g", p.name, i, p.g[i], num)
				}
				worst = max(worst, d)
				checked++
			}
		}
	}
	t.Logf("%d LoRA parameters checked, worst abs diff %.2g", checked, worst)
}

func TestSaveLoadPEFTLayout(t *testing.T) {
	m := tinyModel(t, 6)
	base := slices.Clone(m.Params)
	a, err := New(m, Config{Rank: 4, Alpha: 8, Targets: []string{"mlp", "attn"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomize(a, 3, 0.1)
	dir := t.TempDir()
	if err := a.Save(dir, "base-model"); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"peft_type": "LORA", "r": 4.0, "lora_alpha": 8.0, "lora_dropout": 0.0,
		"fan_in_fan_out": true, "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": "base-model"} {
		if cfg[k] != want {
			t.Errorf("adapter_config.json %s = %v, want %v", k, cfg[k], want)
		}
	}
	tm, _ := json.Marshal(cfg["target_modules"])
	if string(tm) != `["attn.c_attn","mlp.c_fc","mlp.c_proj"]` {
		t.Errorf("target_modules = %s", tm)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Names()) != 2*3*tinyCfg.Layers {
		t.Errorf("%d tensors, want %d", len(f.Names()), 2*3*tinyCfg.Layers)
	}
	C := tinyCfg.Dim
	for name, shape := range map[string][]int{
		"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": {4, C},
		"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": {3 * C, 4},
		"base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight":    {4 * C, 4},
		"base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight":  {4, 4 * C},
	} {
		_, got, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, shape) {
			t.Errorf("%s has shape %v, want %v", name, got, shape)
		}
	}

	// Loading onto a fresh copy of the base gives the same merged model.
	m2, _ := gpt.New(tinyCfg)
	copy(m2.Params, base)
	a2, err := Load(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m2.Params, m.Params) || !slices.Equal(a2.Params, a.Params) {
		t.Fatal("loading the adapter onto the base does not give the merged model")
	}
}

func TestConfigErrors(t *testing.T) {
	m := tinyModel(t, 7)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Rank: 4, Alpha: 8, Dropout: 0.1, Targets: []string{"attn"}}, "lora.dropout > 0 is not supported yet"},
		{Config{Rank: 4, Alpha: 8, Dropout: 1.5, Targets: []string{"attn"}}, "lora.dropout = 1.5: want a number in [0, 1)"},
		{Config{Rank: 0, Alpha: 8, Targets: []string{"attn"}}, "lora.rank = 0: want at least 1"},
		{Config{Rank: 2, Alpha: 0, Targets: []string{"attn"}}, "lora.alpha = 0: want a positive number"},
		{Config{Rank: 2, Alpha: 4, Targets: []string{"attn", "ffn"}}, `lora.targets: unknown target "ffn": choose among "attn", "attn_proj", "mlp"`},
		{Config{Rank: 2, Alpha: 4, Targets: []string{"mlp", "mlp"}}, `lora.targets: "mlp" is listed twice`},
		{Config{Rank: 2, Alpha: 4}, "lora.targets is empty"},
	} {
		_, err := New(m, c.cfg, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}
