// Package finetune is the `finetune` stage kind: full or LoRA fine-tuning of
// a model on instruction data.
package finetune

import (
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

// LoRABlock is shared by finetune, ppo and dpo.
var LoRABlock = stages.Block{Name: "lora", Attrs: []stages.Attr{
	stages.Num("rank", 8, "adapter rank"),
	stages.Num("alpha", 16, "scaling numerator (scale = alpha/rank)"),
	stages.Num("dropout", 0, "adapter dropout"),
	{Name: "targets", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("attn")}), Doc: "among attn, attn_proj, mlp"},
}}

// Kind is the finetune stage kind.
var Kind = &stages.Static{
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
		Blocks: []stages.Block{LoRABlock, stages.TrainingBlock(1e-3)},
	},
}

func init() { stages.Register(Kind) }
