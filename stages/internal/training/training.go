// Package training holds what the training stage kinds (pretrain,
// finetune) share around their loops: the resumable checkpoint directory
// and progress reporting.
package training

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/stages"
)

// CheckpointDir prepares the job's state directory for checkpoints named
// file and says in log when an earlier attempt left one to resume from.
// It returns "" when the executor gave the job no state directory.
func CheckpointDir(job *stages.Job, log io.Writer, file string) (string, error) {
	if job.StateDir == "" {
		return "", nil
	}
	if err := os.MkdirAll(job.StateDir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(job.StateDir, file)); err == nil {
		fmt.Fprintln(log, "found a checkpoint of an earlier attempt: resuming from it")
	}
	return job.StateDir, nil
}

// Progress reports every step to the executor's live display and writes a
// line to log every evalEvery steps (a tenth of the run if evalEvery <= 0)
// and at the last step.
func Progress(job *stages.Job, log io.Writer, evalEvery, steps int) func(gpt.Progress) {
	every := evalEvery
	if every <= 0 {
		every = max(steps/10, 1)
	}
	return func(p gpt.Progress) {
		if job.Progress != nil {
			job.Progress(stages.Progress{Step: p.Step, Steps: p.Steps, Loss: p.Loss, TokensPerS: p.TokensPerSec, ETA: p.ETA})
		}
		if p.Step%every == 0 || p.Step == p.Steps {
			fmt.Fprintf(log, "step %d/%d: loss %.4f, lr %.3g, %.0f tokens/s, ETA %s\n",
				p.Step, p.Steps, p.Loss, p.LR, p.TokensPerSec, p.ETA.Round(time.Second))
		}
	}
}
