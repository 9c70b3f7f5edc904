package gpt

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/llmlab/llmlab/ml/blasimpl"
	"github.com/llmlab/llmlab/ml/internal/cputime"
	"github.com/llmlab/llmlab/ml/optim"
)

// BenchmarkTrainStep times one training step (zero grads, forward,
// backward, clip, AdamW) of nanoGPT's CPU shakespeare-char config: 4 layers,
// 4 heads, 128 dims, context 64, batch 12, vocab 65. The backend is
// $LLMLAB_BLAS or blasimpl.Default(). Compare with testdata/bench_torch.py:
//
//	go test -run x -bench TrainStep -cpu 1,2 ./ml/gpt/
func BenchmarkTrainStep(b *testing.B) {
	if err := blasimpl.Use(os.Getenv("LLMLAB_BLAS")); err != nil {
		b.Fatal(err)
	}
	blasimpl.SetThreads(0)
	b.Logf("backend %s", blasimpl.Name())
	cfg := Config{Layers: 4, Heads: 4, Dim: 128, Context: 64, Vocab: 65}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Init(1)
	B, T := 12, 64
	r := rand.New(rand.NewPCG(1, 1))
	data := make([]int32, 10000)
	for i := range data {
		data[i] = int32(r.IntN(65))
	}
	var segs []optim.Segment
	off := 0
	for _, t := range m.Tensors() {
		segs = append(segs, optim.Segment{Offset: off, Len: len(t.Data), Decay: t.Decay})
		off += len(t.Data)
	}
	adam, _ := optim.NewAdamW(len(m.Params), segs, optim.DefaultAdamW)
	in, tg := make([]int32, B*T), make([]int32, B*T)
	step := func() {
		sampleBatch(in, tg, nil, data, nil, B, T, r)
		m.ZeroGrad()
		if _, err := m.Forward(in, tg, nil, B, T); err != nil {
			b.Fatal(err)
		}
		m.Backward()
		optim.ClipGlobalNorm(m.Grads, 1)
		adam.Update(m.Params, m.Grads, 1e-3)
	}
	step() // allocate activations
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for b.Loop() {
		step()
	}
	cpu := cputime.Process() - cpu0
	b.ReportMetric(float64(b.N*B*T)/b.Elapsed().Seconds(), "tok/s")
	// CPU time per step (all threads) and the tokens/s it implies on one
	// otherwise idle core: less noisy than wall time on a loaded machine.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	if cpu > 0 {
		b.ReportMetric(float64(b.N*B*T)/cpu.Seconds(), "tok/cpu-s")
	}
}
