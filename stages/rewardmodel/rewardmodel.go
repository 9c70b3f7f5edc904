// Package rewardmodel is the `reward_model` stage kind: a backbone with a
// scalar head trained on preference pairs.
package rewardmodel

import "github.com/llmlab/llmlab/stages"

// Kind is the reward_model stage kind.
var Kind = &stages.Static{
	KindName:    "reward_model",
	KindVersion: 1,
	OutputNames: []string{"model"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("base", true, "backbone model"),
			stages.RefAttr("data", true, "preference pairs"),
			stages.RefAttr("eval_data", false, "held-out preference pairs"),
			stages.Bool("margin", false, "TRL's optional margin term"),
		},
		Blocks: []stages.Block{stages.TrainingBlock(1e-4)},
	},
}

func init() { stages.Register(Kind) }
