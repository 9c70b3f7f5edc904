// Package gpt is llmlab's float32 GPT-2: the model (forward and backward, one
// plain function per layer in the style of llm.c), its initialisation,
// training loop with checkpoint/resume, sampling, perplexity, and the
// Hugging Face model directory (config.json + model.safetensors).
//
// All matrix products go through gonum's blas32, so the numeric backend is
// whatever blas32.Use installed. Results are bit-identical at any GOMAXPROCS
// for a given backend.
package gpt

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Config is the GPT-2 architecture.
type Config struct {
	Layers  int     // n_layer
	Heads   int     // n_head
	Dim     int     // n_embd
	Context int     // n_positions: the longest sequence
	Vocab   int     // vocab_size
	Eps     float32 // layer_norm_epsilon; 0 means 1e-5
}

func (c Config) eps() float32 {
	if c.Eps == 0 {
		return 1e-5
	}
	return c.Eps
}

// Validate reports a configuration the model cannot be built from.
func (c Config) Validate() error {
	switch {
	case c.Layers < 1:
		return fmt.Errorf("model layers must be at least 1, got %d", c.Layers)
	case c.Heads < 1:
		return fmt.Errorf("model heads must be at least 1, got %d", c.Heads)
	case c.Dim < 1 || c.Dim%c.Heads != 0:
		return fmt.Errorf("model dim %d must be a positive multiple of heads (%d)", c.Dim, c.Heads)
	case c.Context < 1:
		return fmt.Errorf("model context must be at least 1, got %d", c.Context)
	case c.Vocab < 1:
		return fmt.Errorf("vocabulary size must be at least 1, got %d", c.Vocab)
	}
	return nil
}

// Tensor is one named parameter: a view into Model.Params (or Model.Grads),
// named and shaped as in Hugging Face's GPT-2 (Conv1D weights are [in, out]).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	// Decay is true for 2-D weights (matrices and embeddings), which take
	// weight decay; biases and LayerNorm parameters do not.
	Decay bool
}

type layerParams struct {
	ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb []float32
}

type paramViews struct {
	wte, wpe   []float32
	h          []layerParams
	lnfw, lnfb []float32
}

// layout returns the parameter tensors in their canonical order as views
// into buf (nil buf: only names and shapes).
func (c Config) layout(buf []float32) ([]Tensor, paramViews) {
	C, V, T := c.Dim, c.Vocab, c.Context
	var ts []Tensor
	off := 0
	add := func(name string, decay bool, shape ...int) []float32 {
		n := 1
		for _, s := range shape {
			n *= s
		}
		var d []float32
		if buf != nil {
			d = buf[off : off+n : off+n]
		}
		off += n
		ts = append(ts, Tensor{Name: name, Shape: shape, Data: d, Decay: decay})
		return d
	}
	var p paramViews
	p.wte = add("wte.weight", true, V, C)
	p.wpe = add("wpe.weight", true, T, C)
	for l := 0; l < c.Layers; l++ {
		pre := fmt.Sprintf("h.%d.", l)
		var lp layerParams
		lp.ln1w = add(pre+"ln_1.weight", false, C)
		lp.ln1b = add(pre+"ln_1.bias", false, C)
		lp.qkvw = add(pre+"attn.c_attn.weight", true, C, 3*C)
		lp.qkvb = add(pre+"attn.c_attn.bias", false, 3*C)
		lp.projw = add(pre+"attn.c_proj.weight", true, C, C)
		lp.projb = add(pre+"attn.c_proj.bias", false, C)
		lp.ln2w = add(pre+"ln_2.weight", false, C)
		lp.ln2b = add(pre+"ln_2.bias", false, C)
		lp.fcw = add(pre+"mlp.c_fc.weight", true, C, 4*C)
		lp.fcb = add(pre+"mlp.c_fc.bias", false, 4*C)
		lp.fcprojw = add(pre+"mlp.c_proj.weight", true, 4*C, C)
		lp.fcprojb = add(pre+"mlp.c_proj.bias", false, C)
		p.h = append(p.h, lp)
	}
	p.lnfw = add("ln_f.weight", false, C)
	p.lnfb = add("ln_f.bias", false, C)
	return ts, p
}

// NumParams is the number of float32 parameters of the configuration.
func (c Config) NumParams() int {
	ts, _ := c.layout(nil)
	n := 0
	for _, t := range ts {
		n += len1(t.Shape)
	}
	return n
}

func len1(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// Model is a GPT-2 with its parameters, gradients and activation buffers.
// It is not safe for concurrent use.
type Model struct {
	Config Config
	Params []float32 // all parameters, in Tensors() order
	Grads  []float32 // same layout as Params; Backward accumulates into it

	tensors, gradTensors []Tensor
	p, g                 paramViews

	acts       *activations
	dacts      *gradActs
	inputs     []int32
	targets    []int32
	weights    []float32 // per-position loss weight: 1/count or 0
	B, T       int
	hasTargets bool
}

// New returns a model with zero parameters; call Init or fill Params.
// Config.Eps 0 becomes 1e-5.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Eps = cfg.eps()
	n := cfg.NumParams()
	m := &Model{Config: cfg, Params: make([]float32, n), Grads: make([]float32, n)}
	m.tensors, m.p = cfg.layout(m.Params)
	m.gradTensors, m.g = cfg.layout(m.Grads)
	return m, nil
}

// Tensors are the named parameter views, in canonical order.
func (m *Model) Tensors() []Tensor { return m.tensors }

// GradTensors are the gradient views, in the same order as Tensors.
func (m *Model) GradTensors() []Tensor { return m.gradTensors }

// Init sets the parameters as GPT-2 and nanoGPT do: every weight matrix and
// both embeddings from normal(0, 0.02), the residual projections
// (attn.c_proj, mlp.c_proj) from normal(0, 0.02/sqrt(2*layers)), biases 0,
// LayerNorm weights 1 and biases 0. The draws come from math/rand/v2's PCG
// seeded with (seed, 0), taken tensor by tensor in canonical order, element
// by element in row-major order (NormFloat64 rounded to float32).
func (m *Model) Init(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0))
	projStd := 0.02 / math.Sqrt(2*float64(m.Config.Layers))
	for _, t := range m.tensors {
		switch {
		case hasSuffix(t.Name, "ln_1.weight"), hasSuffix(t.Name, "ln_2.weight"), t.Name == "ln_f.weight":
			for i := range t.Data {
				t.Data[i] = 1
			}
		case !t.Decay:
			clear(t.Data)
		default:
			std := 0.02
			if hasSuffix(t.Name, "c_proj.weight") {
				std = projStd
			}
			for i := range t.Data {
				t.Data[i] = float32(r.NormFloat64() * std)
			}
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// ZeroGrad sets all gradients to zero.
func (m *Model) ZeroGrad() { clear(m.Grads) }

type layerActs struct {
	ln1, ln1Mean, ln1Rstd, qkv, atty, att, attproj, res2       []float32
	ln2, ln2Mean, ln2Rstd, fch, fchTanh, fchGelu, fcproj, res3 []float32
}

type activations struct {
	capBT, capBTT                                int
	buf                                          []float32
	encoded                                      []float32
	h                                            []layerActs
	lnf, lnfMean, lnfRstd, logits, probs, losses []float32
}

// newActivations holds any batch with B*T <= BT and B*T*T <= BTT.
func newActivations(cfg Config, BT, BTT int) *activations {
	C, NH, V := cfg.Dim, cfg.Heads, cfg.Vocab
	a := &activations{capBT: BT, capBTT: BTT}
	var sizes []int
	layer := []int{BT * C, BT, BT, BT * 3 * C, BT * C, BTT * NH, BT * C, BT * C,
		BT * C, BT, BT, BT * 4 * C, BT * 4 * C, BT * 4 * C, BT * C, BT * C}
	sizes = append(sizes, BT*C)
	for l := 0; l < cfg.Layers; l++ {
		sizes = append(sizes, layer...)
	}
	sizes = append(sizes, BT*C, BT, BT, BT*V, BT*V, BT)
	total := 0
	for _, s := range sizes {
		total += s
	}
	a.buf = make([]float32, total)
	off := 0
	next := func() []float32 {
		s := sizes[0]
		sizes = sizes[1:]
		v := a.buf[off : off+s : off+s]
		off += s
		return v
	}
	a.encoded = next()
	for l := 0; l < cfg.Layers; l++ {
		a.h = append(a.h, layerActs{next(), next(), next(), next(), next(), next(), next(), next(),
			next(), next(), next(), next(), next(), next(), next(), next()})
	}
	a.lnf, a.lnfMean, a.lnfRstd, a.logits, a.probs, a.losses = next(), next(), next(), next(), next(), next()
	return a
}

// gradActs holds Backward's activation gradients. Only the residual
// stream's gradient crosses layers, so one set of per-layer buffers serves
// every layer and two residual buffers alternate: the backward pass touches
// a fraction of the memory that one set per layer would need.
type gradActs struct {
	buf                                          []float32
	logits, lnf                                  []float32
	res                                          [2][]float32
	res2, ln1, qkv, atty, ln2, fch, fchGelu, att []float32
}

func newGradActs(cfg Config, BT, BTT int) *gradActs {
	C, NH, V := cfg.Dim, cfg.Heads, cfg.Vocab
	sizes := []int{BT * V, BT * C, BT * C, BT * C, BT * C, BT * C, BT * 3 * C, BT * C, BT * C, BT * 4 * C, BT * 4 * C, BTT * NH}
	total := 0
	for _, s := range sizes {
		total += s
	}
	d := &gradActs{buf: make([]float32, total)}
	off := 0
	next := func() []float32 {
		s := sizes[0]
		sizes = sizes[1:]
		v := d.buf[off : off+s : off+s]
		off += s
		return v
	}
	d.logits, d.lnf, d.res[0], d.res[1] = next(), next(), next(), next()
	d.res2, d.ln1, d.qkv, d.atty, d.ln2, d.fch, d.fchGelu, d.att = next(), next(), next(), next(), next(), next(), next(), next()
	return d
}

func (m *Model) ensureActs(B, T int) {
	if m.acts != nil && B*T <= m.acts.capBT && B*T*T <= m.acts.capBTT {
		return
	}
	BT, BTT := B*T, B*T*T
	if m.acts != nil {
		BT, BTT = max(BT, m.acts.capBT), max(BTT, m.acts.capBTT)
	}
	m.acts = newActivations(m.Config, BT, BTT)
	m.dacts = nil
	m.inputs = make([]int32, BT)
	m.targets = make([]int32, BT)
	m.weights = make([]float32, BT)
}

// Forward runs the model on inputs [B,T] (T at most Config.Context). With
// targets [B,T] it also returns the mean cross-entropy over the counted
// positions: all of them when mask is nil, else those whose mask value is
// not zero. Without targets the loss is 0 and only Logits are computed.
func (m *Model) Forward(inputs, targets []int32, mask []uint8, B, T int) (float32, error) {
	cfg := m.Config
	C, NH, V, L := cfg.Dim, cfg.Heads, cfg.Vocab, cfg.Layers
	if B < 1 || T < 1 {
		return 0, fmt.Errorf("batch %dx%d is empty", B, T)
	}
	if T > cfg.Context {
		return 0, fmt.Errorf("sequence length %d is longer than the model's context %d", T, cfg.Context)
	}
	if len(inputs) != B*T || (targets != nil && len(targets) != B*T) || (mask != nil && len(mask) != B*T) {
		return 0, fmt.Errorf("batch %dx%d needs %d tokens (inputs %d, targets %d, mask %d)", B, T, B*T, len(inputs), len(targets), len(mask))
	}
	for i, tok := range inputs {
		if tok < 0 || int(tok) >= V {
			return 0, fmt.Errorf("token %d at position %d is outside the vocabulary of %d", tok, i, V)
		}
	}
	for i, tok := range targets {
		if tok < 0 || int(tok) >= V {
			return 0, fmt.Errorf("target %d at position %d is outside the vocabulary of %d", tok, i, V)
		}
	}
	m.ensureActs(B, T)
	m.B, m.T = B, T
	BT := B * T
	copy(m.inputs, inputs)
	a := m.acts
	p := m.p
	eps := cfg.eps()

	encoderForward(a.encoded, inputs, p.wte, p.wpe, B, T, C)
	residual := a.encoded
	for l := 0; l < L; l++ {
		la, lp := &a.h[l], &p.h[l]
		layernormForward(la.ln1, la.ln1Mean, la.ln1Rstd, residual, lp.ln1w, lp.ln1b, BT, C, eps)
		matmulForward(la.qkv, la.ln1, lp.qkvw, lp.qkvb, BT, C, 3*C)
		attentionForward(la.atty, la.att, la.qkv, B, T, C, NH)
		matmulForward(la.attproj, la.atty, lp.projw, lp.projb, BT, C, C)
		residualForward(la.res2, residual, la.attproj, BT*C)
		layernormForward(la.ln2, la.ln2Mean, la.ln2Rstd, la.res2, lp.ln2w, lp.ln2b, BT, C, eps)
		matmulForward(la.fch, la.ln2, lp.fcw, lp.fcb, BT, C, 4*C)
		geluForward(la.fchGelu, la.fchTanh, la.fch, BT*4*C)
		matmulForward(la.fcproj, la.fchGelu, lp.fcprojw, lp.fcprojb, BT, 4*C, C)
		residualForward(la.res3, la.res2, la.fcproj, BT*C)
		residual = la.res3
	}
	layernormForward(a.lnf, a.lnfMean, a.lnfRstd, residual, p.lnfw, p.lnfb, BT, C, eps)
	headForward(a.logits, a.lnf, p.wte, BT, C, V)

	m.hasTargets = targets != nil
	if targets == nil {
		return 0, nil
	}
	copy(m.targets, targets)
	count := 0
	for i := 0; i < BT; i++ {
		if mask == nil || mask[i] != 0 {
			count++
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("the loss mask excludes every position of the batch")
	}
	w := 1 / float32(count)
	for i := 0; i < BT; i++ {
		m.weights[i] = 0
		if mask == nil || mask[i] != 0 {
			m.weights[i] = w
		}
	}
	softmaxForward(a.probs, a.logits, BT, V)
	crossEntropyForward(a.losses, a.probs, targets, m.weights, BT, V)
	var sum float64
	for i := 0; i < BT; i++ {
		sum += float64(a.losses[i])
	}
	return float32(sum / float64(count)), nil
}

// Logits of the last Forward, [B,T,V].
func (m *Model) Logits() []float32 { return m.acts.logits[:m.B*m.T*m.Config.Vocab] }

// Backward accumulates into Grads the gradient of the mean loss of the last
// Forward, which must have had targets.
func (m *Model) Backward() error {
	if m.acts == nil || !m.hasTargets {
		return fmt.Errorf("backward needs a forward pass with targets first")
	}
	cfg := m.Config
	C, NH, V, L := cfg.Dim, cfg.Heads, cfg.Vocab, cfg.Layers
	B, T := m.B, m.T
	BT := B * T
	if m.dacts == nil {
		m.dacts = newGradActs(cfg, m.acts.capBT, m.acts.capBTT)
	}
	a, d := m.acts, m.dacts
	p, g := m.p, m.g
	// The gradient of a residual sum is its output's gradient, so the
	// residual branches read dres directly, and the layer input's gradient
	// starts as a copy of it. Buffers that layers accumulate into with +=
	// are cleared right before use.
	dlogits, dlnf := d.logits[:BT*V], d.lnf[:BT*C]
	clear(dlogits)
	crossEntropySoftmaxBackward(dlogits, a.probs, m.targets, m.weights, BT, V)
	clear(dlnf)
	headBackward(dlnf, g.wte, dlogits, a.lnf, p.wte, BT, C, V)
	dres, din := d.res[0][:BT*C], d.res[1][:BT*C]
	clear(dres)
	layernormBackward(dres, g.lnfw, g.lnfb, dlnf, a.h[L-1].res3, p.lnfw, a.lnfMean, a.lnfRstd, BT, C)
	dres2, dln1, dqkv, datty := d.res2[:BT*C], d.ln1[:BT*C], d.qkv[:BT*3*C], d.atty[:BT*C]
	dln2, dfch, dfchGelu := d.ln2[:BT*C], d.fch[:BT*4*C], d.fchGelu[:BT*4*C]
	for l := L - 1; l >= 0; l-- {
		la, lp, lg := &a.h[l], &p.h[l], &g.h[l]
		residual := a.encoded
		if l > 0 {
			residual = a.h[l-1].res3
		}
		copy(dres2, dres)
		clear(dfchGelu)
		matmulBackward(dfchGelu, lg.fcprojw, lg.fcprojb, dres, la.fchGelu, lp.fcprojw, BT, 4*C, C)
		clear(dfch)
		geluBackward(dfch, la.fch, la.fchTanh, dfchGelu, BT*4*C)
		clear(dln2)
		matmulBackward(dln2, lg.fcw, lg.fcb, dfch, la.ln2, lp.fcw, BT, C, 4*C)
		layernormBackward(dres2, lg.ln2w, lg.ln2b, dln2, la.res2, lp.ln2w, la.ln2Mean, la.ln2Rstd, BT, C)
		clear(datty)
		matmulBackward(datty, lg.projw, lg.projb, dres2, la.atty, lp.projw, BT, C, C)
		clear(dqkv)
		attentionBackward(dqkv, datty, la.qkv, la.att, d.att, B, T, C, NH)
		clear(dln1)
		matmulBackward(dln1, lg.qkvw, lg.qkvb, dqkv, la.ln1, lp.qkvw, BT, C, 3*C)
		copy(din, dres2)
		layernormBackward(din, lg.ln1w, lg.ln1b, dln1, residual, lp.ln1w, la.ln1Mean, la.ln1Rstd, BT, C)
		dres, din = din, dres
	}
	encoderBackward(g.wte, g.wpe, dres, m.inputs, B, T, C)
	return nil
}
