// Package ppo is the `ppo` stage kind: RLHF with a reward model.
package ppo

import (
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/finetune"
)

// Kind is the ppo stage kind.
var Kind = &stages.Static{
	KindName:    "ppo",
	KindVersion: 1,
	OutputNames: []string{"model"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefAttr("policy", true, "starting policy (also the frozen reference)"),
			stages.RefAttr("reward_model", true, "reward model"),
			stages.RefAttr("prompts", true, "prompt data"),
			stages.Str("method", "lora", "full or lora", "full", "lora"),
		},
		Blocks: []stages.Block{finetune.LoRABlock, {Name: "ppo", Attrs: []stages.Attr{
			stages.Num("steps", 100, "PPO iterations"),
			stages.Num("rollouts", 16, "generations per iteration"),
			stages.Num("minibatch", 4, "minibatch size"),
			stages.Num("epochs", 4, "epochs per batch"),
			stages.Num("kl_coef", 0.05, "KL penalty coefficient"),
			stages.Num("clip_range", 0.2, "policy clip"),
			stages.Num("clip_range_value", 0.2, "value clip"),
			stages.Num("vf_coef", 0.1, "value loss coefficient"),
			stages.Num("gamma", 1, "discount"),
			stages.Num("lam", 0.95, "GAE lambda"),
			stages.Num("temperature", 1, "sampling temperature"),
			stages.Num("max_new_tokens", 32, "generation length"),
			stages.Num("learning_rate", 1e-4, "learning rate"),
			stages.Num("seed", 0, "random seed"),
		}}},
	},
}

func init() { stages.Register(Kind) }
