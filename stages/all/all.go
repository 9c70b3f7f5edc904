// Package all registers every built-in stage kind.
package all

import (
	_ "github.com/llmlab/llmlab/stages/dataprep"
	_ "github.com/llmlab/llmlab/stages/dpo"
	_ "github.com/llmlab/llmlab/stages/eval"
	_ "github.com/llmlab/llmlab/stages/exec"
	_ "github.com/llmlab/llmlab/stages/finetune"
	_ "github.com/llmlab/llmlab/stages/generate"
	_ "github.com/llmlab/llmlab/stages/ppo"
	_ "github.com/llmlab/llmlab/stages/pretrain"
	_ "github.com/llmlab/llmlab/stages/ragindex"
	_ "github.com/llmlab/llmlab/stages/rewardmodel"
)
