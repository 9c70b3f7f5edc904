package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/lora"
	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/dataprep"
	"github.com/llmlab/llmlab/stages/pretrain"
)

func settingsOf(t *testing.T, js string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fixture: generated addition records prepared by data_prep (compact
// template, char tokenizer) and a base model pretrained on them by the
// pretrain stage, built once per test binary.
var fx struct {
	dir, train, val, text, base string
}

func writeRecords(t *testing.T, path string, recs []textdata.Instruction) {
	t.Helper()
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T) {
	t.Helper()
	if fx.base != "" {
		return
	}
	dir, err := os.MkdirTemp("", "finetune-test-")
	if err != nil {
		t.Fatal(err)
	}
	fx.dir = dir
	recs, err := textdata.Generate(textdata.TaskSpec{Task: "arithmetic", Count: 200, Seed: 1, Ops: []string{"+"}})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "recs.json")
	writeRecords(t, src, recs)
	prep := &stages.Job{WorkDir: filepath.Join(dir, "prep"), Inputs: map[string]string{"source": src},
		Settings: settingsOf(t, `{"format": "instructions", "template": "compact", "tokenizer": {"kind": "char"}, "split": {"validation": 0.1, "seed": 0}, "max_length": {"policy": "drop"}}`)}
	os.MkdirAll(prep.WorkDir, 0o755)
	res, err := dataprep.Kind.Run(context.Background(), prep)
	if err != nil {
		t.Fatal(err)
	}
	fx.train, fx.val = filepath.Join(prep.WorkDir, res.Outputs["train"]), filepath.Join(prep.WorkDir, res.Outputs["validation"])

	// The same records as plain text, with the same tokenizer, for the
	// wrong-kind error.
	txt := filepath.Join(dir, "text.txt")
	os.WriteFile(txt, []byte("Q: What is 1 + 2?\nA: 3\n"), 0o644)
	tj := &stages.Job{WorkDir: filepath.Join(dir, "textprep"), Inputs: map[string]string{"source": txt, "tokenizer.from": fx.train},
		Settings: settingsOf(t, `{"format": "text", "split": {"validation": 0, "seed": 0}}`)}
	os.MkdirAll(tj.WorkDir, 0o755)
	if res, err = dataprep.Kind.Run(context.Background(), tj); err != nil {
		t.Fatal(err)
	}
	fx.text = filepath.Join(tj.WorkDir, res.Outputs["train"])

	pj := &stages.Job{WorkDir: filepath.Join(dir, "pretrain"), Inputs: map[string]string{"data": fx.train},
		Settings: settingsOf(t, `{"model": {"layers": 1, "heads": 2, "dim": 16, "context": 24},
			"training": {"steps": 30, "batch_size": 8, "learning_rate": 0.003, "warmup_steps": 3, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0}}`)}
	os.MkdirAll(pj.WorkDir, 0o755)
	if res, err = pretrain.Kind.Run(context.Background(), pj); err != nil {
		t.Fatal(err)
	}
	fx.base = filepath.Join(pj.WorkDir, res.Outputs["model"])

	// a base model without tokenizer.json
	bare := filepath.Join(fx.dir, "bare")
	os.MkdirAll(bare, 0o755)
	for _, f := range []string{gpt.ConfigFile, gpt.WeightsFile} {
		b, _ := os.ReadFile(filepath.Join(fx.base, f))
		os.WriteFile(filepath.Join(bare, f), b, 0o644)
	}
	// instruction data with another tokenizer (a char vocabulary with one
	// more character)
	other := filepath.Join(fx.dir, "other.json")
	writeRecords(t, other, []textdata.Instruction{{Instruction: "What is 1 + 1?", Output: "2!"}})
	j := &stages.Job{WorkDir: filepath.Join(fx.dir, "otherprep"), Inputs: map[string]string{"source": other},
		Settings: settingsOf(t, `{"format": "instructions", "template": "compact", "tokenizer": {"kind": "char"}, "split": {"validation": 0, "seed": 0}, "max_length": {"policy": "drop"}}`)}
	os.MkdirAll(j.WorkDir, 0o755)
	res, err = dataprep.Kind.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(j.WorkDir, res.Outputs["train"]), filepath.Join(fx.dir, "pretrain", "other"))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fx.dir != "" {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

const tiny = `{"base": "stage.base.model", "data": "stage.prep.train", "eval_data": "stage.prep.validation", "method": "METHOD",
	"lora": {"rank": 4, "alpha": 8, "dropout": 0, "targets": ["attn", "mlp"]},
	"training": {"steps": 12, "batch_size": 8, "learning_rate": null, "min_lr": null, "warmup_steps": 2,
		"weight_decay": 0.1, "grad_clip": 1, "seed": 3, "eval_every": 5, "eval_batches": 2, "checkpoint_every": 5}}`

func runJob(t *testing.T, js string, inputs map[string]string, state string) (*stages.Result, string, string, error) {
	t.Helper()
	fixture(t)
	if inputs == nil {
		inputs = map[string]string{"base": fx.base, "data": fx.train, "eval_data": fx.val}
	}
	var log bytes.Buffer
	job := &stages.Job{Address: "stage.sft", WorkDir: t.TempDir(), Settings: settingsOf(t, js), Inputs: inputs, StateDir: state, Log: &log, Threads: 1}
	res, err := Kind.Run(context.Background(), job)
	return res, job.WorkDir, log.String(), err
}

func method(m string) string { return strings.Replace(tiny, "METHOD", m, 1) }

func TestLoRAOutputs(t *testing.T) {
	res, work, log, err := runJob(t, method("lora"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(Kind.Outputs(settingsOf(t, method("lora"))), []string{"model", "adapter"}) || res.Outputs["adapter"] != "adapter" {
		t.Fatalf("outputs %v", res.Outputs)
	}
	model := filepath.Join(work, res.Outputs["model"])
	merged, _, err := gpt.LoadModelDir(model)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := os.ReadFile(filepath.Join(fx.base, pretrain.TokenizerFile))
	tm, _ := os.ReadFile(filepath.Join(model, pretrain.TokenizerFile))
	if !bytes.Equal(tb, tm) {
		t.Error("the model's tokenizer.json is not the base's")
	}
	// The merged model is the base plus the saved adapter.
	base, _, err := gpt.LoadModelDir(fx.base)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(base.Params)
	ad, err := lora.Load(filepath.Join(work, res.Outputs["adapter"]), base)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(base.Params, merged.Params) {
		t.Fatal("merged model != base + adapter")
	}
	if slices.Equal(before, merged.Params) {
		t.Fatal("LoRA training left the model unchanged")
	}
	if got := res.Metrics["trainable_params"]; got != float64(len(ad.Params)) || got >= float64(len(base.Params)) {
		t.Errorf("trainable_params %v (adapter %d, model %d)", got, len(ad.Params), len(base.Params))
	}
	for _, k := range []string{"train_loss", "val_loss", "steps", "tokens_per_sec"} {
		if _, ok := res.Metrics[k]; !ok {
			t.Errorf("metric %s missing: %v", k, res.Metrics)
		}
	}
	if !strings.Contains(log, "lr 0.001,") {
		t.Errorf("LoRA default learning rate is not 1e-3; log:\n%s", log)
	}
}

func TestFullOutputsAndResume(t *testing.T) {
	js := method("full")
	if !slices.Equal(Kind.Outputs(settingsOf(t, js)), []string{"model"}) {
		t.Fatalf("full outputs %v", Kind.Outputs(settingsOf(t, js)))
	}
	res, work, log, err := runJob(t, js, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Outputs["adapter"]; ok {
		t.Error("full fine-tuning wrote an adapter")
	}
	if !strings.Contains(log, "lr 0.0001,") {
		t.Errorf("full default learning rate is not 1e-4; log:\n%s", log)
	}
	want, _ := os.ReadFile(filepath.Join(work, "model", gpt.WeightsFile))

	// A run with a state directory leaves its step-10 checkpoint there
	// (the executor removes it only after committing the outputs); a
	// second attempt resumes from it and writes the same bytes.
	state := t.TempDir()
	if _, _, _, err := runJob(t, js, nil, state); err != nil {
		t.Fatal(err)
	}
	_, work2, log2, err := runJob(t, js, nil, state)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log2, "resumed from the checkpoint at step 10") {
		t.Errorf("no resume; log:\n%s", log2)
	}
	got, _ := os.ReadFile(filepath.Join(work2, "model", gpt.WeightsFile))
	if !bytes.Equal(got, want) {
		t.Error("resumed run wrote different weights")
	}
}

func TestErrors(t *testing.T) {
	fixture(t)
	for _, c := range []struct {
		name   string
		js     string
		inputs map[string]string
		want   string
	}{
		{"dropout", strings.Replace(method("lora"), `"dropout": 0`, `"dropout": 0.1`, 1), nil, "lora.dropout > 0 is not supported yet"},
		{"target", strings.Replace(method("lora"), `"mlp"]`, `"ffn"]`, 1), nil, `lora.targets: unknown target "ffn"`},
		{"rank", strings.Replace(method("lora"), `"rank": 4`, `"rank": 2.5`, 1), nil, "lora.rank = 2.5: want a whole number"},
		{"text data", method("full"), map[string]string{"base": fx.base, "data": fx.text}, `data: fine-tuning needs instruction data (records with a loss mask) from data_prep with format = "instructions"; got text data`},
		{"other tokenizer", method("full"), map[string]string{"base": fx.base, "data": filepath.Join(fx.dir, "pretrain", "other")}, "data was tokenized with a different tokenizer than the base model"},
		{"no tokenizer", method("full"), map[string]string{"base": filepath.Join(fx.dir, "bare"), "data": fx.train}, "base has no tokenizer.json: use a model from a pretrain or finetune stage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := runJob(t, c.js, c.inputs, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
