// Package eval is the `eval` stage kind: tasks that score a model or an
// index.
package eval

import (
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

var listOfString = cty.List(cty.String)

// Kind is the eval stage kind.
var Kind = &stages.Static{
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
}

func init() { stages.Register(Kind) }
