// Package finetune is the `finetune` stage kind: full or LoRA fine-tuning of
// a model on instruction data.
//
// `base` is a model directory (pretrain's or finetune's `model`: config.json,
// model.safetensors, tokenizer.json). `data` and the optional `eval_data`
// are data_prep instruction data (tokdata with a loss mask); they must have
// been tokenized with the base model's tokenizer (data_prep's tokenizer.from),
// which data_prep checks character by character. Training runs ml/sft:
// one record per batch row, the loss on the response only.
//
// method = "full" trains every parameter; method = "lora" trains only a LoRA
// adapter (ml/lora) on the `lora.targets` modules, the base weights frozen.
// Outputs: `model`, the merged model in the base's layout with its
// tokenizer.json, and for LoRA `adapter`, in PEFT's layout
// (adapter_config.json, adapter_model.safetensors); its
// base_model_name_or_path is "base", since the base is a store artifact and
// not a hub name.
//
// Checkpoints go to the job's StateDir every training.checkpoint_every steps
// and a later attempt resumes from them bit for bit.
package finetune

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
	"github.com/llmlab/llmlab/ml/lora"
	"github.com/llmlab/llmlab/ml/sft"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/internal/training"
	"github.com/llmlab/llmlab/stages/pretrain"
	"github.com/zclconf/go-cty/cty"
)

// LoRABlock is shared by finetune, ppo and dpo.
var LoRABlock = stages.Block{Name: "lora", Attrs: []stages.Attr{
	stages.Num("rank", 8, "adapter rank"),
	stages.Num("alpha", 16, "scaling numerator (scale = alpha/rank)"),
	stages.Num("dropout", 0, "adapter dropout (only 0 is supported yet)"),
	{Name: "targets", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("attn")}), Doc: "among attn, attn_proj, mlp"},
}}

// Default learning rates (STAGES.md).
const (
	DefaultLRFull = 1e-4
	DefaultLRLoRA = 1e-3
)

// trainingBlock is the shared training block with learning_rate left unset
// by default, so that each method gets its own default.
func trainingBlock() stages.Block {
	b := stages.TrainingBlock(DefaultLRLoRA)
	for i, a := range b.Attrs {
		if a.Name == "learning_rate" {
			b.Attrs[i] = stages.NumOpt("learning_rate", "peak learning rate (default 1e-4 full, 1e-3 lora)")
		}
	}
	return b
}

type kind struct{ *stages.Static }

// Kind is the finetune stage kind.
var Kind = &kind{&stages.Static{
	KindName:    "finetune",
	KindVersion: 1,
	OutputNames: []string{"model", "adapter"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("base", true, "the model to tune"),
			stages.RefAttr("data", true, "instruction data from data_prep"),
			stages.RefAttr("eval_data", false, "validation instruction data"),
			stages.Str("method", "lora", "full or lora", "full", "lora"),
		},
		Blocks: []stages.Block{LoRABlock, trainingBlock()},
	},
}}

func init() { stages.Register(Kind) }

// Fingerprint is the numeric backend: its rounding decides the bytes.
func (k *kind) Fingerprint() string { return blasimpl.Name() }

// PruneKey: full fine-tuning ignores the lora block, so a shared block
// (for_each over both methods) changed for LoRA does not rerun it.
func (k *kind) PruneKey(settings map[string]any) {
	if settings["method"] == "full" {
		delete(settings, "lora")
	}
}

// Outputs are model and adapter for LoRA, model alone for full.
func (k *kind) Outputs(settings map[string]any) []string {
	if m, _ := settings["method"].(string); m == "full" {
		return []string{"model"}
	}
	return []string{"model", "adapter"}
}

type settings struct {
	Method string `json:"method"`
	LoRA   struct {
		Rank    *float64 `json:"rank"`
		Alpha   *float64 `json:"alpha"`
		Dropout *float64 `json:"dropout"`
		Targets []string `json:"targets"`
	} `json:"lora"`
	Training pretrain.TrainingSettings `json:"training"`
}

// loraConfig converts the lora block (absent: its defaults).
func (s settings) loraConfig() (lora.Config, error) {
	c := lora.Config{Rank: 8, Alpha: 16, Targets: []string{"attn"}}
	if s.LoRA.Rank != nil {
		n, err := pretrain.Whole("lora.rank", *s.LoRA.Rank)
		if err != nil {
			return c, err
		}
		c.Rank = n
	}
	if s.LoRA.Alpha != nil {
		c.Alpha = *s.LoRA.Alpha
	}
	if s.LoRA.Dropout != nil {
		c.Dropout = *s.LoRA.Dropout
	}
	if s.LoRA.Targets != nil {
		c.Targets = s.LoRA.Targets
	}
	return c, c.Validate()
}

// Run fine-tunes the base model and writes the outputs.
func (k *kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	log := job.Log
	if log == nil {
		log = io.Discard
	}
	var s settings
	if err := stages.DecodeSettings(job.Settings, &s); err != nil {
		return nil, fmt.Errorf("finetune settings: %w", err)
	}
	if s.Method == "" {
		s.Method = "lora"
	}
	if s.Method != "full" && s.Method != "lora" {
		return nil, fmt.Errorf("method = %q: use \"full\" or \"lora\"", s.Method)
	}
	ts, err := s.Training.Train()
	if err != nil {
		return nil, err
	}
	if s.Training.LearningRate == nil {
		ts.LearningRate = DefaultLRLoRA
		if s.Method == "full" {
			ts.LearningRate = DefaultLRFull
		}
	}
	var lc lora.Config
	if s.Method == "lora" {
		if lc, err = s.loraConfig(); err != nil {
			return nil, err
		}
	}

	baseDir := job.Inputs["base"]
	if baseDir == "" {
		return nil, fmt.Errorf("finetune: the base input was not provided")
	}
	m, special, err := gpt.LoadModelDir(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	baseTok, err := os.ReadFile(filepath.Join(baseDir, pretrain.TokenizerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("base has no %s: use a model from a pretrain or finetune stage", pretrain.TokenizerFile)
	}
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	tok, err := tokenizer.Parse(baseTok)
	if err != nil {
		return nil, fmt.Errorf("base: %s: %w", pretrain.TokenizerFile, err)
	}
	if tok.VocabSize() != m.Config.Vocab {
		return nil, fmt.Errorf("base: its tokenizer has %d tokens but the model's vocabulary is %d", tok.VocabSize(), m.Config.Vocab)
	}

	load := func(what string) ([]sft.Example, error) {
		dir := job.Inputs[what]
		d, _, raw, err := pretrain.ReadData(what, dir)
		if err != nil {
			return nil, err
		}
		if string(raw) != string(baseTok) {
			return nil, fmt.Errorf("%s was tokenized with a different tokenizer than the base model; prepare it with data_prep's tokenizer { from = <the base model or its data_prep's tokenizer> }", what)
		}
		exs, st, err := sft.Examples(d, m.Config.Context)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if st.Truncated > 0 {
			fmt.Fprintf(log, "%s: cut %d records longer than the model's context + 1 = %d tokens\n", what, st.Truncated, m.Config.Context+1)
		}
		if st.Dropped > 0 {
			fmt.Fprintf(log, "%s: dropped %d records whose response starts past the model's context %d\n", what, st.Dropped, m.Config.Context)
		}
		return exs, nil
	}
	if job.Inputs["data"] == "" {
		return nil, fmt.Errorf("finetune: the data input was not provided")
	}
	train, err := load("data")
	if err != nil {
		return nil, err
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("data holds no records the model can learn from")
	}
	var val []sft.Example
	if job.Inputs["eval_data"] != "" {
		if val, err = load("eval_data"); err != nil {
			return nil, err
		}
		if len(val) == 0 {
			fmt.Fprintln(log, "eval_data holds no records: training without validation loss")
		}
	}
	if job.Threads > 0 {
		blasimpl.SetThreads(job.Threads)
	}

	opt := sft.Options{Pad: tok.EndOfText()}
	trainable := len(m.Params)
	if s.Method == "lora" {
		if opt.Adapter, err = lora.New(m, lc, ts.Seed); err != nil {
			return nil, err
		}
		trainable = len(opt.Adapter.Params)
		fmt.Fprintf(log, "LoRA: rank %d, alpha %g (scale %g), modules %v: %d trainable parameters of %d\n",
			lc.Rank, lc.Alpha, lc.Scale(), lc.TargetModules(), trainable, len(m.Params))
	} else {
		fmt.Fprintf(log, "full fine-tuning: %d trainable parameters\n", trainable)
	}
	fmt.Fprintf(log, "base: %d layers, %d heads, %d dims, context %d, vocabulary %d; backend %s\n",
		m.Config.Layers, m.Config.Heads, m.Config.Dim, m.Config.Context, m.Config.Vocab, blasimpl.Name())
	fmt.Fprintf(log, "training: %d steps of %d records, lr %g, %d train records, %d validation records\n",
		ts.Steps, ts.BatchSize, ts.LearningRate, len(train), len(val))

	if opt.CheckpointDir, err = training.CheckpointDir(job, log, sft.CheckpointFile); err != nil {
		return nil, err
	}
	opt.Progress = training.Progress(job, log, ts.EvalEvery, ts.Steps)
	res, err := sft.Train(ctx, m, train, val, ts, opt)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("finetune: %w", err)
	}
	if res.ResumedFrom > 0 {
		fmt.Fprintf(log, "resumed from the checkpoint at step %d\n", res.ResumedFrom)
	}

	outputs := map[string]string{"model": "model"}
	out := filepath.Join(job.WorkDir, "model")
	if err := gpt.SaveModelDir(out, m, special); err != nil {
		return nil, fmt.Errorf("writing the model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, pretrain.TokenizerFile), baseTok, 0o644); err != nil {
		return nil, fmt.Errorf("writing the model: %w", err)
	}
	if opt.Adapter != nil {
		outputs["adapter"] = "adapter"
		if err := opt.Adapter.Save(filepath.Join(job.WorkDir, "adapter"), "base"); err != nil {
			return nil, fmt.Errorf("writing the adapter: %w", err)
		}
	}

	metrics := map[string]float64{"steps": float64(res.Steps), "tokens_per_sec": res.TokensPerSec,
		"trainable_params": float64(trainable), "records": float64(len(train))}
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
	return &stages.Result{Outputs: outputs, Metrics: metrics, History: hist}, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
