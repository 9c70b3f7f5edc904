// Package dpo is the `dpo` stage kind: direct preference optimisation.
package dpo

import (
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/finetune"
)

// Kind is the dpo stage kind.
var Kind = &stages.Static{
	KindName:    "dpo",
	KindVersion: 1,
	OutputNames: []string{"model"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("policy", true, "starting policy (also the frozen reference)"),
			stages.RefAttr("data", true, "preference pairs"),
			stages.RefAttr("eval_data", false, "held-out preference pairs"),
			stages.Num("beta", 0.1, "sigmoid loss temperature"),
			stages.Str("method", "lora", "full or lora", "full", "lora"),
		},
		Blocks: []stages.Block{finetune.LoRABlock, stages.TrainingBlock(1e-4)},
	},
}

func init() { stages.Register(Kind) }
