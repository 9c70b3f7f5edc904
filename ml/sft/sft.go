// Package sft is supervised fine-tuning of ml/gpt's GPT-2 on instruction
// records: full (every parameter trains) or through a LoRA adapter
// (ml/lora: only the adapter trains), and exact-match scoring of generated
// answers.
//
// Unlike pretraining, which samples windows of a token stream, each batch
// row here is one whole record, aligned at its first token: inputs are its
// tokens but the last, targets its tokens but the first, and the loss counts
// only the targets whose loss-mask value is 1 (the response and the
// end-of-text token; data_prep masks the prompt). Rows are padded with the
// end-of-text token to the longest record of the batch, the padding masked
// out; attention is causal, so padding after a record never changes it.
// Records are visited in epochs, each a permutation drawn from
// math/rand/v2's PCG seeded (seed, 100+epoch), so step k's batch depends on
// the seed and k alone and a resumed run sees the same batches.
package sft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/lora"
	"github.com/llmlab/llmlab/ml/optim"
	"github.com/llmlab/llmlab/ml/safetensors"
	"github.com/llmlab/llmlab/ml/tokdata"
)

// Example is one record: its tokens (prompt, response, end-of-text) and
// their loss mask (1: a target counted in the loss).
type Example struct {
	Tokens []int32
	Mask   []uint8
}

// ExampleStats counts what Examples did with records too long for the model.
type ExampleStats struct {
	Records   int // examples kept
	Truncated int // records cut to context+1 tokens
	Dropped   int // records with no counted target left after cutting
}

// Examples splits instruction data into records. A record longer than
// context+1 tokens is cut to that length (a model sees at most context
// tokens); one with no counted target left is dropped. Both are counted.
func Examples(d *tokdata.Data, context int) ([]Example, ExampleStats, error) {
	var st ExampleStats
	if d.Kind != tokdata.KindInstructions || d.RecordStarts == nil || d.LossMask == nil {
		return nil, st, fmt.Errorf("fine-tuning needs instruction data (records with a loss mask) from data_prep with format = \"instructions\"; got %s data", d.Kind)
	}
	var out []Example
	for i := range d.RecordStarts {
		s, e := d.Record(i)
		if e-s > context+1 {
			e = s + context + 1
			st.Truncated++
		}
		ex := Example{Tokens: make([]int32, e-s), Mask: append([]uint8(nil), d.LossMask[s:e]...)}
		for j := s; j < e; j++ {
			ex.Tokens[j-s] = int32(d.Tokens[j])
		}
		if e-s < 2 || allZero(ex.Mask[1:]) {
			st.Dropped++
			continue
		}
		out = append(out, ex)
	}
	st.Records = len(out)
	return out, st, nil
}

func allZero(b []uint8) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// Batch lays examples out as a [B, T] batch, T the longest example minus
// one: inputs = tokens[:n-1], targets = tokens[1:], mask = mask[1:], padded
// with pad (mask 0).
func Batch(exs []Example, pad int32) (inputs, targets []int32, mask []uint8, B, T int) {
	B = len(exs)
	for _, e := range exs {
		T = max(T, len(e.Tokens)-1)
	}
	inputs, targets, mask = make([]int32, B*T), make([]int32, B*T), make([]uint8, B*T)
	for b, e := range exs {
		n := len(e.Tokens) - 1
		row := b * T
		copy(inputs[row:row+n], e.Tokens[:n])
		copy(targets[row:row+n], e.Tokens[1:])
		copy(mask[row:row+n], e.Mask[1:])
		for j := n; j < T; j++ {
			inputs[row+j], targets[row+j] = pad, pad
		}
	}
	return inputs, targets, mask, B, T
}

// Order yields the examples of step k: batch rows k*B ... k*B+B-1 of the
// sequence of epoch permutations.
type Order struct {
	n     int
	seed  uint64
	epoch int
	perm  []int
}

// NewOrder orders n examples with seed.
func NewOrder(n int, seed uint64) *Order { return &Order{n: n, seed: seed, epoch: -1} }

// At is the index of the example in row i of the infinite sequence.
func (o *Order) At(i int) int {
	e := i / o.n
	if e != o.epoch {
		o.epoch = e
		o.perm = rand.New(rand.NewPCG(o.seed, 100+uint64(e))).Perm(o.n)
	}
	return o.perm[i%o.n]
}

// Options are Train's optional hooks.
type Options struct {
	// Adapter, when set, is trained instead of the model: the model's
	// parameters stay those of Adapter.Apply.
	Adapter       *lora.Adapter
	Progress      func(gpt.Progress)
	CheckpointDir string // resumable state goes here when not ""
	Pad           int32  // padding token (the end-of-text id)
}

// CheckpointFile is the checkpoint's name in Options.CheckpointDir.
const CheckpointFile = "finetune-checkpoint.safetensors"

// Train fine-tunes m (or opt.Adapter) on train with AdamW(0.9, 0.99),
// linear warm-up then cosine decay, global-norm clipping and decoupled
// weight decay on 2-D weights (every LoRA matrix), as gpt.Train does.
// val may be nil. Losses are evaluated every s.EvalEvery steps and at the
// end, on at most s.EvalBatches batches of each set (the first examples,
// in order).
func Train(ctx context.Context, m *gpt.Model, train, val []Example, s gpt.TrainSettings, opt Options) (*gpt.TrainResult, error) {
	if s.Steps < 1 || s.BatchSize < 1 {
		return nil, fmt.Errorf("training needs steps >= 1 and batch_size >= 1 (got %d and %d)", s.Steps, s.BatchSize)
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("the training data holds no records")
	}
	for _, set := range [][]Example{train, val} {
		for _, e := range set {
			if len(e.Tokens)-1 > m.Config.Context {
				return nil, fmt.Errorf("a record of %d tokens is longer than the model's context %d + 1", len(e.Tokens), m.Config.Context)
			}
		}
	}
	st, err := newStepper(m, opt.Adapter, s)
	if err != nil {
		return nil, err
	}
	params, adam, sched := st.params, st.adam, st.sched
	res := &gpt.TrainResult{Steps: s.Steps, ValLoss: math.NaN()}
	start := 0
	var ckpt string
	if opt.CheckpointDir != "" {
		ckpt = filepath.Join(opt.CheckpointDir, CheckpointFile)
		step, hist, err := loadCheckpoint(ckpt, m, opt.Adapter, params, adam, s)
		if err != nil {
			return nil, err
		}
		if step > 0 {
			start, res.History, res.ResumedFrom = step, hist, step
		}
	}
	evalBatches := max(s.EvalBatches, 1)
	eval := func(step int) error {
		p := gpt.EvalPoint{Step: step, ValLoss: math.NaN()}
		var err error
		if p.TrainLoss, err = Loss(m, train, s.BatchSize, evalBatches, opt.Pad); err != nil {
			return err
		}
		if len(val) > 0 {
			if p.ValLoss, err = Loss(m, val, s.BatchSize, evalBatches, opt.Pad); err != nil {
				return err
			}
		}
		res.History = append(res.History, p)
		return nil
	}

	order := NewOrder(len(train), s.Seed)
	rows := make([]Example, s.BatchSize)
	began := time.Now()
	tokens := 0
	for step := start; step < s.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.EvalEvery > 0 && step%s.EvalEvery == 0 {
			if err := eval(step); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		lr := sched.At(step)
		for i := range rows {
			rows[i] = train[order.At(step*s.BatchSize+i)]
		}
		inputs, targets, mask, B, T := Batch(rows, opt.Pad)
		tokens += B * T
		loss, err := st.step(inputs, targets, mask, B, T, lr)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		done := step + 1
		if opt.Progress != nil {
			dt := time.Since(t0).Seconds()
			perStep := time.Since(began) / time.Duration(done-start)
			opt.Progress(gpt.Progress{Step: done, Steps: s.Steps, Loss: float64(loss), LR: lr,
				TokensPerSec: float64(B*T) / dt, ETA: perStep * time.Duration(s.Steps-done)})
		}
		if ckpt != "" && s.CheckpointEvery > 0 && done%s.CheckpointEvery == 0 && done < s.Steps {
			if err := saveCheckpoint(ckpt, m, opt.Adapter, params, adam, s, done, res.History); err != nil {
				return nil, fmt.Errorf("writing checkpoint at step %d: %w", done, err)
			}
		}
	}
	if err := eval(s.Steps); err != nil {
		return nil, err
	}
	last := res.History[len(res.History)-1]
	res.TrainLoss, res.ValLoss = last.TrainLoss, last.ValLoss
	if el := time.Since(began).Seconds(); el > 0 {
		res.TokensPerSec = float64(tokens) / el // batch positions (padding included) per second
	}
	return res, nil
}

// stepper takes optimiser steps on the model or its adapter.
type stepper struct {
	m             *gpt.Model
	ad            *lora.Adapter
	params, grads []float32
	adam          *optim.AdamW
	sched         optim.Schedule
	clip          float64
}

func newStepper(m *gpt.Model, ad *lora.Adapter, s gpt.TrainSettings) (*stepper, error) {
	st := &stepper{m: m, ad: ad, params: m.Params, grads: m.Grads, clip: s.GradClip}
	var segs []optim.Segment
	if ad != nil {
		st.params, st.grads = ad.Params, ad.Grads
		segs = ad.Segments()
	} else {
		off := 0
		for _, t := range m.Tensors() {
			segs = append(segs, optim.Segment{Offset: off, Len: len(t.Data), Decay: t.Decay})
			off += len(t.Data)
		}
	}
	var err error
	st.adam, err = optim.NewAdamW(len(st.params), segs, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: s.WeightDecay})
	if err != nil {
		return nil, err
	}
	minLR := s.MinLR
	if minLR < 0 {
		minLR = s.LearningRate / 10
	}
	st.sched = optim.Schedule{LR: s.LearningRate, MinLR: minLR, Warmup: s.WarmupSteps, Total: s.Steps}
	return st, nil
}

// step runs forward and backward on one batch and updates the trainable
// parameters (for LoRA: the adapter, then the merged weights).
func (st *stepper) step(inputs, targets []int32, mask []uint8, B, T int, lr float64) (float32, error) {
	loss, err := st.m.Forward(inputs, targets, mask, B, T)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
		return 0, fmt.Errorf("training loss is %v; lower the learning_rate or check the data", loss)
	}
	st.m.ZeroGrad()
	if err := st.m.Backward(); err != nil {
		return 0, err
	}
	if st.ad != nil {
		st.ad.ComputeGrads()
	}
	optim.ClipGlobalNorm(st.grads, st.clip)
	st.adam.Update(st.params, st.grads, lr)
	if st.ad != nil {
		st.ad.Apply()
	}
	return loss, nil
}

// Loss is the mean masked loss of the first batches*B examples in order,
// weighting each batch by its counted targets (so it is the mean over
// every counted target).
func Loss(m *gpt.Model, exs []Example, B, batches int, pad int32) (float64, error) {
	var sum float64
	count := 0
	for b := 0; b < batches && b*B < len(exs); b++ {
		rows := exs[b*B : min((b+1)*B, len(exs))]
		inputs, targets, mask, nb, T := Batch(rows, pad)
		loss, err := m.Forward(inputs, targets, mask, nb, T)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, v := range mask {
			if v != 0 {
				n++
			}
		}
		sum += float64(loss) * float64(n)
		count += n
	}
	if count == 0 {
		return math.NaN(), nil
	}
	return sum / float64(count), nil
}

func checkpointKey(m *gpt.Model, ad *lora.Adapter, s gpt.TrainSettings) (string, error) {
	var lc *lora.Config
	if ad != nil {
		lc = &ad.Config
	}
	b, err := json.Marshal(struct {
		Config   gpt.Config
		LoRA     *lora.Config
		Settings gpt.TrainSettings
	}{m.Config, lc, s})
	return string(b), err
}

func saveCheckpoint(path string, m *gpt.Model, ad *lora.Adapter, params []float32, adam *optim.AdamW, s gpt.TrainSettings, step int, hist []gpt.EvalPoint) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	key, err := checkpointKey(m, ad, s)
	if err != nil {
		return err
	}
	h, err := json.Marshal(hist)
	if err != nil {
		return err
	}
	n := len(params)
	return safetensors.WriteFile(path, []safetensors.Tensor{
		{Name: "params", Shape: []int{n}, Data: params},
		{Name: "adam.m", Shape: []int{n}, Data: adam.M},
		{Name: "adam.v", Shape: []int{n}, Data: adam.V},
	}, map[string]string{"step": strconv.Itoa(step), "adam_step": strconv.Itoa(adam.Step), "history": string(h), "run": key})
}

func loadCheckpoint(path string, m *gpt.Model, ad *lora.Adapter, params []float32, adam *optim.AdamW, s gpt.TrainSettings) (int, []gpt.EvalPoint, error) {
	f, err := safetensors.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	key, err := checkpointKey(m, ad, s)
	if err != nil {
		return 0, nil, err
	}
	if f.Metadata["run"] != key {
		return 0, nil, fmt.Errorf("checkpoint %s was written by a run with a different model or settings; remove it to start over", path)
	}
	bad := func(what string, err error) error { return fmt.Errorf("checkpoint %s: %s: %v", path, what, err) }
	for _, t := range []struct {
		name string
		dst  []float32
	}{{"params", params}, {"adam.m", adam.M}, {"adam.v", adam.V}} {
		v, _, err := f.Float32(t.name)
		if err != nil {
			return 0, nil, bad(t.name, err)
		}
		if len(v) != len(t.dst) {
			return 0, nil, bad(t.name, fmt.Errorf("%d values, want %d", len(v), len(t.dst)))
		}
		copy(t.dst, v)
	}
	step, err := strconv.Atoi(f.Metadata["step"])
	if err != nil {
		return 0, nil, bad("step", err)
	}
	if adam.Step, err = strconv.Atoi(f.Metadata["adam_step"]); err != nil {
		return 0, nil, bad("adam_step", err)
	}
	var hist []gpt.EvalPoint
	if err := json.Unmarshal([]byte(f.Metadata["history"]), &hist); err != nil {
		return 0, nil, bad("history", err)
	}
	if ad != nil {
		ad.Apply()
	}
	return step, hist, nil
}
