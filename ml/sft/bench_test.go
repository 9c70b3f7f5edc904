package sft

import (
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/llmlab/llmlab/ml/blasimpl"
	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/internal/cputime"
	"github.com/llmlab/llmlab/ml/lora"
)

// BenchmarkStep compares one full fine-tuning step with one LoRA step on the
// same model. "full", "lora" (rank 8 on attn, attn_proj and mlp) and
// "lora-attn" (rank 8 on attn alone, the default) use a 4-layer, 4-head,
// 256-dim model with context 64 and vocabulary 512 (3.3M parameters),
// batch 4 x 64; "example-full" and "example-lora" use examples/sft's model
// (2 layers, 4 heads, 64 dims, context 32, vocabulary 25: 104k parameters)
// and its batch, 32 records of 26 tokens. The backend is $LLMLAB_BLAS or
// blasimpl.Default().
//
// live-MB is the heap in use after a GC once the first steps have run:
// parameters, gradients, activations, optimiser state and, for LoRA, the
// frozen copies of the targeted weights. cpu-ms/op is the process's CPU
// time per step (all threads): less noisy than wall time on a shared
// machine. For the peak, run one sub-benchmark per process under
// /usr/bin/time -v (docs/bench/sft.md).
//
//	go test -run x -bench Step -benchtime 10x ./ml/sft/
func BenchmarkStep(b *testing.B) {
	if err := blasimpl.Use(os.Getenv("LLMLAB_BLAS")); err != nil {
		b.Fatal(err)
	}
	blasimpl.SetThreads(0)
	big, small := gpt.Config{Layers: 4, Heads: 4, Dim: 256, Context: 64, Vocab: 512}, gpt.Config{Layers: 2, Heads: 4, Dim: 64, Context: 32, Vocab: 25}
	for _, c := range []struct {
		name    string
		cfg     gpt.Config
		targets []string
		B, T    int
	}{
		{"full", big, nil, 4, 64},
		{"lora", big, []string{"attn", "attn_proj", "mlp"}, 4, 64},
		{"lora-attn", big, []string{"attn"}, 4, 64},
		{"example-full", small, nil, 32, 26},
		{"example-lora", small, []string{"attn", "attn_proj", "mlp"}, 32, 26},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Logf("backend %s", blasimpl.Name())
			m, err := gpt.New(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			m.Init(1)
			var ad *lora.Adapter
			if c.targets != nil {
				if ad, err = lora.New(m, lora.Config{Rank: 8, Alpha: 16, Targets: c.targets}, 1); err != nil {
					b.Fatal(err)
				}
			}
			s := gpt.DefaultTrainSettings()
			st, err := newStepper(m, ad, s)
			if err != nil {
				b.Fatal(err)
			}
			B, T := c.B, c.T
			r := rand.New(rand.NewPCG(1, 1))
			inputs, tgts, mask := make([]int32, B*T), make([]int32, B*T), make([]uint8, B*T)
			for i := range inputs {
				inputs[i], tgts[i], mask[i] = int32(r.IntN(c.cfg.Vocab)), int32(r.IntN(c.cfg.Vocab)), 1
			}
			for range 2 {
				if _, err := st.step(inputs, tgts, mask, B, T, 1e-4); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ResetTimer()
			cpu0 := cputime.Process()
			for range b.N {
				if _, err := st.step(inputs, tgts, mask, B, T, 1e-4); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cputime.Process() - cpu0
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MB")
			b.ReportMetric(float64(len(st.params)), "trainable")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			runtime.KeepAlive(st)
		})
	}
}
