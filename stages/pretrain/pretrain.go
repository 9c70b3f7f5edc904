// Package pretrain is the `pretrain` stage kind: a GPT-2 model trained from
// scratch on tokenized text.
package pretrain

import "github.com/llmlab/llmlab/stages"

// ModelBlock is the GPT-2 shape.
var ModelBlock = stages.Block{Name: "model", Required: true, Attrs: []stages.Attr{
	stages.NumReq("layers", "transformer blocks"),
	stages.NumReq("heads", "attention heads"),
	stages.NumReq("dim", "embedding width"),
	stages.NumReq("context", "context length in tokens"),
}}

// Kind is the pretrain stage kind.
var Kind = &stages.Static{
	KindName:    "pretrain",
	KindVersion: 1,
	OutputNames: []string{"model"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("data", true, "tokenized training data (data_prep train)"),
			stages.RefAttr("eval_data", false, "tokenized validation data"),
		},
		Blocks: []stages.Block{ModelBlock, stages.TrainingBlock(1e-3)},
	},
}

func init() { stages.Register(Kind) }
