package pretrain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/dataprep"
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

// prepared runs data_prep on the test corpus once per test binary.
var prepared struct{ train, val string }

func prepare(t *testing.T) (train, val string) {
	t.Helper()
	if prepared.train != "" {
		return prepared.train, prepared.val
	}
	dir, err := os.MkdirTemp("", "pretrain-test-")
	if err != nil {
		t.Fatal(err)
	}
	job := &stages.Job{WorkDir: dir, Inputs: map[string]string{"source": "../dataprep/testdata/shakespeare_6k.txt"},
		Settings: settingsOf(t, `{"source": "dataset.x", "tokenizer": {"kind": "char", "vocab_size": 512}, "split": {"validation": 0.1, "seed": 0}, "max_length": {"policy": "drop"}}`)}
	res, err := dataprep.Kind.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	prepared.train = filepath.Join(dir, res.Outputs["train"])
	prepared.val = filepath.Join(dir, res.Outputs["validation"])
	return prepared.train, prepared.val
}

func TestMain(m *testing.M) {
	code := m.Run()
	if prepared.train != "" {
		os.RemoveAll(filepath.Dir(prepared.train))
	}
	os.Exit(code)
}

const tiny = `{"data": "stage.prep.train", "eval_data": "stage.prep.validation",
	"model": {"layers": 2, "heads": 2, "dim": 32, "context": 32},
	"training": {"steps": STEPS, "batch_size": 4, "learning_rate": LR, "min_lr": null, "warmup_steps": 5,
		"weight_decay": 0.1, "grad_clip": 1, "seed": 1, "eval_every": 10, "eval_batches": 2, "checkpoint_every": 10}}`

func tinySettings(steps, lr string) string {
	return strings.NewReplacer("STEPS", steps, "LR", lr).Replace(tiny)
}

type runOut struct {
	res  *stages.Result
	work string
	log  string
	err  error
}

func run(t *testing.T, ctx context.Context, js string, threads int, state string, progress func(stages.Progress)) runOut {
	t.Helper()
	train, val := prepare(t)
	var log bytes.Buffer
	job := &stages.Job{Address: "stage.base", WorkDir: t.TempDir(), Settings: settingsOf(t, js),
		Inputs: map[string]string{"data": train, "eval_data": val}, Threads: threads, StateDir: state, Log: &log, Progress: progress}
	res, err := Kind.Run(ctx, job)
	return runOut{res, job.WorkDir, log.String(), err}
}

func weights(t *testing.T, o runOut) []byte {
	t.Helper()
	if o.err != nil {
		t.Fatal(o.err)
	}
	b, err := os.ReadFile(filepath.Join(o.work, o.res.Outputs["model"], gpt.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrainDeterministicModelDir(t *testing.T) {
	js := tinySettings("20", "0.003")
	var steps []int
	a := run(t, context.Background(), js, 1, "", func(p stages.Progress) { steps = append(steps, p.Step) })
	b := run(t, context.Background(), js, 2, "", nil)
	wa, wb := weights(t, a), weights(t, b)
	if !bytes.Equal(wa, wb) {
		t.Fatal("model.safetensors differs between two runs (1 and 2 threads)")
	}
	if len(steps) != 20 || steps[19] != 20 {
		t.Errorf("progress steps %v", steps)
	}
	model := filepath.Join(a.work, "model")
	m, _, err := gpt.LoadModelDir(model)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := prepare(t)
	tokData, _ := os.ReadFile(filepath.Join(train, TokenizerFile))
	tokModel, err := os.ReadFile(filepath.Join(model, TokenizerFile))
	if err != nil || !bytes.Equal(tokData, tokModel) {
		t.Errorf("the model's tokenizer.json is not the data's (err %v)", err)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(model, gpt.ConfigFile))
	json.Unmarshal(raw, &cfg)
	if cfg["model_type"] != "gpt2" || cfg["n_layer"] != 2.0 || cfg["n_positions"] != 32.0 || int(cfg["vocab_size"].(float64)) != m.Config.Vocab {
		t.Errorf("config.json: %s", raw)
	}
	for _, k := range []string{"train_loss", "val_loss", "tokens_per_sec", "steps"} {
		if _, ok := a.res.Metrics[k]; !ok {
			t.Errorf("metric %s missing: %v", k, a.res.Metrics)
		}
	}
	// 20 steps of a char model on Shakespeare: the loss falls from ln(V).
	if a.res.Metrics["steps"] != 20 || a.res.Metrics["train_loss"] > 3.6 {
		t.Errorf("metrics %v", a.res.Metrics)
	}
	// History: evaluations at steps 0, 10 and 20, train and val each.
	var names []string
	for _, p := range a.res.History {
		names = append(names, p.Name+"@"+itoa(p.Step))
	}
	if got := strings.Join(names, " "); got != "train_loss@0 val_loss@0 train_loss@10 val_loss@10 train_loss@20 val_loss@20" {
		t.Errorf("history %s", got)
	}
	if !strings.Contains(a.log, "step 10/20: loss") || !strings.Contains(a.log, "eval at step 20: train_loss") {
		t.Errorf("log:\n%s", a.log)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestResumeAfterCancel(t *testing.T) {
	js := tinySettings("20", "0.003")
	whole := weights(t, run(t, context.Background(), js, 0, t.TempDir(), nil))

	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cut := run(t, ctx, js, 0, state, func(p stages.Progress) {
		if p.Step == 13 {
			cancel()
		}
	})
	if !errors.Is(cut.err, context.Canceled) {
		t.Fatalf("interrupted run: %v", cut.err)
	}
	if _, err := os.Stat(filepath.Join(state, gpt.CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}
	var first int
	resumed := run(t, context.Background(), js, 0, state, func(p stages.Progress) {
		if first == 0 {
			first = p.Step
		}
	})
	if !bytes.Equal(weights(t, resumed), whole) {
		t.Error("the resumed run's model differs from the uninterrupted run's")
	}
	if first != 11 || !strings.Contains(resumed.log, "resumed from the checkpoint at step 10") {
		t.Errorf("first step after resume %d; log:\n%s", first, resumed.log)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	long := strings.Replace(tinySettings("2", "0.001"), `"context": 32`, `"context": 1000`, 1)
	if o := run(t, ctx, long, 0, "", nil); o.err == nil || !strings.Contains(o.err.Error(), "model.context = 1000 is longer than the validation data") {
		t.Errorf("long context: %v", o.err)
	}
	huge := strings.Replace(tinySettings("2", "0.001"), `"context": 32`, `"context": 6000`, 1)
	if o := run(t, ctx, huge, 0, "", nil); o.err == nil || !strings.Contains(o.err.Error(), "is longer than the training data") {
		t.Errorf("context longer than the training data: %v", o.err)
	}
	nan := strings.Replace(tinySettings("30", "1e30"), `"grad_clip": 1`, `"grad_clip": 0`, 1)
	if o := run(t, ctx, nan, 0, "", nil); o.err == nil || !strings.Contains(o.err.Error(), "at step") || !strings.Contains(o.err.Error(), "learning_rate") {
		t.Errorf("diverging run: %v", o.err)
	}
	frac := strings.Replace(tinySettings("2", "0.001"), `"layers": 2`, `"layers": 2.5`, 1)
	if o := run(t, ctx, frac, 0, "", nil); o.err == nil || !strings.Contains(o.err.Error(), "model.layers = 2.5: want a whole number") {
		t.Errorf("fractional layers: %v", o.err)
	}
	// Data without a tokenizer.json (not from data_prep).
	train, _ := prepare(t)
	bare := t.TempDir()
	for _, f := range []string{"meta.json", "tokens.bin"} {
		b, _ := os.ReadFile(filepath.Join(train, f))
		os.WriteFile(filepath.Join(bare, f), b, 0o644)
	}
	job := &stages.Job{WorkDir: t.TempDir(), Settings: settingsOf(t, tinySettings("2", "0.001")), Inputs: map[string]string{"data": bare}}
	if _, err := Kind.Run(ctx, job); err == nil || !strings.Contains(err.Error(), "data has no tokenizer.json") {
		t.Errorf("data without tokenizer: %v", err)
	}
}

func TestFingerprintIsBackend(t *testing.T) {
	var k stages.Kind = Kind
	f, ok := k.(stages.Fingerprinter)
	if !ok || f.Fingerprint() == "" {
		t.Fatal("pretrain has no backend fingerprint")
	}
	if _, ok := k.(stages.Runner); !ok {
		t.Fatal("pretrain is not a Runner")
	}
}
