package gpt

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// markovTokens is a learnable sequence: each token is mostly (prev*3+1) mod V.
func markovTokens(n, V int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 0))
	out := make([]int32, n)
	for i := 1; i < n; i++ {
		if r.IntN(10) == 0 {
			out[i] = int32(r.IntN(V))
		} else {
			out[i] = int32((int(out[i-1])*3 + 1) % V)
		}
	}
	return out
}

func newInit(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	return m
}

func smallSettings() TrainSettings {
	s := DefaultTrainSettings()
	s.Steps, s.BatchSize, s.WarmupSteps = 8, 4, 2
	s.LearningRate, s.EvalEvery, s.EvalBatches, s.CheckpointEvery = 3e-3, 4, 2, 3
	s.Seed = 7
	return s
}

func TestTrainLearns(t *testing.T) {
	cfg := Config{Layers: 2, Heads: 2, Dim: 32, Context: 16, Vocab: 16}
	m := newInit(t, cfg, 1)
	data := markovTokens(4000, 16, 1)
	s := smallSettings()
	s.Steps, s.WarmupSteps, s.EvalEvery, s.LearningRate = 150, 10, 50, 1e-2
	var calls int
	res, err := Train(context.Background(), m, TrainData{Train: data[:3600], Val: data[3600:]}, s, TrainOptions{
		Progress: func(p Progress) {
			calls++
			if p.Step != calls || p.Steps != 150 || p.LR <= 0 || p.TokensPerSec <= 0 {
				t.Fatalf("bad progress %+v", p)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 150 || res.Steps != 150 {
		t.Errorf("progress calls %d, steps %d", calls, res.Steps)
	}
	// History: steps 0, 50, 100 and the final 150.
	if len(res.History) != 4 || res.History[0].Step != 0 || res.History[3].Step != 150 {
		t.Fatalf("history %+v", res.History)
	}
	// Initial loss is near ln(16) = 2.77; the chain's entropy is about 0.6 nats.
	if h0 := res.History[0].ValLoss; math.Abs(h0-math.Log(16)) > 0.1 {
		t.Errorf("initial val loss %.3f, want about ln 16 = 2.77", h0)
	}
	if res.ValLoss > 1.2 || res.TrainLoss > 1.2 {
		t.Errorf("after 150 steps train %.3f val %.3f, want < 1.2", res.TrainLoss, res.ValLoss)
	}
	if res.TokensPerSec <= 0 {
		t.Errorf("tokens/s %g", res.TokensPerSec)
	}
	t.Logf("history %+v", res.History)
}

// detConfig is large enough that every parallel kernel splits its work.
var detConfig = Config{Layers: 2, Heads: 4, Dim: 64, Context: 32, Vocab: 40}

func trainAt(t *testing.T, procs int) []float32 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	m := newInit(t, detConfig, 3)
	s := smallSettings()
	s.Steps = 3
	if _, err := Train(context.Background(), m, TrainData{Train: markovTokens(2000, 40, 2)}, s, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	return m.Params
}

func TestBitIdenticalAcrossGOMAXPROCS(t *testing.T) {
	a, b := trainAt(t, 1), trainAt(t, 2)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("param %d differs: %g at GOMAXPROCS 1, %g at 2", i, a[i], b[i])
		}
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	cfg := Config{Layers: 1, Heads: 2, Dim: 16, Context: 8, Vocab: 12}
	data := TrainData{Train: markovTokens(500, 12, 3), Val: markovTokens(200, 12, 4)}
	s := smallSettings()

	full := newInit(t, cfg, 5)
	want, err := Train(context.Background(), full, data, s, TrainOptions{CheckpointDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	part := newInit(t, cfg, 5)
	_, err = Train(ctx, part, data, s, TrainOptions{CheckpointDir: dir, Progress: func(p Progress) {
		if p.Step == 5 {
			cancel() // interrupted after step 5; the last checkpoint is at step 3
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != CheckpointFile {
		t.Fatalf("checkpoint dir holds %v", entries)
	}

	resumed := newInit(t, cfg, 99) // different init: everything must come from the checkpoint
	got, err := Train(context.Background(), resumed, data, s, TrainOptions{CheckpointDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got.ResumedFrom != 3 {
		t.Errorf("resumed from step %d, want 3", got.ResumedFrom)
	}
	for i := range full.Params {
		if math.Float32bits(full.Params[i]) != math.Float32bits(resumed.Params[i]) {
			t.Fatalf("param %d: uninterrupted %g, resumed %g", i, full.Params[i], resumed.Params[i])
		}
	}
	if len(got.History) != len(want.History) {
		t.Fatalf("history %+v, want %+v", got.History, want.History)
	}
	for i := range want.History {
		if got.History[i] != want.History[i] {
			t.Errorf("history[%d] = %+v, want %+v", i, got.History[i], want.History[i])
		}
	}

	// A checkpoint from other settings is refused.
	s2 := s
	s2.LearningRate = 1e-4
	_, err = Train(context.Background(), newInit(t, cfg, 5), data, s2, TrainOptions{CheckpointDir: dir})
	if err == nil || !strings.Contains(err.Error(), "was written by a run with a different model or training settings") {
		t.Errorf("mismatched checkpoint: err = %v", err)
	}
}

func TestTrainNaNStops(t *testing.T) {
	cfg := Config{Layers: 1, Heads: 1, Dim: 8, Context: 4, Vocab: 5}
	m := newInit(t, cfg, 1)
	m.Params[0] = float32(math.NaN()) // wte[0][0]; token 0 is in every batch
	data := make([]int32, 50)
	_, err := Train(context.Background(), m, TrainData{Train: data}, smallSettings(), TrainOptions{})
	if err == nil || err.Error() != "training loss is NaN at step 1; lower the learning_rate or check the data" {
		t.Errorf("err = %v", err)
	}
}

func TestTrainDataErrors(t *testing.T) {
	cfg := Config{Layers: 1, Heads: 1, Dim: 8, Context: 64, Vocab: 5}
	m := newInit(t, cfg, 1)
	_, err := Train(context.Background(), m, TrainData{Train: make([]int32, 40)}, smallSettings(), TrainOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "context 64 is longer than the data (40 tokens)") {
		t.Errorf("short data: err = %v", err)
	}
	long := make([]int32, 100)
	_, err = Train(context.Background(), m, TrainData{Train: long, Val: make([]int32, 10)}, smallSettings(), TrainOptions{})
	if err == nil || !strings.Contains(err.Error(), "the validation data needs at least context+1 = 65 tokens") {
		t.Errorf("short validation: err = %v", err)
	}
	long[7] = 5
	_, err = Train(context.Background(), m, TrainData{Train: long}, smallSettings(), TrainOptions{})
	if err == nil || err.Error() != "training token 5 at position 7 is outside the vocabulary of 5" {
		t.Errorf("bad token: err = %v", err)
	}
	_, err = Train(context.Background(), m, TrainData{Train: make([]int32, 100), TrainMask: make([]uint8, 3)}, smallSettings(), TrainOptions{})
	if err == nil || err.Error() != "the training loss mask has 3 entries for 100 tokens" {
		t.Errorf("bad mask: err = %v", err)
	}
}

// TestLossMask: with a mask, the loss counts only unmasked targets, so
// masking a position is the same as leaving it out of the mean.
func TestLossMask(t *testing.T) {
	cfg := Config{Layers: 1, Heads: 2, Dim: 8, Context: 4, Vocab: 6}
	m := tinyModel(t, cfg, 2)
	in := []int32{1, 2, 3, 4}
	tg := []int32{2, 3, 4, 5}
	if _, err := m.Forward(in, tg, nil, 1, 4); err != nil {
		t.Fatal(err)
	}
	losses := append([]float32(nil), m.acts.losses[:4]...)
	got, err := m.Forward(in, tg, []uint8{0, 1, 0, 1}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := (float64(losses[1]) + float64(losses[3])) / 2
	if math.Abs(float64(got)-want) > 1e-6 {
		t.Errorf("masked loss %g, want %g", got, want)
	}
	if _, err := m.Forward(in, tg, []uint8{0, 0, 0, 0}, 1, 4); err == nil || err.Error() != "the loss mask excludes every position of the batch" {
		t.Errorf("all-masked: err = %v", err)
	}
}

func TestCheckpointFileIsSafetensors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	cfg := Config{Layers: 1, Heads: 1, Dim: 8, Context: 4, Vocab: 5}
	s := smallSettings()
	s.Steps, s.CheckpointEvery = 4, 2
	if _, err := Train(context.Background(), newInit(t, cfg, 1), TrainData{Train: markovTokens(100, 5, 1)}, s, TrainOptions{CheckpointDir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); err != nil {
		t.Error(err)
	}
}
