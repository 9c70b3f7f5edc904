// Package pretrain is the `pretrain` stage kind: a GPT-2 model trained from
// scratch on tokenized text.
//
// It reads data_prep's tokenized data (a tokdata directory with
// tokenizer.json beside it), builds the model from the `model` block with the
// data's vocabulary, trains it with ml/gpt.Train and writes `model`, a
// Hugging Face GPT-2 directory: config.json, model.safetensors and the
// data's tokenizer.json. Instruction data is accepted; its loss mask is
// ignored, so the loss covers every token (STAGES.md).
//
// Checkpoints go to the job's StateDir every training.checkpoint_every
// steps; a run that finds one there resumes from it and ends with the same
// bytes as a run that was never interrupted.
package pretrain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/llmlab/llmlab/ml/blasimpl"
	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/internal/training"
)

// ModelBlock is the GPT-2 shape.
var ModelBlock = stages.Block{Name: "model", Required: true, Attrs: []stages.Attr{
	stages.NumReq("layers", "transformer blocks"),
	stages.NumReq("heads", "attention heads"),
	stages.NumReq("dim", "embedding width"),
	stages.NumReq("context", "context length in tokens"),
}}

// TokenizerFile is the tokenizer's name in data and model directories.
const TokenizerFile = "tokenizer.json"

type kind struct{ *stages.Static }

// Kind is the pretrain stage kind.
var Kind = &kind{&stages.Static{
	KindName:    "pretrain",
	KindVersion: 1,
	OutputNames: []string{"model"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("data", true, "tokenized training data (data_prep train)"),
			stages.RefAttr("eval_data", false, "tokenized validation data"),
		},
		Blocks: []stages.Block{ModelBlock, stages.TrainingBlock(1e-3)},
	},
}}

func init() { stages.Register(Kind) }

// Fingerprint is the numeric backend: its rounding decides the bytes.
func (k *kind) Fingerprint() string { return blasimpl.Name() }

// ModelSettings is the `model` block.
type ModelSettings struct {
	Layers  float64 `json:"layers"`
	Heads   float64 `json:"heads"`
	Dim     float64 `json:"dim"`
	Context float64 `json:"context"`
}

// TrainingSettings is the `training` block as it arrives (numbers as
// float64, min_lr null when unset).
type TrainingSettings struct {
	Steps           *float64 `json:"steps"`
	BatchSize       *float64 `json:"batch_size"`
	LearningRate    *float64 `json:"learning_rate"`
	MinLR           *float64 `json:"min_lr"`
	WarmupSteps     *float64 `json:"warmup_steps"`
	WeightDecay     *float64 `json:"weight_decay"`
	GradClip        *float64 `json:"grad_clip"`
	Seed            *float64 `json:"seed"`
	EvalEvery       *float64 `json:"eval_every"`
	EvalBatches     *float64 `json:"eval_batches"`
	CheckpointEvery *float64 `json:"checkpoint_every"`
}

type settings struct {
	Model    ModelSettings    `json:"model"`
	Training TrainingSettings `json:"training"`
}

// Config converts the model block into a gpt.Config for a vocabulary.
func (m ModelSettings) Config(vocab int) (gpt.Config, error) {
	cfg := gpt.Config{Vocab: vocab}
	for _, f := range []struct {
		name string
		v    float64
		dst  *int
	}{{"layers", m.Layers, &cfg.Layers}, {"heads", m.Heads, &cfg.Heads}, {"dim", m.Dim, &cfg.Dim}, {"context", m.Context, &cfg.Context}} {
		n, err := Whole("model."+f.name, f.v)
		if err != nil {
			return cfg, err
		}
		if n < 1 {
			return cfg, fmt.Errorf("model.%s = %d: want at least 1", f.name, n)
		}
		*f.dst = n
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("model: %w", err)
	}
	return cfg, nil
}

// Train converts the training block, starting from STAGES.md's defaults
// (min_lr unset: learning_rate/10).
func (t TrainingSettings) Train() (gpt.TrainSettings, error) {
	s := gpt.DefaultTrainSettings()
	ints := []struct {
		name string
		v    *float64
		dst  *int
	}{{"steps", t.Steps, &s.Steps}, {"batch_size", t.BatchSize, &s.BatchSize}, {"warmup_steps", t.WarmupSteps, &s.WarmupSteps},
		{"eval_every", t.EvalEvery, &s.EvalEvery}, {"eval_batches", t.EvalBatches, &s.EvalBatches}, {"checkpoint_every", t.CheckpointEvery, &s.CheckpointEvery}}
	for _, f := range ints {
		if f.v == nil {
			continue
		}
		n, err := Whole("training."+f.name, *f.v)
		if err != nil {
			return s, err
		}
		*f.dst = n
	}
	if t.Seed != nil {
		n, err := Whole("training.seed", *t.Seed)
		if err != nil {
			return s, err
		}
		if n < 0 {
			return s, fmt.Errorf("training.seed = %d: want 0 or more", n)
		}
		s.Seed = uint64(n)
	}
	for _, f := range []struct {
		v   *float64
		dst *float64
	}{{t.LearningRate, &s.LearningRate}, {t.WeightDecay, &s.WeightDecay}, {t.GradClip, &s.GradClip}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	s.MinLR = -1
	if t.MinLR != nil {
		if *t.MinLR < 0 {
			return s, fmt.Errorf("training.min_lr = %v: want 0 or more (leave it out for learning_rate/10)", *t.MinLR)
		}
		s.MinLR = *t.MinLR
	}
	if s.Steps < 1 || s.BatchSize < 1 {
		return s, fmt.Errorf("training needs steps >= 1 and batch_size >= 1 (got %d and %d)", s.Steps, s.BatchSize)
	}
	if !(s.LearningRate > 0) {
		return s, fmt.Errorf("training.learning_rate = %v: want a positive number", s.LearningRate)
	}
	return s, nil
}

// Whole converts a setting that must be an integer.
func Whole(name string, v float64) (int, error) {
	if v != math.Trunc(v) || math.IsInf(v, 0) || math.Abs(v) > 1<<40 {
		return 0, fmt.Errorf("%s = %v: want a whole number", name, v)
	}
	return int(v), nil
}

// ReadData reads a tokdata directory and the tokenizer.json beside its
// files; what names the input in errors.
func ReadData(what, dir string) (*tokdata.Data, tokenizer.Tokenizer, []byte, error) {
	d, err := tokdata.Read(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, TokenizerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("%s has no %s: use tokenized data from a data_prep stage (stage.<name>.train)", what, TokenizerFile)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	tok, err := tokenizer.Parse(raw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %s: %w", what, TokenizerFile, err)
	}
	if tok.VocabSize() != d.VocabSize {
		return nil, nil, nil, fmt.Errorf("%s: the data says vocab_size %d but its tokenizer has %d tokens", what, d.VocabSize, tok.VocabSize())
	}
	return d, tok, raw, nil
}

func ids(u []uint32) []int32 {
	out := make([]int32, len(u))
	for i, v := range u {
		out[i] = int32(v)
	}
	return out
}

// Run trains the model and writes it.
func (k *kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	log := job.Log
	if log == nil {
		log = io.Discard
	}
	var s settings
	if err := stages.DecodeSettings(job.Settings, &s); err != nil {
		return nil, fmt.Errorf("pretrain settings: %w", err)
	}
	ts, err := s.Training.Train()
	if err != nil {
		return nil, err
	}
	dataDir := job.Inputs["data"]
	if dataDir == "" {
		return nil, fmt.Errorf("pretrain: the data input was not provided")
	}
	train, tok, tokJSON, err := ReadData("data", dataDir)
	if err != nil {
		return nil, err
	}
	cfg, err := s.Model.Config(tok.VocabSize())
	if err != nil {
		return nil, err
	}
	td := gpt.TrainData{Train: ids(train.Tokens)}
	if train.Kind == tokdata.KindInstructions {
		fmt.Fprintln(log, "data holds instruction records: pretrain ignores their loss mask and learns every token")
	}
	if dir := job.Inputs["eval_data"]; dir != "" {
		val, vtok, vraw, err := ReadData("eval_data", dir)
		if err != nil {
			return nil, err
		}
		if string(vraw) != string(tokJSON) || vtok.VocabSize() != tok.VocabSize() {
			return nil, fmt.Errorf("eval_data was tokenized with a different tokenizer than data; prepare both with the same data_prep stage (or tokenizer.from)")
		}
		if len(val.Tokens) == 0 {
			fmt.Fprintln(log, "eval_data holds no tokens: training without validation loss")
		} else {
			td.Val = ids(val.Tokens)
		}
	}
	if n := len(td.Train); n < cfg.Context+1 {
		return nil, fmt.Errorf("model.context = %d is longer than the training data (%d tokens): lower the context or use more data", cfg.Context, n)
	}
	if td.Val != nil && len(td.Val) < cfg.Context+1 {
		return nil, fmt.Errorf("model.context = %d is longer than the validation data (eval_data, %d tokens): lower the context, raise split.validation in data_prep, or leave eval_data out", cfg.Context, len(td.Val))
	}
	if job.Threads > 0 {
		blasimpl.SetThreads(job.Threads)
	}

	m, err := gpt.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m.Init(ts.Seed)
	fmt.Fprintf(log, "model: %d layers, %d heads, %d dims, context %d, vocabulary %d: %d parameters; backend %s\n",
		cfg.Layers, cfg.Heads, cfg.Dim, cfg.Context, cfg.Vocab, cfg.NumParams(), blasimpl.Name())
	fmt.Fprintf(log, "training: %d steps of %d x %d tokens, lr %g, %d train tokens, %d validation tokens\n",
		ts.Steps, ts.BatchSize, cfg.Context, ts.LearningRate, len(td.Train), len(td.Val))

	opt := gpt.TrainOptions{}
	if opt.CheckpointDir, err = training.CheckpointDir(job, log, gpt.CheckpointFile); err != nil {
		return nil, err
	}
	opt.Progress = training.Progress(job, log, ts.EvalEvery, ts.Steps)
	res, err := gpt.Train(ctx, m, td, ts, opt)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	if res.ResumedFrom > 0 {
		fmt.Fprintf(log, "resumed from the checkpoint at step %d\n", res.ResumedFrom)
	}

	out := filepath.Join(job.WorkDir, "model")
	eot := int(tok.EndOfText())
	if err := gpt.SaveModelDir(out, m, &gpt.SpecialTokens{BOS: &eot, EOS: &eot}); err != nil {
		return nil, fmt.Errorf("writing the model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, TokenizerFile), tokJSON, 0o644); err != nil {
		return nil, fmt.Errorf("writing the model: %w", err)
	}

	metrics := map[string]float64{"steps": float64(res.Steps), "tokens_per_sec": res.TokensPerSec,
		"params": float64(cfg.NumParams())}
	var hist []stages.MetricPoint
	for _, p := range res.History {
		line := fmt.Sprintf("eval at step %d: train_loss %.4f", p.Step, p.TrainLoss)
		if finite(p.TrainLoss) {
			hist = append(hist, stages.MetricPoint{Name: "train_loss", Step: p.Step, Value: p.TrainLoss})
		}
		if finite(p.ValLoss) {
			hist = append(hist, stages.MetricPoint{Name: "val_loss", Step: p.Step, Value: p.ValLoss})
			line += fmt.Sprintf(", val_loss %.4f", p.ValLoss)
		}
		fmt.Fprintln(log, line)
	}
	if finite(res.TrainLoss) {
		metrics["train_loss"] = res.TrainLoss
	}
	if finite(res.ValLoss) {
		metrics["val_loss"] = res.ValLoss
	}
	return &stages.Result{Outputs: map[string]string{"model": "model"}, Metrics: metrics, History: hist}, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
