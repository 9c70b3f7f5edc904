// Package dataprep is the `data_prep` stage kind: text or instruction
// records tokenized and split.
//
// Outputs (directories in the work directory):
//
//	train/       a tokdata artifact (ml/tokdata) plus tokenizer.json
//	validation/  the same for the held-out share (it may hold 0 tokens)
//	tokenizer/   tokenizer.json alone
//
// A copy of tokenizer.json sits in train/ and validation/ so that the
// stages that read tokenized data (pretrain, eval) know how to decode it.
// tokenizer.from accepts any directory holding a tokenizer.json (this
// kind's tokenizer output, its train/validation outputs, or a model
// directory) or a tokenizer.json file.
//
// Text: the corpus (a file, or every non-hidden file of a directory) is
// split with textdata.SplitText, and a trained tokenizer learns its
// vocabulary from the whole corpus, as nanoGPT's prepare.py does, so the
// validation text never holds a character the tokenizer lacks.
// Instructions: Alpaca records are split by a hash of their content
// (textdata.SplitRecords), a trained tokenizer learns from every rendered
// record, and each record is encoded with its loss masked to the response.
package dataprep

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
	"github.com/llmlab/llmlab/stages"
)

// TokenizerFile is the name of the tokenizer inside every directory this
// kind writes.
const TokenizerFile = "tokenizer.json"

type kind struct{ *stages.Static }

// Kind is the data_prep stage kind.
var Kind = &kind{&stages.Static{
	KindName:    "data_prep",
	KindVersion: 1,
	OutputNames: []string{"train", "validation", "tokenizer"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefOrPathAttr("source", true, "dataset reference or path: text, JSON/JSONL records, or a directory of text files"),
			stages.Str("format", "", "text, instructions, preferences or documents (default: inferred)", "text", "instructions", "preferences", "documents"),
			stages.Str("template", "alpaca", "instruction rendering: alpaca, compact, or a format string with {instruction}, {input}, {output}"),
		},
		Blocks: []stages.Block{
			{Name: "tokenizer", Attrs: []stages.Attr{
				stages.Str("kind", "char", "char or byte_bpe", "char", "byte_bpe"),
				stages.Num("vocab_size", 512, "byte_bpe vocabulary size"),
				stages.RefAttr("from", false, "reuse another stage's tokenizer"),
			}},
			{Name: "split", Attrs: []stages.Attr{
				stages.Num("validation", 0.1, "held-out share"),
				stages.Num("seed", 0, "split seed"),
			}},
			{Name: "max_length", Attrs: []stages.Attr{
				stages.NumOpt("tokens", "longest record in tokens (default: no limit)"),
				stages.Str("policy", "drop", "what to do with overlong records", "drop", "truncate"),
			}},
		},
	},
}}

func init() { stages.Register(Kind) }

type settings struct {
	Format    string `json:"format"`
	Template  string `json:"template"`
	Tokenizer struct {
		Kind      string   `json:"kind"`
		VocabSize *float64 `json:"vocab_size"`
	} `json:"tokenizer"`
	Split struct {
		Validation *float64 `json:"validation"`
		Seed       float64  `json:"seed"`
	} `json:"split"`
	MaxLength struct {
		Tokens *float64 `json:"tokens"`
		Policy string   `json:"policy"`
	} `json:"max_length"`
}

// prep is one run's state.
type prep struct {
	job  *stages.Job
	s    settings
	log  io.Writer
	tok  tokenizer.Tokenizer
	from string // path of a reused tokenizer.json, "" when trained here
}

// Run reads the source, builds or loads the tokenizer, splits, encodes and
// writes the three outputs.
func (k *kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	p := &prep{job: job, log: job.Log}
	if p.log == nil {
		p.log = io.Discard
	}
	if err := stages.DecodeSettings(job.Settings, &p.s); err != nil {
		return nil, fmt.Errorf("data_prep settings: %w", err)
	}
	source := job.Inputs["source"]
	if source == "" {
		return nil, fmt.Errorf("data_prep: the source input was not provided")
	}
	if from := job.Inputs["tokenizer.from"]; from != "" {
		path, err := TokenizerPath(from)
		if err != nil {
			return nil, err
		}
		if p.tok, err = tokenizer.Load(path); err != nil {
			return nil, fmt.Errorf("tokenizer.from: %w", err)
		}
		p.from = path
		fmt.Fprintf(p.log, "reusing a %s tokenizer with %d tokens\n", p.tok.Kind(), p.tok.VocabSize())
	}
	format, err := p.format(source)
	if err != nil {
		return nil, err
	}
	var train, val *tokdata.Data
	metrics := map[string]float64{}
	switch format {
	case textdata.FormatText:
		train, val, err = p.text(source, metrics)
	case textdata.FormatInstructions:
		train, val, err = p.instructions(source, metrics)
	default:
		return nil, fmt.Errorf("data_prep: format %q is not supported by this build yet; supported: \"text\" and \"instructions\"", format)
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tokJSON, err := p.tok.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding the tokenizer: %w", err)
	}
	out := map[string]string{"train": "train", "validation": "validation", "tokenizer": "tokenizer"}
	for name, d := range map[string]*tokdata.Data{"train": train, "validation": val} {
		dir := filepath.Join(job.WorkDir, out[name])
		if err := tokdata.Write(dir, d); err != nil {
			return nil, fmt.Errorf("writing %s data: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, TokenizerFile), tokJSON, 0o644); err != nil {
			return nil, err
		}
	}
	tdir := filepath.Join(job.WorkDir, out["tokenizer"])
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tdir, TokenizerFile), tokJSON, 0o644); err != nil {
		return nil, err
	}
	metrics["tokens"] = float64(len(train.Tokens) + len(val.Tokens))
	metrics["train_tokens"] = float64(len(train.Tokens))
	metrics["validation_tokens"] = float64(len(val.Tokens))
	metrics["vocab_size"] = float64(p.tok.VocabSize())
	fmt.Fprintf(p.log, "%s data: %d train tokens, %d validation tokens, vocabulary %d (%s)\n",
		format, len(train.Tokens), len(val.Tokens), p.tok.VocabSize(), p.tok.Kind())
	return &stages.Result{Outputs: out, Metrics: metrics}, nil
}

// TokenizerPath finds tokenizer.json in a tokenizer artifact: a directory
// holding it, or the file itself.
func TokenizerPath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("tokenizer.from: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	f := filepath.Join(path, TokenizerFile)
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("tokenizer.from: %s holds no %s; refer to a data_prep stage's tokenizer output (stage.<name>.tokenizer) or a model", filepath.Base(path), TokenizerFile)
	}
	return f, nil
}

// format returns the format setting or infers it. Inputs are materialized
// without their file name extension, so a file whose first byte opens a
// JSON value is given a .json name before asking textdata.InferFormat.
func (p *prep) format(source string) (textdata.Format, error) {
	if p.s.Format != "" {
		return textdata.Format(p.s.Format), nil
	}
	st, err := os.Stat(source)
	if err != nil {
		return "", fmt.Errorf("data_prep source: %w", err)
	}
	if st.IsDir() {
		return textdata.FormatText, nil
	}
	if ext := strings.ToLower(filepath.Ext(source)); ext == ".json" || ext == ".jsonl" {
		return textdata.InferFormat(source)
	}
	head := make([]byte, 512)
	f, err := os.Open(source)
	if err != nil {
		return "", fmt.Errorf("data_prep source: %w", err)
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = bytes.TrimLeft(head[:n], " \t\r\n\ufeff")
	if len(head) == 0 || (head[0] != '[' && head[0] != '{') {
		return textdata.FormatText, nil
	}
	tmp, err := os.MkdirTemp("", "llmlab-dataprep-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	link := filepath.Join(tmp, "source.json")
	if err := os.Symlink(source, link); err != nil {
		return "", err
	}
	format, err := textdata.InferFormat(link)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), link, "source")
		if strings.Contains(msg, "cannot tell the format") {
			return "", fmt.Errorf("data_prep %s", msg)
		}
		fmt.Fprintf(p.log, "the source starts like JSON but is not JSON records (%s); reading it as text (set format to say so)\n", msg)
		return textdata.FormatText, nil
	}
	return format, nil
}

func (p *prep) text(source string, metrics map[string]float64) (train, val *tokdata.Data, err error) {
	corpus, err := textdata.ReadCorpus(source)
	if err != nil {
		return nil, nil, fmt.Errorf("data_prep source: %w", err)
	}
	valShare, seed := p.split()
	trainText, valText, err := textdata.SplitText(corpus, valShare, seed)
	if err != nil {
		return nil, nil, err
	}
	if p.tok == nil {
		if p.tok, err = p.train(corpus); err != nil {
			return nil, nil, err
		}
	}
	if train, err = p.encodeText("training", trainText); err != nil {
		return nil, nil, err
	}
	if val, err = p.encodeText("validation", valText); err != nil {
		return nil, nil, err
	}
	files, err := countFiles(source)
	if err != nil {
		return nil, nil, err
	}
	metrics["records"] = float64(files)
	metrics["dropped"] = 0
	return train, val, nil
}

func (p *prep) encodeText(what, text string) (*tokdata.Data, error) {
	d, err := textdata.EncodeText(p.tok, text)
	if err != nil {
		return nil, p.encodeError(what+" text", err)
	}
	return d, nil
}

func (p *prep) encodeError(what string, err error) error {
	if p.from != "" {
		return fmt.Errorf("the reused tokenizer (tokenizer.from, a %s tokenizer) cannot encode the %s: %w", p.tok.Kind(), what, err)
	}
	return fmt.Errorf("encoding the %s: %w", what, err)
}

func (p *prep) instructions(source string, metrics map[string]float64) (train, val *tokdata.Data, err error) {
	recs, err := textdata.ReadInstructions(source)
	if err != nil {
		return nil, nil, fmt.Errorf("data_prep source: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("data_prep source holds no instruction records")
	}
	tmpl, err := textdata.ParseTemplate(p.s.Template)
	if err != nil {
		return nil, nil, fmt.Errorf("template: %w", err)
	}
	valShare, seed := p.split()
	trainRecs, valRecs, err := textdata.SplitRecords(recs, textdata.Instruction.Key, valShare, seed)
	if err != nil {
		return nil, nil, err
	}
	if p.tok == nil {
		var b strings.Builder
		for _, r := range recs {
			prompt, resp := tmpl.Render(r)
			b.WriteString(prompt)
			b.WriteString(resp)
			b.WriteByte('\n')
		}
		if p.tok, err = p.train(b.String()); err != nil {
			return nil, nil, err
		}
	}
	limit := textdata.MaxLength{Policy: textdata.Policy(p.s.MaxLength.Policy)}
	if limit.Policy == "" {
		limit.Policy = textdata.PolicyDrop
	}
	if t := p.s.MaxLength.Tokens; t != nil {
		n, err := whole("max_length.tokens", *t)
		if err != nil {
			return nil, nil, err
		}
		if n < 1 {
			return nil, nil, fmt.Errorf("max_length.tokens = %d: want at least 1 (leave it out for no limit)", n)
		}
		limit.Tokens = n
	}
	var stats [2]textdata.InstructionStats
	for i, part := range []struct {
		name string
		recs []textdata.Instruction
		out  **tokdata.Data
	}{{"training", trainRecs, &train}, {"validation", valRecs, &val}} {
		d, st, err := textdata.EncodeInstructions(p.tok, tmpl, part.recs, limit)
		if err != nil {
			return nil, nil, p.encodeError(part.name+" records", err)
		}
		*part.out = d
		stats[i] = st
		fmt.Fprintf(p.log, "%s: %d records kept, %d tokens\n", part.name, st.Records, st.Tokens)
		if st.Dropped > 0 {
			fmt.Fprintf(p.log, "%s: dropped %d of %d records longer than max_length.tokens = %d\n", part.name, st.Dropped, len(part.recs), limit.Tokens)
		}
		if st.Truncated > 0 {
			fmt.Fprintf(p.log, "%s: truncated %d of %d records to max_length.tokens = %d\n", part.name, st.Truncated, len(part.recs), limit.Tokens)
		}
	}
	kept := stats[0].Records + stats[1].Records
	if kept == 0 {
		return nil, nil, fmt.Errorf("every one of the %d records is longer than max_length.tokens = %d; raise it or use policy = \"truncate\"", len(recs), limit.Tokens)
	}
	metrics["records"] = float64(kept)
	metrics["train_records"] = float64(stats[0].Records)
	metrics["validation_records"] = float64(stats[1].Records)
	metrics["dropped"] = float64(stats[0].Dropped + stats[1].Dropped)
	metrics["truncated"] = float64(stats[0].Truncated + stats[1].Truncated)
	return train, val, nil
}

func (p *prep) split() (float64, int64) {
	v := 0.1
	if p.s.Split.Validation != nil {
		v = *p.s.Split.Validation
	}
	return v, int64(p.s.Split.Seed)
}

func (p *prep) train(text string) (tokenizer.Tokenizer, error) {
	kind := tokenizer.Kind(p.s.Tokenizer.Kind)
	if kind == "" {
		kind = tokenizer.KindChar
	}
	vocab := 512
	if v := p.s.Tokenizer.VocabSize; v != nil {
		n, err := whole("tokenizer.vocab_size", *v)
		if err != nil {
			return nil, err
		}
		vocab = n
	}
	tok, err := tokenizer.Train(kind, text, vocab)
	if err != nil {
		return nil, fmt.Errorf("training the %s tokenizer: %w", kind, err)
	}
	if kind == tokenizer.KindByteBPE && tok.VocabSize() < vocab {
		fmt.Fprintf(p.log, "byte_bpe: the text supports only %d of the %d tokens asked for (no pair occurs %d times more)\n", tok.VocabSize(), vocab, tokenizer.MinPairCount)
	}
	return tok, nil
}

// whole converts a setting that must be an integer.
func whole(name string, v float64) (int, error) {
	if v != math.Trunc(v) || math.IsInf(v, 0) || math.Abs(v) > 1<<40 {
		return 0, fmt.Errorf("%s = %v: want a whole number", name, v)
	}
	return int(v), nil
}

// countFiles counts what textdata.ReadCorpus reads: 1 for a file, the
// non-hidden regular files for a directory.
func countFiles(path string) (int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !st.IsDir() {
		return 1, nil
	}
	n := 0
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n, err
}
