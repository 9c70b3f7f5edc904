package sft

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/lora"
)

// BenchmarkStep compares one full fine-tuning step with one LoRA step
// (rank 8 on attn, attn_proj and mlp: "lora"; on attn alone, the default:
// "lora-attn") on the same model: 4 layers, 4 heads,
// 256 dims, context 64, vocabulary 512 (3.3M parameters), batch 4 x 64.
// live-MB is the heap in use after a GC once the first steps have run:
// parameters, gradients, activations, optimiser state and, for LoRA, the
// frozen copies of the targeted weights.
//
//	go test -run x -bench Step -benchtime 10x ./ml/sft/
func BenchmarkStep(b *testing.B) {
	for _, method := range []string{"full", "lora", "lora-attn"} {
		b.Run(method, func(b *testing.B) {
			cfg := gpt.Config{Layers: 4, Heads: 4, Dim: 256, Context: 64, Vocab: 512}
			m, err := gpt.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			m.Init(1)
			var ad *lora.Adapter
			targets := map[string][]string{"lora": {"attn", "attn_proj", "mlp"}, "lora-attn": {"attn"}}[method]
			if targets != nil {
				if ad, err = lora.New(m, lora.Config{Rank: 8, Alpha: 16, Targets: targets}, 1); err != nil {
					b.Fatal(err)
				}
			}
			s := gpt.DefaultTrainSettings()
			st, err := newStepper(m, ad, s)
			if err != nil {
				b.Fatal(err)
			}
			B, T := 4, 64
			r := rand.New(rand.NewPCG(1, 1))
			inputs, tgts, mask := make([]int32, B*T), make([]int32, B*T), make([]uint8, B*T)
			for i := range inputs {
				inputs[i], tgts[i], mask[i] = int32(r.IntN(cfg.Vocab)), int32(r.IntN(cfg.Vocab)), 1
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
			for range b.N {
				if _, err := st.step(inputs, tgts, mask, B, T, 1e-4); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MB")
			b.ReportMetric(float64(len(st.params)), "trainable")
			runtime.KeepAlive(st)
		})
	}
}
