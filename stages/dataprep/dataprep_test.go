package dataprep

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/generate"
)

// settingsOf decodes JSON the way the planner hands settings over
// (numbers as json.Number).
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

// materialize copies a file to a name without extension, as the executor
// places inputs (inputs/<name>).
func materialize(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "source")
	if err := os.WriteFile(dst, b, 0o444); err != nil {
		t.Fatal(err)
	}
	return dst
}

func run(t *testing.T, js string, inputs map[string]string) (*stages.Result, string, string, error) {
	t.Helper()
	var log bytes.Buffer
	job := &stages.Job{Address: "stage.prep", WorkDir: t.TempDir(), Settings: settingsOf(t, js), Inputs: inputs, Log: &log}
	res, err := Kind.Run(context.Background(), job)
	return res, job.WorkDir, log.String(), err
}

const textSettings = `{"source": "dataset.text", "format": null, "template": "alpaca",
	"tokenizer": {"kind": "char", "vocab_size": 512, "from": null},
	"split": {"validation": 0.1, "seed": 0}, "max_length": {"tokens": null, "policy": "drop"}}`

func TestTextChar(t *testing.T) {
	src := materialize(t, "testdata/shakespeare_6k.txt")
	res, work, _, err := run(t, textSettings, map[string]string{"source": src})
	if err != nil {
		t.Fatal(err)
	}
	corpus, _ := os.ReadFile(src)
	tokJSON, err := os.ReadFile(filepath.Join(work, res.Outputs["tokenizer"], TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"train", "validation"} {
		b, err := os.ReadFile(filepath.Join(work, res.Outputs[out], TokenizerFile))
		if err != nil || !bytes.Equal(b, tokJSON) {
			t.Fatalf("%s/tokenizer.json differs from the tokenizer output (err %v)", out, err)
		}
	}
	tok, err := tokenizer.Parse(tokJSON)
	if err != nil {
		t.Fatal(err)
	}
	train, err := tokdata.Read(filepath.Join(work, res.Outputs["train"]))
	if err != nil {
		t.Fatal(err)
	}
	val, err := tokdata.Read(filepath.Join(work, res.Outputs["validation"]))
	if err != nil {
		t.Fatal(err)
	}
	// seed 0: validation is the last 10% of the characters, nanoGPT style.
	n := len([]rune(string(corpus)))
	if want := n - int(float64(n)*0.9); len(val.Tokens) != want {
		t.Errorf("validation has %d tokens, want %d", len(val.Tokens), want)
	}
	if got := decode(tok, train.Tokens) + decode(tok, val.Tokens); got != string(corpus) {
		t.Errorf("train+validation do not decode to the corpus")
	}
	distinct := map[rune]bool{}
	for _, r := range string(corpus) {
		distinct[r] = true
	}
	if res.Metrics["vocab_size"] != float64(len(distinct)+1) || tok.VocabSize() != len(distinct)+1 {
		t.Errorf("vocab_size %v, tokenizer %d, want %d", res.Metrics["vocab_size"], tok.VocabSize(), len(distinct)+1)
	}
	if res.Metrics["tokens"] != float64(n) || res.Metrics["records"] != 1 || res.Metrics["dropped"] != 0 {
		t.Errorf("metrics %v", res.Metrics)
	}
}

func decode(tok tokenizer.Tokenizer, u []uint32) string {
	ids := make([]int32, len(u))
	for i, v := range u {
		ids[i] = int32(v)
	}
	return tok.Decode(ids)
}

func treeBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = b
		}
		return nil
	})
	return out
}

func TestDeterministicByteBPE(t *testing.T) {
	src := materialize(t, "testdata/shakespeare_6k.txt")
	js := strings.Replace(textSettings, `"kind": "char", "vocab_size": 512`, `"kind": "byte_bpe", "vocab_size": 300`, 1)
	js = strings.Replace(js, `"seed": 0`, `"seed": 7`, 1)
	var trees []map[string][]byte
	for i := 0; i < 2; i++ {
		res, work, _, err := run(t, js, map[string]string{"source": src})
		if err != nil {
			t.Fatal(err)
		}
		if res.Metrics["vocab_size"] != 300 {
			t.Errorf("vocab_size = %v, want 300", res.Metrics["vocab_size"])
		}
		trees = append(trees, treeBytes(t, work))
	}
	if len(trees[0]) != 3*1+2*2 { // tokenizer.json x3, meta.json + tokens.bin x2
		t.Errorf("files: %d", len(trees[0]))
	}
	for name, b := range trees[0] {
		if !bytes.Equal(b, trees[1][name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func TestReusedTokenizerUnknownCharacters(t *testing.T) {
	src := materialize(t, "testdata/shakespeare_6k.txt")
	res, work, _, err := run(t, textSettings, map[string]string{"source": src})
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("First Citizen: café über alles\n"), 0o644)
	from := filepath.Join(work, res.Outputs["tokenizer"])
	_, _, _, err = run(t, textSettings, map[string]string{"source": other, "tokenizer.from": from})
	if err == nil {
		t.Fatal("no error for characters outside the reused vocabulary")
	}
	for _, want := range []string{"tokenizer.from", "'é' (U+00E9)", "'ü' (U+00FC)", "byte_bpe"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The same tokenizer given as the file, on text it can encode, gives
	// the same vocabulary.
	fine := filepath.Join(t.TempDir(), "fine")
	os.WriteFile(fine, []byte("First Citizen:\nBefore we proceed any further, hear me speak.\n"), 0o644)
	res2, _, log, err := run(t, textSettings, map[string]string{"source": fine, "tokenizer.from": filepath.Join(from, TokenizerFile)})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Metrics["vocab_size"] != res.Metrics["vocab_size"] || !strings.Contains(log, "reusing a char tokenizer") {
		t.Errorf("vocab %v vs %v; log %q", res2.Metrics["vocab_size"], res.Metrics["vocab_size"], log)
	}
	_, _, _, err = run(t, textSettings, map[string]string{"source": fine, "tokenizer.from": t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "holds no tokenizer.json") {
		t.Errorf("tokenizer.from without tokenizer.json: %v", err)
	}
}

func TestEmptyCorpus(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "source")
	os.WriteFile(empty, nil, 0o644)
	_, _, _, err := run(t, textSettings, map[string]string{"source": empty})
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty corpus: %v", err)
	}
}

const instrSettings = `{"source": "dataset.alpaca", "format": null, "template": "compact",
	"tokenizer": {"kind": "char", "vocab_size": 512, "from": null},
	"split": {"validation": 0.2, "seed": 1}, "max_length": {"tokens": MAXLEN, "policy": "POLICY"}}`

func TestInstructions(t *testing.T) {
	src := materialize(t, "testdata/instructions_40.json") // no extension: inferred by content
	js := strings.NewReplacer("MAXLEN", "null", "POLICY", "drop").Replace(instrSettings)
	res, work, _, err := run(t, js, map[string]string{"source": src})
	if err != nil {
		t.Fatal(err)
	}
	train, err := tokdata.Read(filepath.Join(work, "train"))
	if err != nil {
		t.Fatal(err)
	}
	val, err := tokdata.Read(filepath.Join(work, "validation"))
	if err != nil {
		t.Fatal(err)
	}
	if train.Kind != tokdata.KindInstructions || train.LossMask == nil || len(train.Records) == 0 || len(val.Records) == 0 {
		t.Fatalf("train kind %s, mask %v, %d/%d records", train.Kind, train.LossMask != nil, len(train.Records), len(val.Records))
	}
	if got := len(train.Records) + len(val.Records); got != 40 || res.Metrics["records"] != 40 || res.Metrics["dropped"] != 0 {
		t.Errorf("%d records, metrics %v", got, res.Metrics)
	}
	// The mask covers the response: the first token of a record is prompt.
	if train.LossMask[0] != 0 || train.LossMask[train.RecordStarts[1]-1] != 1 {
		t.Errorf("loss mask does not separate prompt and response")
	}

	// max_length: drop and truncate are counted in metrics and the log.
	longest := 0
	for i := range train.Records {
		s, e := train.Record(i)
		longest = max(longest, e-s)
	}
	limit := longest - 1
	for _, policy := range []string{"drop", "truncate"} {
		js := strings.NewReplacer("MAXLEN", itoa(limit), "POLICY", policy).Replace(instrSettings)
		res, _, log, err := run(t, js, map[string]string{"source": src})
		if err != nil {
			t.Fatal(err)
		}
		metric, word := "dropped", "dropped"
		if policy == "truncate" {
			metric, word = "truncated", "truncated"
		}
		if res.Metrics[metric] < 1 {
			t.Errorf("%s: metrics %v", policy, res.Metrics)
		}
		if !strings.Contains(log, word+" ") || !strings.Contains(log, "max_length.tokens = "+itoa(limit)) {
			t.Errorf("%s: the log does not report it:\n%s", policy, log)
		}
	}
	js = strings.NewReplacer("MAXLEN", "3", "POLICY", "drop").Replace(instrSettings)
	if _, _, _, err := run(t, js, map[string]string{"source": src}); err == nil || !strings.Contains(err.Error(), "every one of the 40 records") {
		t.Errorf("all dropped: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestUnsupportedAndUnknownFormats(t *testing.T) {
	src := filepath.Join(t.TempDir(), "source")
	os.WriteFile(src, []byte(`[{"prompt": "p", "chosen": "a", "rejected": "b"}]`), 0o644)
	_, _, _, err := run(t, textSettings, map[string]string{"source": src})
	if err == nil || !strings.Contains(err.Error(), `format "preferences" is not supported`) {
		t.Errorf("preferences: %v", err)
	}
	os.WriteFile(src, []byte(`[{"question": "p"}]`), 0o644)
	_, _, _, err = run(t, textSettings, map[string]string{"source": src})
	if err == nil || !strings.Contains(err.Error(), "cannot tell the format") || strings.Contains(err.Error(), "source.json") {
		t.Errorf("unknown records: %v", err)
	}
	// Text that merely starts with a bracket is text.
	os.WriteFile(src, []byte("[Enter Hamlet]\nTo be, or not to be, that is the question.\n"), 0o644)
	_, _, log, err := run(t, textSettings, map[string]string{"source": src})
	if err != nil || !strings.Contains(log, "reading it as text") {
		t.Errorf("bracketed text: %v\n%s", err, log)
	}
}

// A generated dataset's data.json, placed without its extension, is read as
// instruction records.
func TestGeneratedDataset(t *testing.T) {
	gen := &stages.Job{WorkDir: t.TempDir(), Settings: settingsOf(t, `{"task": "reverse", "count": 30, "seed": 2, "split": "train", "digits": 2, "ops": ["+"], "length": 4}`)}
	gres, err := generate.Kind.Run(context.Background(), gen)
	if err != nil {
		t.Fatal(err)
	}
	src := materialize(t, filepath.Join(gen.WorkDir, gres.Outputs["data"]))
	js := strings.NewReplacer("MAXLEN", "null", "POLICY", "drop").Replace(instrSettings)
	res, work, _, err := run(t, js, map[string]string{"source": src})
	if err != nil {
		t.Fatal(err)
	}
	train, err := tokdata.Read(filepath.Join(work, "train"))
	if err != nil {
		t.Fatal(err)
	}
	if train.Kind != tokdata.KindInstructions || res.Metrics["records"] != 30 {
		t.Errorf("kind %s, metrics %v", train.Kind, res.Metrics)
	}
}
