// Package lora holds LoRA adapters for ml/gpt's GPT-2, in PEFT's layout.
//
// An adapter on a Conv1D weight W [in, out] (y = xW + b) adds
// s·x·Aᵀ·Bᵀ to the layer's output, with A [r, in], B [out, r] and
// s = alpha/r: the layer computes x·W' with W' = W + s·Aᵀ·Bᵀ. The adapter
// trains through that exact reparametrisation without touching the model's
// code: Apply writes W' into the model (from a frozen copy of W), the model
// runs its ordinary Forward and Backward, and Grads maps the gradient G of
// the loss with respect to W' onto A and B by the chain rule:
//
//	dL/dA = s·Bᵀ·Gᵀ   [r, in]
//	dL/dB = s·Gᵀ·Aᵀ   [out, r]
//
// A step therefore costs about what a full fine-tuning step costs (the
// model still computes every weight gradient) but keeps optimiser state only
// for A and B. Adapter dropout cannot be expressed this way and is refused.
//
// After training the model already holds the merged weights W'. Save writes
// the adapter as PEFT does for GPT-2: adapter_config.json (peft_type "LORA",
// fan_in_fan_out true since GPT-2 uses Conv1D) and adapter_model.safetensors
// with names such as base_model.model.transformer.h.0.attn.c_attn.lora_A.weight.
package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/optim"
	"github.com/llmlab/llmlab/ml/safetensors"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Files of an adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// Targets are the `lora.targets` values and the GPT-2 modules each selects
// (PEFT target_modules suffixes).
var Targets = map[string][]string{
	"attn":      {"attn.c_attn"},
	"attn_proj": {"attn.c_proj"},
	"mlp":       {"mlp.c_fc", "mlp.c_proj"},
}

// TargetNames lists the valid targets in a fixed order.
var TargetNames = []string{"attn", "attn_proj", "mlp"}

// Config is the `lora` block.
type Config struct {
	Rank    int
	Alpha   float64
	Dropout float64
	Targets []string
}

// Validate reports settings an adapter cannot be built from.
func (c Config) Validate() error {
	if c.Rank < 1 {
		return fmt.Errorf("lora.rank = %d: want at least 1", c.Rank)
	}
	if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
		return fmt.Errorf("lora.alpha = %v: want a positive number", c.Alpha)
	}
	if c.Dropout != 0 {
		if c.Dropout < 0 || c.Dropout >= 1 {
			return fmt.Errorf("lora.dropout = %v: want a number in [0, 1)", c.Dropout)
		}
		return fmt.Errorf("lora.dropout > 0 is not supported yet (got %v): set lora.dropout = 0", c.Dropout)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("lora.targets is empty: choose among %s", quoted(TargetNames))
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if _, ok := Targets[t]; !ok {
			return fmt.Errorf("lora.targets: unknown target %q: choose among %s", t, quoted(TargetNames))
		}
		if seen[t] {
			return fmt.Errorf("lora.targets: %q is listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

func quoted(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// Scale is alpha/rank.
func (c Config) Scale() float64 { return c.Alpha / float64(c.Rank) }

// TargetModules are the PEFT target_modules of the targets, in model order
// (c_attn, attn.c_proj, c_fc, mlp.c_proj).
func (c Config) TargetModules() []string {
	var out []string
	for _, suffix := range []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"} {
		for _, t := range c.Targets {
			if slices.Contains(Targets[t], suffix) {
				out = append(out, suffix)
			}
		}
	}
	return out
}

// Module is the adapter of one Conv1D weight.
type Module struct {
	Name    string // GPT-2 module name, e.g. "h.0.attn.c_attn"
	In, Out int
	A, B    []float32 // [r, in] and [out, r]: views into Adapter.Params
	GA, GB  []float32 // their gradients: views into Adapter.Grads
	base    []float32 // frozen copy of the model's W [in, out]
	w, g    []float32 // the model's weight and weight-gradient views
}

// Adapter is a set of LoRA modules bound to one model.
type Adapter struct {
	Config  Config
	Modules []Module
	// Params holds every module's A then B, module by module; Grads has
	// the same layout.
	Params, Grads []float32
	model         *gpt.Model
}

// New builds an adapter on m's targeted weights (their current values become
// the frozen base) and initialises it as PEFT does: A from
// kaiming_uniform(a=sqrt(5)), i.e. uniform(-1/sqrt(in), 1/sqrt(in)), drawn
// from math/rand/v2's PCG seeded (seed, 7) module by module in row-major
// order; B = 0, so the adapted model starts equal to the base.
func New(m *gpt.Model, cfg Config, seed uint64) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	suffixes := cfg.TargetModules()
	grads := m.GradTensors()
	a := &Adapter{Config: cfg, model: m}
	r := cfg.Rank
	n := 0
	type found struct {
		t, g gpt.Tensor
	}
	var sel []found
	for i, t := range m.Tensors() {
		name, ok := strings.CutSuffix(t.Name, ".weight")
		if !ok {
			continue
		}
		for _, s := range suffixes {
			if strings.HasSuffix(name, "."+s) {
				sel = append(sel, found{t, grads[i]})
				n += r * (t.Shape[0] + t.Shape[1])
			}
		}
	}
	a.Params, a.Grads = make([]float32, n), make([]float32, n)
	off := 0
	for _, f := range sel {
		in, out := f.t.Shape[0], f.t.Shape[1]
		md := Module{Name: strings.TrimSuffix(f.t.Name, ".weight"), In: in, Out: out,
			base: slices.Clone(f.t.Data), w: f.t.Data, g: f.g.Data}
		md.A, md.GA = a.Params[off:off+r*in:off+r*in], a.Grads[off:off+r*in:off+r*in]
		off += r * in
		md.B, md.GB = a.Params[off:off+r*out:off+r*out], a.Grads[off:off+r*out:off+r*out]
		off += r * out
		a.Modules = append(a.Modules, md)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, md := range a.Modules {
		bound := 1 / math.Sqrt(float64(md.In))
		for i := range md.A {
			md.A[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	a.Apply()
	return a, nil
}

// Segments are the optimiser segments of Params: one per matrix, all
// decayed (PEFT with the Hugging Face Trainer decays lora_A and lora_B).
func (a *Adapter) Segments() []optim.Segment {
	var out []optim.Segment
	off := 0
	for _, md := range a.Modules {
		out = append(out, optim.Segment{Offset: off, Len: len(md.A), Decay: true},
			optim.Segment{Offset: off + len(md.A), Len: len(md.B), Decay: true})
		off += len(md.A) + len(md.B)
	}
	return out
}

// Apply writes the merged weights W' = W + s·Aᵀ·Bᵀ into the model.
func (a *Adapter) Apply() {
	r, s := a.Config.Rank, float32(a.Config.Scale())
	for _, md := range a.Modules {
		copy(md.w, md.base)
		blas32.Gemm(blas.Trans, blas.Trans, s,
			blas32.General{Rows: r, Cols: md.In, Stride: md.In, Data: md.A},
			blas32.General{Rows: md.Out, Cols: r, Stride: r, Data: md.B},
			1, blas32.General{Rows: md.In, Cols: md.Out, Stride: md.Out, Data: md.w})
	}
}

// ComputeGrads sets Grads from the model's weight gradients (those of the
// merged weights, as the last Backward left them).
func (a *Adapter) ComputeGrads() {
	r, s := a.Config.Rank, float32(a.Config.Scale())
	for _, md := range a.Modules {
		G := blas32.General{Rows: md.In, Cols: md.Out, Stride: md.Out, Data: md.g}
		// dA [r, in] = s · Bᵀ [r, out] · Gᵀ [out, in]
		blas32.Gemm(blas.Trans, blas.Trans, s,
			blas32.General{Rows: md.Out, Cols: r, Stride: r, Data: md.B}, G,
			0, blas32.General{Rows: r, Cols: md.In, Stride: md.In, Data: md.GA})
		// dB [out, r] = s · Gᵀ [out, in] · Aᵀ [in, r]
		blas32.Gemm(blas.Trans, blas.Trans, s, G,
			blas32.General{Rows: r, Cols: md.In, Stride: md.In, Data: md.A},
			0, blas32.General{Rows: md.Out, Cols: r, Stride: r, Data: md.GB})
	}
}

// Base returns the frozen base weight of module name ("h.0.attn.c_attn").
func (a *Adapter) Base(name string) []float32 {
	for _, md := range a.Modules {
		if md.Name == name {
			return md.base
		}
	}
	return nil
}

// PEFTName is PEFT's tensor name for a module's A or B ("A" or "B").
func PEFTName(module, which string) string {
	return "base_model.model.transformer." + module + ".lora_" + which + ".weight"
}

// PEFTConfig is adapter_config.json (the keys PEFT needs to load it).
type PEFTConfig struct {
	PeftType            string   `json:"peft_type"`
	TaskType            string   `json:"task_type"`
	BaseModelNameOrPath string   `json:"base_model_name_or_path"`
	R                   int      `json:"r"`
	LoraAlpha           float64  `json:"lora_alpha"`
	LoraDropout         float64  `json:"lora_dropout"`
	TargetModules       []string `json:"target_modules"`
	FanInFanOut         bool     `json:"fan_in_fan_out"`
	Bias                string   `json:"bias"`
	InferenceMode       bool     `json:"inference_mode"`
	InitLoraWeights     bool     `json:"init_lora_weights"`
	UseRSLoRA           bool     `json:"use_rslora"`
	ModulesToSave       []string `json:"modules_to_save"`
	LayersToTransform   []int    `json:"layers_to_transform"`
	LayersPattern       *string  `json:"layers_pattern"`
	RankPattern         struct{} `json:"rank_pattern"`
	AlphaPattern        struct{} `json:"alpha_pattern"`
	Revision            *string  `json:"revision"`
}

// Save writes adapter_config.json and adapter_model.safetensors into dir.
// base is written as base_model_name_or_path.
func (a *Adapter) Save(dir, base string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := PEFTConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: base,
		R: a.Config.Rank, LoraAlpha: a.Config.Alpha, LoraDropout: a.Config.Dropout,
		TargetModules: a.Config.TargetModules(), FanInFanOut: true, Bias: "none",
		InferenceMode: true, InitLoraWeights: true}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	r := a.Config.Rank
	for _, md := range a.Modules {
		ts = append(ts,
			safetensors.Tensor{Name: PEFTName(md.Name, "A"), Shape: []int{r, md.In}, Data: md.A},
			safetensors.Tensor{Name: PEFTName(md.Name, "B"), Shape: []int{md.Out, r}, Data: md.B})
	}
	return safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"})
}

// Load reads an adapter directory written by Save (or by PEFT for a GPT-2
// with the same shapes) onto m: m's current targeted weights become the
// frozen base and the merged weights are applied.
func Load(dir string, m *gpt.Model) (*Adapter, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	var pc PEFTConfig
	if err := json.Unmarshal(b, &pc); err != nil {
		return nil, fmt.Errorf("adapter: %s: %w", ConfigFile, err)
	}
	if pc.PeftType != "LORA" {
		return nil, fmt.Errorf("adapter: peft_type %q: only \"LORA\" is supported", pc.PeftType)
	}
	cfg := Config{Rank: pc.R, Alpha: pc.LoraAlpha}
	for _, t := range TargetNames {
		mods := Targets[t]
		if slices.ContainsFunc(mods, func(s string) bool { return slices.Contains(pc.TargetModules, s) }) {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if got, want := cfg.TargetModules(), pc.TargetModules; !slices.Equal(got, want) {
		return nil, fmt.Errorf("adapter: target_modules %v cannot be expressed as lora.targets (%s)", want, quoted(TargetNames))
	}
	a, err := New(m, cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	for _, md := range a.Modules {
		for _, p := range []struct {
			which string
			dst   []float32
			shape []int
		}{{"A", md.A, []int{cfg.Rank, md.In}}, {"B", md.B, []int{md.Out, cfg.Rank}}} {
			name := PEFTName(md.Name, p.which)
			v, shape, err := f.Float32(name)
			if err != nil {
				return nil, fmt.Errorf("adapter: %w", err)
			}
			if !slices.Equal(shape, p.shape) {
				return nil, fmt.Errorf("adapter: %s has shape %v, want %v", name, shape, p.shape)
			}
			copy(p.dst, v)
		}
	}
	if len(f.Names()) != 2*len(a.Modules) {
		return nil, fmt.Errorf("adapter: %s holds %d tensors, want %d", WeightsFile, len(f.Names()), 2*len(a.Modules))
	}
	a.Apply()
	return a, nil
}
