// Package optim holds llmlab's optimiser pieces for flat float32 parameter
// vectors: AdamW with decoupled weight decay on selected ranges, the
// warm-up + cosine learning-rate schedule, and global-norm gradient clipping.
// Every loop runs sequentially in index order, so results do not depend on
// the number of threads.
package optim

import (
	"fmt"
	"math"
)

// Segment is a range [Offset, Offset+Len) of the parameter vector; Decay
// says whether weight decay applies to it (2-D weights: yes; biases and
// LayerNorm parameters: no).
type Segment struct {
	Offset, Len int
	Decay       bool
}

// AdamWConfig holds the hyper-parameters; zero values take the defaults of
// DefaultAdamW except WeightDecay, which is used as given.
type AdamWConfig struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
}

// DefaultAdamW is llmlab's default: betas (0.9, 0.99), eps 1e-8, decay 0.1.
var DefaultAdamW = AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1}

// AdamW is PyTorch's torch.optim.AdamW (decoupled weight decay, bias
// correction, no amsgrad) over a flat parameter vector. M and V are the
// first and second moments and Step the number of updates taken: together
// they are the optimiser's whole state.
type AdamW struct {
	Config   AdamWConfig
	Segments []Segment
	M, V     []float32
	Step     int
}

// NewAdamW returns an optimiser for n parameters laid out as segments (which
// must cover [0, n) without overlap, in order).
func NewAdamW(n int, segments []Segment, cfg AdamWConfig) (*AdamW, error) {
	off := 0
	for _, s := range segments {
		if s.Offset != off || s.Len < 0 {
			return nil, fmt.Errorf("optim: segment at %d (length %d) does not follow the previous one ending at %d", s.Offset, s.Len, off)
		}
		off += s.Len
	}
	if off != n {
		return nil, fmt.Errorf("optim: segments cover %d of %d parameters", off, n)
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = DefaultAdamW.Beta1
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = DefaultAdamW.Beta2
	}
	if cfg.Eps == 0 {
		cfg.Eps = DefaultAdamW.Eps
	}
	return &AdamW{Config: cfg, Segments: segments, M: make([]float32, n), V: make([]float32, n)}, nil
}

// Update takes one AdamW step with learning rate lr:
//
//	p -= lr * wd * p            (decayed segments only)
//	m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//	p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
func (a *AdamW) Update(params, grads []float32, lr float64) {
	a.Step++
	c := a.Config
	b1, b2 := float32(c.Beta1), float32(c.Beta2)
	bc1 := float32(1 - math.Pow(c.Beta1, float64(a.Step)))
	bc2 := float32(1 - math.Pow(c.Beta2, float64(a.Step)))
	lr32, eps := float32(lr), float32(c.Eps)
	for _, s := range a.Segments {
		decay := float32(0)
		if s.Decay {
			decay = float32(lr * c.WeightDecay)
		}
		p := params[s.Offset : s.Offset+s.Len]
		g := grads[s.Offset : s.Offset+s.Len]
		m := a.M[s.Offset : s.Offset+s.Len]
		v := a.V[s.Offset : s.Offset+s.Len]
		for i := adamwVec(p, g, m, v, b1, b2, bc1, bc2, lr32, eps, decay); i < len(p); i++ {
			gi := g[i]
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			mhat := mi / bc1
			vhat := vi / bc2
			p[i] -= decay * p[i]
			p[i] -= lr32 * mhat / (float32(math.Sqrt(float64(vhat))) + eps)
		}
	}
}

// Schedule is linear warm-up then cosine decay, as nanoGPT's get_lr:
// step < warmup: lr * (step+1) / (warmup+1); then from lr down to minLR
// at step == total (0-based steps); minLR beyond.
type Schedule struct {
	LR, MinLR     float64
	Warmup, Total int
}

// At is the learning rate for the 0-based step.
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup+1)
	}
	if step >= s.Total || s.Total <= s.Warmup {
		return s.MinLR
	}
	ratio := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	coeff := 0.5 * (1 + math.Cos(math.Pi*ratio))
	return s.MinLR + coeff*(s.LR-s.MinLR)
}

// ClipGlobalNorm scales grads so that their L2 norm is at most maxNorm (as
// torch.nn.utils.clip_grad_norm_: factor maxNorm/(norm+1e-6) when below 1)
// and returns the norm before clipping. maxNorm <= 0 only measures. The norm
// is summed in float64, sequentially.
func ClipGlobalNorm(grads []float32, maxNorm float64) float64 {
	var s float64
	for _, g := range grads {
		s += float64(g) * float64(g)
	}
	norm := math.Sqrt(s)
	if maxNorm > 0 {
		if coef := maxNorm / (norm + 1e-6); coef < 1 {
			c := float32(coef)
			for i := range grads {
				grads[i] *= c
			}
		}
	}
	return norm
}
