package gpt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// SampleSettings control Generate.
type SampleSettings struct {
	MaxNewTokens int
	Temperature  float64 // 0: greedy (argmax, lowest id on ties)
	TopK         int     // 0: the whole vocabulary
	Seed         uint64  // draws come from math/rand/v2 PCG seeded (Seed, 0)
	StopTokens   []int32 // generation ends at one of these; it is not returned
}

// Generate continues prompt by up to MaxNewTokens tokens and returns the new
// ones. Each token is predicted from at most the last Context tokens.
func (m *Model) Generate(prompt []int32, s SampleSettings) ([]int32, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generation needs a prompt of at least one token")
	}
	if s.Temperature < 0 || math.IsNaN(s.Temperature) {
		return nil, fmt.Errorf("temperature must be 0 (greedy) or positive, got %g", s.Temperature)
	}
	V, ctx := m.Config.Vocab, m.Config.Context
	rng := newRand(s.Seed)
	seq := append([]int32(nil), prompt...)
	var out []int32
	probs := make([]float64, V)
	idx := make([]int, V)
	for len(out) < s.MaxNewTokens {
		window := seq[max(0, len(seq)-ctx):]
		T := len(window)
		if _, err := m.Forward(window, nil, nil, 1, T); err != nil {
			return nil, err
		}
		logits := m.Logits()[(T-1)*V : T*V]
		next := sampleLogits(logits, s.Temperature, s.TopK, rng, probs, idx)
		if stops(next, s.StopTokens) {
			break
		}
		out = append(out, next)
		seq = append(seq, next)
	}
	return out, nil
}

func stops(t int32, stop []int32) bool {
	for _, s := range stop {
		if t == s {
			return true
		}
	}
	return false
}

// sampleLogits picks a token from logits [V]; probs and idx are scratch [V].
func sampleLogits(logits []float32, temperature float64, topK int, rng *rand.Rand, probs []float64, idx []int) int32 {
	if temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best)
	}
	V := len(logits)
	for i := range idx {
		idx[i] = i
	}
	k := V
	if topK > 0 && topK < V {
		k = topK
		sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	}
	maxv := math.Inf(-1)
	for _, i := range idx[:k] {
		maxv = math.Max(maxv, float64(logits[i]))
	}
	var sum float64
	for j, i := range idx[:k] {
		p := math.Exp((float64(logits[i]) - maxv) / temperature)
		probs[j] = p
		sum += p
	}
	u := rng.Float64() * sum
	for j, i := range idx[:k] {
		u -= probs[j]
		if u < 0 {
			return int32(i)
		}
	}
	return int32(idx[k-1])
}

// PerplexityResult is DESIGN.md's perplexity with its parts.
type PerplexityResult struct {
	Perplexity float64 // exp(MeanNLL)
	MeanNLL    float64 // mean negative log-likelihood per scored token, nats
	Scored     int     // number of scored tokens
}

// Perplexity implements DESIGN.md's definition: the tokens are cut into
// consecutive non-overlapping windows of the context length (the last may be
// shorter) and every token of a window after its first is scored from the
// tokens before it in that window; the result is exp of the mean negative
// log-likelihood. Full windows are run in batches of up to 8.
func (m *Model) Perplexity(tokens []int32) (PerplexityResult, error) {
	T := m.Config.Context
	var sum float64
	n := 0
	score := func(windows [][]int32) error {
		B, L := len(windows), len(windows[0])-1
		in, tg := make([]int32, 0, B*L), make([]int32, 0, B*L)
		for _, w := range windows {
			in = append(in, w[:L]...)
			tg = append(tg, w[1:]...)
		}
		if _, err := m.Forward(in, tg, nil, B, L); err != nil {
			return err
		}
		for _, l := range m.acts.losses[:B*L] {
			sum += float64(l)
		}
		n += B * L
		return nil
	}
	var full [][]int32
	for start := 0; start < len(tokens); start += T {
		w := tokens[start:min(start+T, len(tokens))]
		if len(w) < 2 {
			continue // nothing to score
		}
		if len(w) < T {
			if err := score([][]int32{w}); err != nil {
				return PerplexityResult{}, err
			}
			continue
		}
		full = append(full, w)
		if len(full) == 8 {
			if err := score(full); err != nil {
				return PerplexityResult{}, err
			}
			full = full[:0]
		}
	}
	if len(full) > 0 {
		if err := score(full); err != nil {
			return PerplexityResult{}, err
		}
	}
	if n == 0 {
		return PerplexityResult{}, fmt.Errorf("perplexity needs at least 2 tokens, got %d", len(tokens))
	}
	mean := sum / float64(n)
	return PerplexityResult{Perplexity: math.Exp(mean), MeanNLL: mean, Scored: n}, nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
