package gpt

import (
	"math"
	"slices"
	"testing"
)

// A model whose parameters are all zero predicts the uniform distribution
// (LayerNorm weight 0 and bias 0 make the final hidden state 0, so every
// logit is 0): perplexity is exactly the vocabulary size, and the number of
// scored tokens follows from the windowing alone.
func TestPerplexityUniform(t *testing.T) {
	m, err := New(Config{Layers: 1, Heads: 1, Dim: 4, Context: 4, Vocab: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ n, scored int }{
		{10, 3 + 3 + 1}, // windows of 4, 4, 2
		{9, 3 + 3},      // 4, 4, 1: a one-token window scores nothing
		{8, 6},
		{2, 1},
	} {
		tokens := markovTokens(c.n, 7, 1)
		r, err := m.Perplexity(tokens)
		if err != nil {
			t.Fatal(err)
		}
		if r.Scored != c.scored || math.Abs(r.Perplexity-7) > 1e-5 {
			t.Errorf("%d tokens: scored %d (want %d), perplexity %.7g (want 7)", c.n, r.Scored, c.scored, r.Perplexity)
		}
	}
	if _, err := m.Perplexity([]int32{3}); err == nil || err.Error() != "perplexity needs at least 2 tokens, got 1" {
		t.Errorf("err = %v", err)
	}
}

// TestPerplexityWindows recomputes the definition token by token: token j
// of a window is scored by a separate forward pass over the window's tokens
// before it, with log-softmax in float64.
func TestPerplexityWindows(t *testing.T) {
	m := tinyModel(t, Config{Layers: 2, Heads: 2, Dim: 8, Context: 5, Vocab: 9}, 4)
	tokens := markovTokens(23, 9, 2) // windows 5,5,5,5,3
	var sum float64
	n := 0
	for start := 0; start < len(tokens); start += 5 {
		w := tokens[start:min(start+5, len(tokens))]
		for j := 1; j < len(w); j++ {
			if _, err := m.Forward(w[:j], nil, nil, 1, j); err != nil {
				t.Fatal(err)
			}
			l := m.Logits()[(j-1)*9 : j*9]
			maxv := math.Inf(-1)
			for _, v := range l {
				maxv = math.Max(maxv, float64(v))
			}
			var z float64
			for _, v := range l {
				z += math.Exp(float64(v) - maxv)
			}
			sum += -(float64(l[w[j]]) - maxv - math.Log(z))
			n++
		}
	}
	want := math.Exp(sum / float64(n))
	got, err := m.Perplexity(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scored != n || math.Abs(got.Perplexity-want) > 1e-5*want {
		t.Errorf("perplexity %.8g over %d tokens, want %.8g over %d", got.Perplexity, got.Scored, want, n)
	}
}

func TestGenerate(t *testing.T) {
	m := tinyModel(t, Config{Layers: 1, Heads: 2, Dim: 8, Context: 4, Vocab: 6}, 5)
	prompt := []int32{1, 2}
	// Greedy: each token is the argmax of a forward pass over the last 4.
	got, err := m.Generate(prompt, SampleSettings{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	seq := slices.Clone(prompt)
	for range 6 {
		w := seq[max(0, len(seq)-4):]
		m.Forward(w, nil, nil, 1, len(w))
		l := m.Logits()[(len(w)-1)*6:]
		best := 0
		for i := range 6 {
			if l[i] > l[best] {
				best = i
			}
		}
		seq = append(seq, int32(best))
	}
	if !slices.Equal(got, seq[2:]) {
		t.Errorf("greedy %v, want %v", got, seq[2:])
	}
	// Sampling is reproducible from the seed, and top-k 1 is greedy.
	s := SampleSettings{MaxNewTokens: 20, Temperature: 1, Seed: 3}
	a, _ := m.Generate(prompt, s)
	b, _ := m.Generate(prompt, s)
	if !slices.Equal(a, b) || len(a) != 20 {
		t.Errorf("same seed gave %v and %v", a, b)
	}
	s.Seed = 4
	if c, _ := m.Generate(prompt, s); slices.Equal(a, c) {
		t.Errorf("different seeds gave the same 20 tokens %v", a)
	}
	k1, _ := m.Generate(prompt, SampleSettings{MaxNewTokens: 6, Temperature: 5, TopK: 1, Seed: 9})
	if !slices.Equal(k1, got) {
		t.Errorf("top-k 1 %v, want greedy %v", k1, got)
	}
	// Stop tokens end generation and are not returned.
	stopped, _ := m.Generate(prompt, SampleSettings{MaxNewTokens: 6, StopTokens: []int32{got[2]}})
	if !slices.Equal(stopped, got[:slices.Index(got, got[2])]) {
		t.Errorf("with stop token %d: %v (greedy %v)", got[2], stopped, got)
	}
	if _, err := m.Generate(nil, s); err == nil || err.Error() != "generation needs a prompt of at least one token" {
		t.Errorf("empty prompt: err = %v", err)
	}
}

// TestSampleTopKDistribution: with top-k 2 only the two largest logits are
// ever drawn, in proportion to exp(logit/temperature).
func TestSampleTopKDistribution(t *testing.T) {
	logits := []float32{0, 2, 1, 2.5, -1}
	counts := make([]int, 5)
	rng := newRand(11)
	probs, idx := make([]float64, 5), make([]int, 5)
	const n = 20000
	for range n {
		counts[sampleLogits(logits, 1, 2, rng, probs, idx)]++
	}
	want3 := math.Exp(2.5) / (math.Exp(2.5) + math.Exp(2))
	if counts[0]+counts[2]+counts[4] != 0 {
		t.Errorf("tokens outside the top 2 drawn: %v", counts)
	}
	if got := float64(counts[3]) / n; math.Abs(got-want3) > 0.015 { // ~4 standard errors
		t.Errorf("token 3 drawn %.3f of the time, want %.3f", got, want3)
	}
}
