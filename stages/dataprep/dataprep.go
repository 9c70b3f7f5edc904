// Package dataprep is the `data_prep` stage kind: text, instruction,
// preference or document records tokenized and split.
package dataprep

import "github.com/llmlab/llmlab/stages"

// Kind is the data_prep stage kind.
var Kind = &stages.Static{
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
}

func init() { stages.Register(Kind) }
