// Package eval is the `eval` stage kind: tasks that score a model or an
// index.
//
// This build runs the model tasks perplexity, generate and exact_match;
// reward, retrieval and rag are declared (so pipelines validate) but fail
// at apply time saying so.
//
// The output `results` is one file, results.jsonl: one JSON object a line,
// in task order perplexity, generate, exact_match, each with a "task" field:
//
//	{"task":"perplexity","tokens":N,"scored":S,"mean_nll":x,"perplexity":p}
//	{"task":"generate","index":i,"prompt":"...","completion":"...","tokens":n}
//	{"task":"exact_match","index":i,"instruction":"...","input":"...","expected":"...","prediction":"...","match":true}
//
// perplexity.data is a tokdata directory (data_prep's train or validation;
// its tokenizer.json must be the model's) or a text file or directory,
// encoded with the model's tokenizer. The metric follows DESIGN.md exactly
// (gpt.Model.Perplexity).
//
// exact_match.data holds Alpaca records: a JSON or JSON-lines file (a
// dataset, or a generate dataset's data.json) or a tokdata directory of
// instruction data (its records.jsonl). Each record's prompt is rendered
// with exact_match.template (default "alpaca"; use the template the model
// was fine-tuned with), the model continues it greedily until end-of-text or
// max_new_tokens, and the prediction matches when normalize(prediction) ==
// normalize(output), where normalize is
//
//	"none"   the strings as they are
//	"trim"   leading and trailing white space removed (the default)
//	"lower"  trimmed, lower-cased, and inner runs of white space made one space
package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmlab/llmlab/ml/blasimpl"
	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/sft"
	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

var listOfString = cty.List(cty.String)

// ResultsFile is the name of the `results` output in the work directory.
const ResultsFile = "results.jsonl"

type kind struct{ *stages.Static }

// Kind is the eval stage kind.
var Kind = &kind{&stages.Static{
	KindName:    "eval",
	KindVersion: 1,
	OutputNames: []string{"results"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("model", false, "model to evaluate"),
			stages.RefAttr("index", false, "index to evaluate"),
		},
		Blocks: []stages.Block{
			{Name: "perplexity", Attrs: []stages.Attr{
				stages.RefOrPathAttr("data", true, "text data"),
			}},
			{Name: "exact_match", Attrs: []stages.Attr{
				stages.RefOrPathAttr("data", true, "instruction records"),
				stages.Num("max_new_tokens", 32, "generation limit"),
				stages.Str("normalize", "trim", "answer normalisation", "none", "trim", "lower"),
				stages.Str("template", "alpaca", "prompt rendering, as data_prep's template"),
			}},
			{Name: "generate", Attrs: []stages.Attr{
				{Name: "prompts", Type: listOfString, Required: true, Doc: "prompts to continue"},
				stages.Num("max_new_tokens", 200, "tokens to sample"),
				stages.Num("temperature", 1, "sampling temperature (0: greedy)"),
				stages.Num("top_k", 0, "top-k filter (0: off)"),
				stages.Num("seed", 0, "sampling seed"),
			}},
			{Name: "reward", Attrs: []stages.Attr{
				stages.RefAttr("reward_model", true, "reward model"),
				stages.RefOrPathAttr("prompts", true, "prompts"),
			}},
			{Name: "retrieval", Attrs: []stages.Attr{
				stages.RefOrPathAttr("queries", true, "{qid, question, gold_doc_id} records"),
				stages.Num("k", 10, "cut-off"),
			}},
			{Name: "rag", Attrs: []stages.Attr{
				stages.RefOrPathAttr("questions", true, "{question, answers[]} records"),
				stages.Num("k", 3, "passages per question"),
				stages.Num("max_new_tokens", 32, "answer length"),
			}},
		},
	},
}}

func init() { stages.Register(Kind) }

// Fingerprint is the numeric backend: its rounding decides the results.
func (k *kind) Fingerprint() string { return blasimpl.Name() }

type settings struct {
	Perplexity *struct {
		Data *string `json:"data"`
	} `json:"perplexity"`
	ExactMatch *struct {
		Data         *string `json:"data"`
		MaxNewTokens float64 `json:"max_new_tokens"`
		Normalize    string  `json:"normalize"`
		Template     string  `json:"template"`
	} `json:"exact_match"`
	Generate *struct {
		Prompts      []string `json:"prompts"`
		MaxNewTokens float64  `json:"max_new_tokens"`
		Temperature  float64  `json:"temperature"`
		TopK         float64  `json:"top_k"`
		Seed         float64  `json:"seed"`
	} `json:"generate"`
	Reward *struct {
		RewardModel *string `json:"reward_model"`
	} `json:"reward"`
	Retrieval *struct {
		Queries *string `json:"queries"`
	} `json:"retrieval"`
	Rag *struct {
		Questions *string `json:"questions"`
	} `json:"rag"`
}

type evaluator struct {
	job     *stages.Job
	log     io.Writer
	model   *gpt.Model
	tok     tokenizer.Tokenizer
	tokJSON []byte
	out     *bytes.Buffer
	metrics map[string]float64
}

// Run loads the model and runs each task that is set.
func (k *kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	var s settings
	if err := stages.DecodeSettings(job.Settings, &s); err != nil {
		return nil, fmt.Errorf("eval settings: %w", err)
	}
	ppl := s.Perplexity != nil && s.Perplexity.Data != nil
	gen := s.Generate != nil && s.Generate.Prompts != nil
	em := s.ExactMatch != nil && s.ExactMatch.Data != nil
	var unsupported []string
	if s.Reward != nil && s.Reward.RewardModel != nil {
		unsupported = append(unsupported, "reward")
	}
	if s.Retrieval != nil && s.Retrieval.Queries != nil {
		unsupported = append(unsupported, "retrieval")
	}
	if s.Rag != nil && s.Rag.Questions != nil {
		unsupported = append(unsupported, "rag")
	}
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("eval: the task(s) %s are not supported by this build yet; this build runs perplexity, generate and exact_match", strings.Join(unsupported, ", "))
	}
	if !ppl && !gen && !em {
		return nil, fmt.Errorf("eval has no task: add perplexity { data = ... }, generate { prompts = [...] } or exact_match { data = ... }")
	}
	e := &evaluator{job: job, log: job.Log, out: &bytes.Buffer{}, metrics: map[string]float64{}}
	if e.log == nil {
		e.log = io.Discard
	}
	if err := e.loadModel(); err != nil {
		return nil, err
	}
	if job.Threads > 0 {
		blasimpl.SetThreads(job.Threads)
	}
	if ppl {
		if err := e.perplexity(job.Inputs["perplexity.data"]); err != nil {
			return nil, err
		}
	}
	if gen {
		g := s.Generate
		if err := e.generate(ctx, g.Prompts, g.MaxNewTokens, g.Temperature, g.TopK, g.Seed); err != nil {
			return nil, err
		}
	}
	if em {
		x := s.ExactMatch
		if err := e.exactMatch(ctx, job.Inputs["exact_match.data"], x.MaxNewTokens, x.Normalize, x.Template); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(job.WorkDir, ResultsFile), e.out.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return &stages.Result{Outputs: map[string]string{"results": ResultsFile}, Metrics: e.metrics}, nil
}

func (e *evaluator) loadModel() error {
	dir := e.job.Inputs["model"]
	if dir == "" {
		return fmt.Errorf("eval: these tasks need a model: set model = stage.<name>.model")
	}
	m, _, err := gpt.LoadModelDir(dir)
	if err != nil {
		return fmt.Errorf("eval model: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("eval model: the model directory has no tokenizer.json, so text cannot be encoded for it")
	}
	if err != nil {
		return fmt.Errorf("eval model: %w", err)
	}
	tok, err := tokenizer.Parse(raw)
	if err != nil {
		return fmt.Errorf("eval model: tokenizer.json: %w", err)
	}
	if tok.VocabSize() > m.Config.Vocab {
		return fmt.Errorf("eval model: its tokenizer has %d tokens but the model only %d", tok.VocabSize(), m.Config.Vocab)
	}
	e.model, e.tok, e.tokJSON = m, tok, raw
	fmt.Fprintf(e.log, "model: %d layers, %d heads, %d dims, context %d, vocabulary %d; backend %s\n",
		m.Config.Layers, m.Config.Heads, m.Config.Dim, m.Config.Context, m.Config.Vocab, blasimpl.Name())
	return nil
}

func (e *evaluator) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.out.Write(b)
	e.out.WriteByte('\n')
	return nil
}

// perplexity scores a tokdata directory or a text corpus.
func (e *evaluator) perplexity(path string) error {
	if path == "" {
		return fmt.Errorf("perplexity.data was not provided")
	}
	var ids []int32
	if _, err := os.Stat(filepath.Join(path, tokdata.MetaFile)); err == nil {
		d, err := tokdata.Read(path)
		if err != nil {
			return fmt.Errorf("perplexity.data: %w", err)
		}
		if raw, err := os.ReadFile(filepath.Join(path, "tokenizer.json")); err == nil && !bytes.Equal(raw, e.tokJSON) {
			return fmt.Errorf("perplexity.data was tokenized with another tokenizer than the model's; prepare it with tokenizer { from = <the model's data_prep>.tokenizer }, or give a text file")
		}
		if d.VocabSize > e.model.Config.Vocab {
			return fmt.Errorf("perplexity.data has a vocabulary of %d tokens but the model only %d", d.VocabSize, e.model.Config.Vocab)
		}
		ids = make([]int32, len(d.Tokens))
		for i, t := range d.Tokens {
			ids[i] = int32(t)
		}
	} else {
		text, err := textdata.ReadCorpus(path)
		if err != nil {
			return fmt.Errorf("perplexity.data: %w", err)
		}
		if ids, err = e.tok.Encode(text); err != nil {
			return fmt.Errorf("perplexity.data: the model's tokenizer cannot encode it: %w", err)
		}
	}
	if len(ids) < 2 {
		return fmt.Errorf("perplexity.data holds %d tokens: at least 2 are needed to score one", len(ids))
	}
	r, err := e.model.Perplexity(ids)
	if err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	e.metrics["perplexity"] = r.Perplexity
	e.metrics["perplexity_tokens"] = float64(r.Scored)
	fmt.Fprintf(e.log, "perplexity %.4f (mean NLL %.4f nats over %d scored tokens of %d)\n", r.Perplexity, r.MeanNLL, r.Scored, len(ids))
	return e.emit(map[string]any{"task": "perplexity", "tokens": len(ids), "scored": r.Scored, "mean_nll": r.MeanNLL, "perplexity": r.Perplexity})
}

func whole(name string, v float64, min int) (int, error) {
	if v != math.Trunc(v) || math.IsInf(v, 0) || math.Abs(v) > 1<<40 {
		return 0, fmt.Errorf("%s = %v: want a whole number", name, v)
	}
	if int(v) < min {
		return 0, fmt.Errorf("%s = %v: want at least %d", name, v, min)
	}
	return int(v), nil
}

// encodePrompt encodes a prompt; an empty one starts from end-of-text, as
// GPT-2 does for unconditional samples.
func (e *evaluator) encodePrompt(what, p string) ([]int32, error) {
	if p == "" {
		return []int32{e.tok.EndOfText()}, nil
	}
	ids, err := e.tok.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("%s: the model's tokenizer cannot encode it: %w", what, err)
	}
	return ids, nil
}

func (e *evaluator) generate(ctx context.Context, prompts []string, maxNew, temp, topK, seed float64) error {
	n, err := whole("generate.max_new_tokens", maxNew, 1)
	if err != nil {
		return err
	}
	k, err := whole("generate.top_k", topK, 0)
	if err != nil {
		return err
	}
	sd, err := whole("generate.seed", seed, 0)
	if err != nil {
		return err
	}
	if temp < 0 || math.IsNaN(temp) {
		return fmt.Errorf("generate.temperature = %v: want 0 (greedy) or more", temp)
	}
	for i, p := range prompts {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, err := e.encodePrompt(fmt.Sprintf("generate prompt %d", i), p)
		if err != nil {
			return err
		}
		// Each prompt draws from its own stream, so adding a prompt does
		// not change the others' samples.
		out, err := e.model.Generate(ids, gpt.SampleSettings{MaxNewTokens: n, Temperature: temp, TopK: k,
			Seed: uint64(sd) + uint64(i), StopTokens: []int32{e.tok.EndOfText()}})
		if err != nil {
			return fmt.Errorf("generate prompt %d: %w", i, err)
		}
		text := e.tok.Decode(out)
		fmt.Fprintf(e.log, "--- sample %d (%d tokens) ---\n%s%s\n", i, len(out), p, text)
		if err := e.emit(map[string]any{"task": "generate", "index": i, "prompt": p, "completion": text, "tokens": len(out)}); err != nil {
			return err
		}
	}
	e.metrics["generate_samples"] = float64(len(prompts))
	return nil
}

func (e *evaluator) exactMatch(ctx context.Context, path string, maxNew float64, norm, tmplName string) error {
	if path == "" {
		return fmt.Errorf("exact_match.data was not provided")
	}
	n, err := whole("exact_match.max_new_tokens", maxNew, 1)
	if err != nil {
		return err
	}
	if _, err := sft.Normalize("", norm); err != nil {
		return fmt.Errorf("exact_match.%w", err)
	}
	if tmplName == "" {
		tmplName = "alpaca"
	}
	tmpl, err := textdata.ParseTemplate(tmplName)
	if err != nil {
		return fmt.Errorf("exact_match.template: %w", err)
	}
	recs, err := readRecords(path)
	if err != nil {
		return fmt.Errorf("exact_match.data: %w", err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("exact_match.data holds no records")
	}
	hits := 0
	for i, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, err := e.encodePrompt(fmt.Sprintf("exact_match record %d", i), tmpl.Prompt(r))
		if err != nil {
			return err
		}
		out, err := e.model.Generate(ids, gpt.SampleSettings{MaxNewTokens: n, Temperature: 0, StopTokens: []int32{e.tok.EndOfText()}})
		if err != nil {
			return fmt.Errorf("exact_match record %d: %w", i, err)
		}
		pred := e.tok.Decode(out)
		got, _ := sft.Normalize(pred, norm)
		want, _ := sft.Normalize(r.Output, norm)
		match := got == want
		if match {
			hits++
		}
		if err := e.emit(map[string]any{"task": "exact_match", "index": i, "instruction": r.Instruction, "input": r.Input,
			"expected": r.Output, "prediction": pred, "match": match}); err != nil {
			return err
		}
	}
	e.metrics["exact_match"] = float64(hits) / float64(len(recs))
	e.metrics["exact_match_records"] = float64(len(recs))
	fmt.Fprintf(e.log, "exact_match %.4f (%d of %d, normalize %q, template %s)\n", e.metrics["exact_match"], hits, len(recs), norm, tmpl.Name())
	return nil
}

// readRecords reads Alpaca records from a records file (any name: inputs
// lose their extension) or from an instruction tokdata directory.
func readRecords(path string) ([]textdata.Instruction, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return textdata.ReadInstructions(path)
	}
	f, err := os.Open(filepath.Join(path, tokdata.RawFile))
	if err != nil {
		return nil, fmt.Errorf("a directory given as records must be instruction data from data_prep (with %s): %w", tokdata.RawFile, err)
	}
	defer f.Close()
	var recs []textdata.Instruction
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r textdata.Instruction
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s record %d: %w", tokdata.RawFile, len(recs), err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}
