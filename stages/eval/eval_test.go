package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/sft"
	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/dataprep"
	"github.com/llmlab/llmlab/stages/pretrain"
)

func settingsOf(t testing.TB, js string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fixture: data_prep on the test corpus and a 20-step tiny model, built
// once per test binary through the kinds' Run.
var fx struct{ dir, train, val, model string }

func TestMain(m *testing.M) {
	code := m.Run()
	if fx.dir != "" {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

func fixture(t *testing.T) {
	t.Helper()
	if fx.model != "" {
		return
	}
	dir, err := os.MkdirTemp("", "eval-test-")
	if err != nil {
		t.Fatal(err)
	}
	fx.dir = dir
	prep := &stages.Job{WorkDir: filepath.Join(dir, "prep"), Inputs: map[string]string{"source": "../dataprep/testdata/shakespeare_6k.txt"},
		Settings: settingsOf(t, `{"source": "x", "tokenizer": {"kind": "char"}, "split": {"validation": 0.1, "seed": 0}, "max_length": {"policy": "drop"}}`)}
	os.MkdirAll(prep.WorkDir, 0o755)
	res, err := dataprep.Kind.Run(context.Background(), prep)
	if err != nil {
		t.Fatal(err)
	}
	fx.train, fx.val = filepath.Join(prep.WorkDir, res.Outputs["train"]), filepath.Join(prep.WorkDir, res.Outputs["validation"])
	pt := &stages.Job{WorkDir: filepath.Join(dir, "pt"), Inputs: map[string]string{"data": fx.train, "eval_data": fx.val},
		Settings: settingsOf(t, `{"model": {"layers": 2, "heads": 2, "dim": 32, "context": 32},
			"training": {"steps": 20, "batch_size": 4, "learning_rate": 0.003, "warmup_steps": 5, "eval_every": 0, "eval_batches": 1, "seed": 1}}`)}
	os.MkdirAll(pt.WorkDir, 0o755)
	res, err = pretrain.Kind.Run(context.Background(), pt)
	if err != nil {
		t.Fatal(err)
	}
	fx.model = filepath.Join(pt.WorkDir, res.Outputs["model"])
}

func runEval(t *testing.T, js string, inputs map[string]string) (*stages.Result, []map[string]any, string, error) {
	t.Helper()
	var log bytes.Buffer
	job := &stages.Job{WorkDir: t.TempDir(), Settings: settingsOf(t, js), Inputs: inputs, Log: &log}
	res, err := Kind.Run(context.Background(), job)
	if err != nil {
		return nil, nil, log.String(), err
	}
	f, err := os.Open(filepath.Join(job.WorkDir, res.Outputs["results"]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	return res, lines, log.String(), nil
}

// referencePerplexity scores DESIGN.md's windows one at a time with a
// log-softmax written here, independent of gpt.Model.Perplexity.
func referencePerplexity(t *testing.T, m *gpt.Model, ids []int32) float64 {
	T, V := m.Config.Context, m.Config.Vocab
	var sum float64
	n := 0
	for s := 0; s < len(ids); s += T {
		w := ids[s:min(s+T, len(ids))]
		if len(w) < 2 {
			continue
		}
		L := len(w) - 1
		if _, err := m.Forward(w[:L], nil, nil, 1, L); err != nil {
			t.Fatal(err)
		}
		logits := m.Logits()
		for p := 0; p < L; p++ {
			row := logits[p*V : (p+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			sum += mx + math.Log(z) - float64(row[w[p+1]])
			n++
		}
	}
	return math.Exp(sum / float64(n))
}

const pplSettings = `{"model": "stage.base.model", "perplexity": {"data": "stage.prep.validation"},
	"exact_match": {"data": null, "max_new_tokens": 32, "normalize": "trim", "template": "alpaca"},
	"generate": {"prompts": null, "max_new_tokens": 200, "temperature": 1, "top_k": 0, "seed": 0},
	"reward": {"reward_model": null, "prompts": null}, "retrieval": {"queries": null, "k": 10}, "rag": {"questions": null, "k": 3, "max_new_tokens": 32}}`

func TestPerplexity(t *testing.T) {
	fixture(t)
	res, lines, _, err := runEval(t, pplSettings, map[string]string{"model": fx.model, "perplexity.data": fx.val})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := gpt.LoadModelDir(fx.model)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tokdata.Read(fx.val)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(d.Tokens))
	for i, v := range d.Tokens {
		ids[i] = int32(v)
	}
	want := referencePerplexity(t, m, ids)
	got := res.Metrics["perplexity"]
	if math.Abs(got-want) > 1e-4*want {
		t.Errorf("perplexity %v, reference %v", got, want)
	}
	// A model trained 20 steps is better than uniform over the vocabulary
	// but far from good.
	if !(got > 3 && got < float64(m.Config.Vocab)) {
		t.Errorf("perplexity %v outside (3, %d)", got, m.Config.Vocab)
	}
	// Windows of 32 over the validation tokens: all but the first of each.
	n := len(ids)
	scored := n - (n+31)/32
	if n%32 == 1 {
		scored++ // a last window of one token scores nothing
	}
	if res.Metrics["perplexity_tokens"] != float64(scored) || len(lines) != 1 || lines[0]["task"] != "perplexity" {
		t.Errorf("scored %v want %d; results %v", res.Metrics["perplexity_tokens"], scored, lines)
	}

	// The same text given as a text file scores the same.
	tokJSON, _ := os.ReadFile(filepath.Join(fx.model, "tokenizer.json"))
	tok, _ := tokenizer.Parse(tokJSON)
	text := filepath.Join(t.TempDir(), "val")
	os.WriteFile(text, []byte(tok.Decode(ids)), 0o644)
	res2, _, _, err := runEval(t, pplSettings, map[string]string{"model": fx.model, "perplexity.data": text})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Metrics["perplexity"] != got {
		t.Errorf("text file perplexity %v, tokdata %v", res2.Metrics["perplexity"], got)
	}
}

func TestGenerateAndExactMatch(t *testing.T) {
	fixture(t)
	js := strings.Replace(pplSettings, `"perplexity": {"data": "stage.prep.validation"}`, `"perplexity": {"data": null}`, 1)
	js = strings.Replace(js, `"prompts": null, "max_new_tokens": 200, "temperature": 1, "top_k": 0`, `"prompts": ["ROMEO:", ""], "max_new_tokens": 20, "temperature": 0.8, "top_k": 10`, 1)
	in := map[string]string{"model": fx.model}
	res, lines, log, err := runEval(t, js, in)
	if err != nil {
		t.Fatal(err)
	}
	_, again, _, _ := runEval(t, js, in)
	if len(lines) != 2 || lines[0]["prompt"] != "ROMEO:" || lines[0]["completion"] == "" {
		t.Fatalf("results %v", lines)
	}
	for i := range lines {
		if lines[i]["completion"] != again[i]["completion"] {
			t.Errorf("sample %d differs between runs", i)
		}
	}
	if res.Metrics["generate_samples"] != 2 || !strings.Contains(log, "--- sample 0") {
		t.Errorf("metrics %v log %q", res.Metrics, log)
	}
	bad := strings.Replace(js, `"ROMEO:"`, `"ROMÉO:"`, 1)
	if _, _, _, err := runEval(t, bad, in); err == nil || !strings.Contains(err.Error(), "generate prompt 0") || !strings.Contains(err.Error(), "'É'") {
		t.Errorf("unknown character in a prompt: %v", err)
	}

	// exact_match: first learn the model's greedy answers, then score
	// records whose outputs are those answers with extra white space.
	recs := []map[string]string{{"instruction": "Speak", "input": "", "output": "x"}, {"instruction": "Who goes there", "input": "", "output": "y"}}
	write := func() string {
		b, _ := json.Marshal(recs)
		p := filepath.Join(t.TempDir(), "data")
		os.WriteFile(p, b, 0o644)
		return p
	}
	emJS := func(norm string) string {
		s := strings.Replace(pplSettings, `"perplexity": {"data": "stage.prep.validation"}`, `"perplexity": {"data": null}`, 1)
		s = strings.Replace(s, `"data": null, "max_new_tokens": 32, "normalize": "trim"`, `"data": "dataset.d", "max_new_tokens": 8, "normalize": "`+norm+`"`, 1)
		return strings.Replace(s, `"template": "alpaca"`, `"template": "{instruction}:\n{output}"`, 1)
	}
	res, lines, _, err = runEval(t, emJS("trim"), map[string]string{"model": fx.model, "exact_match.data": write()})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0]["task"] != "exact_match" || lines[0]["expected"] != "x" || res.Metrics["exact_match_records"] != 2 {
		t.Fatalf("results %v metrics %v", lines, res.Metrics)
	}
	for i := range recs {
		recs[i]["output"] = "  " + lines[i]["prediction"].(string) + "\n"
	}
	data := write()
	for norm, want := range map[string]float64{"trim": 1, "none": 0} {
		res, lines, _, err := runEval(t, emJS(norm), map[string]string{"model": fx.model, "exact_match.data": data})
		if err != nil {
			t.Fatal(err)
		}
		if res.Metrics["exact_match"] != want || lines[0]["match"] != (want == 1) {
			t.Errorf("normalize %s: exact_match %v, want %v", norm, res.Metrics["exact_match"], want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ mode, in, want string }{
		{"none", " A  b\n", " A  b\n"},
		{"trim", " A  b\n", "A  b"},
		{"lower", " A \t b\n", "a b"},
	} {
		if got, err := sft.Normalize(c.in, c.mode); err != nil || got != c.want {
			t.Errorf("Normalize(%q, %q) = %q, want %q", c.mode, c.in, got, c.want)
		}
	}
}

func TestErrors(t *testing.T) {
	fixture(t)
	none := strings.Replace(pplSettings, `"perplexity": {"data": "stage.prep.validation"}`, `"perplexity": {"data": null}`, 1)
	if _, _, _, err := runEval(t, none, map[string]string{"model": fx.model}); err == nil || !strings.Contains(err.Error(), "eval has no task") {
		t.Errorf("no task: %v", err)
	}
	if _, _, _, err := runEval(t, pplSettings, map[string]string{"perplexity.data": fx.val}); err == nil || !strings.Contains(err.Error(), "need a model") {
		t.Errorf("no model: %v", err)
	}
	rag := strings.Replace(pplSettings, `"questions": null`, `"questions": "dataset.q"`, 1)
	if _, _, _, err := runEval(t, rag, map[string]string{"model": fx.model}); err == nil || !strings.Contains(err.Error(), "rag are not supported") {
		t.Errorf("rag: %v", err)
	}
	// Data tokenized by another tokenizer.
	other := t.TempDir()
	tok, _ := tokenizer.Train(tokenizer.KindChar, "abc", 0)
	tokdata.Write(other, &tokdata.Data{Kind: tokdata.KindText, VocabSize: tok.VocabSize(), Tokens: []uint32{0, 1, 2, 0}})
	tokenizer.Save(filepath.Join(other, "tokenizer.json"), tok)
	if _, _, _, err := runEval(t, pplSettings, map[string]string{"model": fx.model, "perplexity.data": other}); err == nil || !strings.Contains(err.Error(), "another tokenizer than the model's") {
		t.Errorf("foreign tokenizer: %v", err)
	}
	if _, _, _, err := runEval(t, pplSettings, map[string]string{"model": fx.train, "perplexity.data": fx.val}); err == nil || !strings.Contains(err.Error(), "eval model") {
		t.Errorf("not a model: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	var k stages.Kind = Kind
	if f, ok := k.(stages.Fingerprinter); !ok || f.Fingerprint() == "" {
		t.Fatal("eval has no backend fingerprint")
	}
}
