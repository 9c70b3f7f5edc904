package gpt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/llmlab/llmlab/ml/optim"
	"github.com/llmlab/llmlab/ml/safetensors"
)

// TrainSettings mirror the `training` block of the pretrain stage
// (STAGES.md). Start from DefaultTrainSettings and override.
type TrainSettings struct {
	Steps           int     `json:"steps"`
	BatchSize       int     `json:"batch_size"`
	LearningRate    float64 `json:"learning_rate"`
	MinLR           float64 `json:"min_lr"` // < 0: LearningRate / 10
	WarmupSteps     int     `json:"warmup_steps"`
	WeightDecay     float64 `json:"weight_decay"`
	GradClip        float64 `json:"grad_clip"` // <= 0: no clipping
	Seed            uint64  `json:"seed"`
	EvalEvery       int     `json:"eval_every"`       // <= 0: evaluate only at the end
	EvalBatches     int     `json:"eval_batches"`     // batches per loss estimate
	CheckpointEvery int     `json:"checkpoint_every"` // <= 0: never
}

// DefaultTrainSettings are STAGES.md's defaults (steps and batch size have
// none there; these are nanoGPT's shakespeare-char values).
func DefaultTrainSettings() TrainSettings {
	return TrainSettings{Steps: 2000, BatchSize: 12, LearningRate: 1e-3, MinLR: -1, WarmupSteps: 100,
		WeightDecay: 0.1, GradClip: 1.0, Seed: 0, EvalEvery: 250, EvalBatches: 20, CheckpointEvery: 500}
}

func (s TrainSettings) minLR() float64 {
	if s.MinLR < 0 {
		return s.LearningRate / 10
	}
	return s.MinLR
}

// TrainData is the training input: token ids and an optional loss mask of
// the same length (a target token counts when its mask value is not zero;
// nil counts every token). Val is optional.
type TrainData struct {
	Train     []int32
	TrainMask []uint8
	Val       []int32
	ValMask   []uint8
}

// Progress is reported after every training step.
type Progress struct {
	Step, Steps  int // Step steps done out of Steps
	Loss         float64
	LR           float64
	TokensPerSec float64 // of the last step
	ETA          time.Duration
}

// EvalPoint is one loss estimate (ValLoss is NaN without validation data).
type EvalPoint struct {
	Step      int     `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	ValLoss   float64 `json:"val_loss"`
}

// TrainResult holds the final metrics and the per-eval history.
type TrainResult struct {
	TrainLoss    float64 // final estimate on EvalBatches random training batches
	ValLoss      float64 // same on validation data; NaN without it
	TokensPerSec float64 // training tokens per second of wall time in this run
	Steps        int
	History      []EvalPoint
	ResumedFrom  int // step of the checkpoint resumed from, 0 for a fresh run
}

// TrainOptions are run-time choices that cannot change the result.
type TrainOptions struct {
	Progress func(Progress)
	// CheckpointDir, if set, receives checkpoint.safetensors every
	// CheckpointEvery steps (atomically replaced); a checkpoint found there
	// at start is resumed from.
	CheckpointDir string
}

// CheckpointFile is the checkpoint's name inside TrainOptions.CheckpointDir.
const CheckpointFile = "checkpoint.safetensors"

// RNG use: batches are drawn by math/rand/v2 PCG seeded (Seed, 1), one
// IntN(len(data)-context) per sequence, nanoGPT style. Every evaluation
// draws its batches from a fresh PCG seeded (Seed, 2) (training split) and
// (Seed, 3) (validation), so all evaluations score the same windows.

// Train trains m in place (initialise it first, e.g. with m.Init(seed)).
// It stops with an error on a NaN or infinite loss, on data shorter than the
// context plus one, or when ctx is cancelled.
func Train(ctx context.Context, m *Model, data TrainData, s TrainSettings, opt TrainOptions) (*TrainResult, error) {
	T, B := m.Config.Context, s.BatchSize
	if s.Steps < 1 || B < 1 {
		return nil, fmt.Errorf("training needs steps >= 1 and batch_size >= 1 (got %d and %d)", s.Steps, B)
	}
	if err := checkData("training", data.Train, data.TrainMask, T, m.Config.Vocab); err != nil {
		return nil, err
	}
	if data.Val != nil {
		if err := checkData("validation", data.Val, data.ValMask, T, m.Config.Vocab); err != nil {
			return nil, err
		}
	}
	evalBatches := max(s.EvalBatches, 1)
	var segs []optim.Segment
	off := 0
	for _, t := range m.Tensors() {
		segs = append(segs, optim.Segment{Offset: off, Len: len(t.Data), Decay: t.Decay})
		off += len(t.Data)
	}
	adam, err := optim.NewAdamW(len(m.Params), segs, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: s.WeightDecay})
	if err != nil {
		return nil, err
	}
	sched := optim.Schedule{LR: s.LearningRate, MinLR: s.minLR(), Warmup: s.WarmupSteps, Total: s.Steps}
	pcg := rand.NewPCG(s.Seed, 1)
	rng := rand.New(pcg)
	res := &TrainResult{Steps: s.Steps, ValLoss: math.NaN()}
	start := 0

	var ckpt string
	if opt.CheckpointDir != "" {
		ckpt = filepath.Join(opt.CheckpointDir, CheckpointFile)
		st, err := loadCheckpoint(ckpt, m, adam, pcg, s)
		if err != nil {
			return nil, err
		}
		if st != nil {
			start, res.History, res.ResumedFrom = st.step, st.history, st.step
		}
	}

	inputs := make([]int32, B*T)
	targets := make([]int32, B*T)
	var mask []uint8
	if data.TrainMask != nil {
		mask = make([]uint8, B*T)
	}
	eval := func(step int) error {
		p := EvalPoint{Step: step, ValLoss: math.NaN()}
		var err error
		if p.TrainLoss, err = estimateLoss(m, data.Train, data.TrainMask, B, evalBatches, rand.New(rand.NewPCG(s.Seed, 2))); err != nil {
			return err
		}
		if data.Val != nil {
			if p.ValLoss, err = estimateLoss(m, data.Val, data.ValMask, B, evalBatches, rand.New(rand.NewPCG(s.Seed, 3))); err != nil {
				return err
			}
		}
		res.History = append(res.History, p)
		return nil
	}

	began := time.Now()
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
		sampleBatch(inputs, targets, mask, data.Train, data.TrainMask, B, T, rng)
		loss, err := m.Forward(inputs, targets, mask, B, T)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			return nil, fmt.Errorf("training loss is %v at step %d; lower the learning_rate or check the data", loss, step+1)
		}
		m.ZeroGrad()
		if err := m.Backward(); err != nil {
			return nil, err
		}
		optim.ClipGlobalNorm(m.Grads, s.GradClip)
		adam.Update(m.Params, m.Grads, lr)

		done := step + 1
		if opt.Progress != nil {
			dt := time.Since(t0).Seconds()
			perStep := time.Since(began) / time.Duration(done-start)
			opt.Progress(Progress{Step: done, Steps: s.Steps, Loss: float64(loss), LR: lr,
				TokensPerSec: float64(B*T) / dt, ETA: perStep * time.Duration(s.Steps-done)})
		}
		if ckpt != "" && s.CheckpointEvery > 0 && done%s.CheckpointEvery == 0 && done < s.Steps {
			if err := saveCheckpoint(ckpt, m, adam, pcg, s, done, res.History); err != nil {
				return nil, fmt.Errorf("writing checkpoint at step %d: %w", done, err)
			}
		}
	}
	elapsed := time.Since(began).Seconds()
	if err := eval(s.Steps); err != nil {
		return nil, err
	}
	last := res.History[len(res.History)-1]
	res.TrainLoss, res.ValLoss = last.TrainLoss, last.ValLoss
	if elapsed > 0 {
		res.TokensPerSec = float64((s.Steps-start)*B*T) / elapsed
	}
	return res, nil
}

func checkData(what string, tokens []int32, mask []uint8, T, V int) error {
	if len(tokens) < T+1 {
		return fmt.Errorf("context %d is longer than the data (%d tokens): the %s data needs at least context+1 = %d tokens", T, len(tokens), what, T+1)
	}
	if mask != nil && len(mask) != len(tokens) {
		return fmt.Errorf("the %s loss mask has %d entries for %d tokens", what, len(mask), len(tokens))
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= V {
			return fmt.Errorf("%s token %d at position %d is outside the vocabulary of %d", what, t, i, V)
		}
	}
	return nil
}

// sampleBatch fills inputs/targets [B,T] (and mask, when data has one) with
// random windows: x = data[i:i+T], y = data[i+1:i+T+1].
func sampleBatch(inputs, targets []int32, mask []uint8, data []int32, dmask []uint8, B, T int, rng *rand.Rand) {
	for b := 0; b < B; b++ {
		i := rng.IntN(len(data) - T)
		copy(inputs[b*T:(b+1)*T], data[i:i+T])
		copy(targets[b*T:(b+1)*T], data[i+1:i+T+1])
		if dmask != nil {
			copy(mask[b*T:(b+1)*T], dmask[i+1:i+T+1])
		}
	}
}

// estimateLoss is the mean loss of n random batches (batches whose mask
// excludes every position are skipped).
func estimateLoss(m *Model, data []int32, dmask []uint8, B, n int, rng *rand.Rand) (float64, error) {
	T := m.Config.Context
	inputs, targets := make([]int32, B*T), make([]int32, B*T)
	var mask []uint8
	if dmask != nil {
		mask = make([]uint8, B*T)
	}
	var sum float64
	count := 0
	for i := 0; i < n; i++ {
		sampleBatch(inputs, targets, mask, data, dmask, B, T, rng)
		if mask != nil && allZero(mask) {
			continue
		}
		loss, err := m.Forward(inputs, targets, mask, B, T)
		if err != nil {
			return 0, err
		}
		sum += float64(loss)
		count++
	}
	if count == 0 {
		return math.NaN(), nil
	}
	return sum / float64(count), nil
}

func allZero(b []uint8) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

type checkpointState struct {
	step    int
	history []EvalPoint
}

func checkpointKey(m *Model, s TrainSettings) (string, error) {
	b, err := json.Marshal(struct {
		Config   Config
		Settings TrainSettings
	}{m.Config, s})
	return string(b), err
}

// saveCheckpoint writes params, Adam moments, the step, the batch RNG state
// and the eval history into one safetensors file, atomically.
func saveCheckpoint(path string, m *Model, adam *optim.AdamW, pcg *rand.PCG, s TrainSettings, step int, history []EvalPoint) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	key, err := checkpointKey(m, s)
	if err != nil {
		return err
	}
	rs, err := pcg.MarshalBinary()
	if err != nil {
		return err
	}
	hist, err := json.Marshal(history)
	if err != nil {
		return err
	}
	n := len(m.Params)
	return safetensors.WriteFile(path, []safetensors.Tensor{
		{Name: "params", Shape: []int{n}, Data: m.Params},
		{Name: "adam.m", Shape: []int{n}, Data: adam.M},
		{Name: "adam.v", Shape: []int{n}, Data: adam.V},
	}, map[string]string{
		"step":      strconv.Itoa(step),
		"adam_step": strconv.Itoa(adam.Step),
		"rng":       base64.StdEncoding.EncodeToString(rs),
		"history":   string(hist),
		"run":       key,
	})
}

// loadCheckpoint restores state from path; (nil, nil) when there is none.
func loadCheckpoint(path string, m *Model, adam *optim.AdamW, pcg *rand.PCG, s TrainSettings) (*checkpointState, error) {
	f, err := safetensors.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	key, err := checkpointKey(m, s)
	if err != nil {
		return nil, err
	}
	if f.Metadata["run"] != key {
		return nil, fmt.Errorf("checkpoint %s was written by a run with a different model or training settings; remove it to start over", path)
	}
	bad := func(what string, err error) error {
		return fmt.Errorf("checkpoint %s: %s: %v", path, what, err)
	}
	for _, t := range []struct {
		name string
		dst  []float32
	}{{"params", m.Params}, {"adam.m", adam.M}, {"adam.v", adam.V}} {
		v, _, err := f.Float32(t.name)
		if err != nil {
			return nil, bad(t.name, err)
		}
		if len(v) != len(t.dst) {
			return nil, bad(t.name, fmt.Errorf("%d values, want %d", len(v), len(t.dst)))
		}
		copy(t.dst, v)
	}
	st := &checkpointState{}
	if st.step, err = strconv.Atoi(f.Metadata["step"]); err != nil {
		return nil, bad("step", err)
	}
	if adam.Step, err = strconv.Atoi(f.Metadata["adam_step"]); err != nil {
		return nil, bad("adam_step", err)
	}
	rs, err := base64.StdEncoding.DecodeString(f.Metadata["rng"])
	if err != nil {
		return nil, bad("rng", err)
	}
	if err := pcg.UnmarshalBinary(rs); err != nil {
		return nil, bad("rng", err)
	}
	if err := json.Unmarshal([]byte(f.Metadata["history"]), &st.history); err != nil {
		return nil, bad("history", err)
	}
	return st, nil
}

type evalPointJSON struct {
	Step      int      `json:"step"`
	TrainLoss *float64 `json:"train_loss"`
	ValLoss   *float64 `json:"val_loss"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// MarshalJSON writes NaN losses (no validation data) as null.
func (p EvalPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(evalPointJSON{p.Step, finite(p.TrainLoss), finite(p.ValLoss)})
}

// UnmarshalJSON reads null losses as NaN.
func (p *EvalPoint) UnmarshalJSON(b []byte) error {
	var j evalPointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = EvalPoint{j.Step, orNaN(j.TrainLoss), orNaN(j.ValLoss)}
	return nil
}
