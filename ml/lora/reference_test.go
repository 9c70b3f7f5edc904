package lora

import (
	"math"
	"strconv"

	"github.com/llmlab/llmlab/ml/gpt"
)

// refAdapter is one LoRA module for the reference forward: it adds
// scale·x·Aᵀ·Bᵀ to the Conv1D output, computed from x, A and B directly
// (never through a merged weight).
type refAdapter struct {
	A, B  []float64 // [r, in], [out, r]
	r     int
	scale float64
}

// refModel is a plain float64 GPT-2 (HF's GPT2LMHeadModel, gelu_new, tied
// head) written independently of ml/gpt's kernels.
type refModel struct {
	cfg    gpt.Config
	w      map[string][]float64
	lora   map[string]*refAdapter // module name ("h.0.attn.c_attn") -> adapter
	eps    float64
	layers int
}

func newRef(m *gpt.Model) *refModel {
	r := &refModel{cfg: m.Config, w: map[string][]float64{}, lora: map[string]*refAdapter{}, eps: float64(m.Config.Eps)}
	if r.eps == 0 {
		r.eps = 1e-5
	}
	for _, t := range m.Tensors() {
		r.w[t.Name] = to64(t.Data)
	}
	return r
}

// withAdapter adds a's modules (current A and B) and replaces the targeted
// weights by a's frozen base weights.
func (r *refModel) withAdapter(a *Adapter) *refModel {
	for _, md := range a.Modules {
		r.w[md.Name+".weight"] = to64(md.base)
		r.lora[md.Name] = &refAdapter{A: to64(md.A), B: to64(md.B), r: a.Config.Rank, scale: a.Config.Scale()}
	}
	return r
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// conv1d: y [N, out] = x [N, in] · W [in, out] + b, plus the LoRA term.
func (r *refModel) conv1d(module string, x []float64, N, in, out int) []float64 {
	W, b := r.w[module+".weight"], r.w[module+".bias"]
	y := make([]float64, N*out)
	for n := 0; n < N; n++ {
		for o := 0; o < out; o++ {
			s := b[o]
			for i := 0; i < in; i++ {
				s += x[n*in+i] * W[i*out+o]
			}
			y[n*out+o] = s
		}
	}
	if ad := r.lora[module]; ad != nil {
		for n := 0; n < N; n++ {
			xa := make([]float64, ad.r) // x · Aᵀ
			for k := 0; k < ad.r; k++ {
				for i := 0; i < in; i++ {
					xa[k] += x[n*in+i] * ad.A[k*in+i]
				}
			}
			for o := 0; o < out; o++ { // (x · Aᵀ) · Bᵀ
				s := 0.0
				for k := 0; k < ad.r; k++ {
					s += xa[k] * ad.B[o*ad.r+k]
				}
				y[n*out+o] += ad.scale * s
			}
		}
	}
	return y
}

func (r *refModel) layernorm(name string, x []float64, N, C int) []float64 {
	w, b := r.w[name+".weight"], r.w[name+".bias"]
	y := make([]float64, N*C)
	for n := 0; n < N; n++ {
		row := x[n*C : (n+1)*C]
		mean, v := 0.0, 0.0
		for _, e := range row {
			mean += e
		}
		mean /= float64(C)
		for _, e := range row {
			v += (e - mean) * (e - mean)
		}
		v /= float64(C)
		rs := 1 / math.Sqrt(v+r.eps)
		for c := range C {
			y[n*C+c] = (row[c]-mean)*rs*w[c] + b[c]
		}
	}
	return y
}

// forward returns logits [B*T*V] and, with targets, the mean cross-entropy
// over positions whose mask is not zero (nil mask: all).
func (r *refModel) forward(inputs, targets []int32, mask []uint8, B, T int) ([]float64, float64) {
	C, V, NH := r.cfg.Dim, r.cfg.Vocab, r.cfg.Heads
	hs := C / NH
	N := B * T
	x := make([]float64, N*C)
	wte, wpe := r.w["wte.weight"], r.w["wpe.weight"]
	for b := range B {
		for t := range T {
			tok := int(inputs[b*T+t])
			for c := range C {
				x[(b*T+t)*C+c] = wte[tok*C+c] + wpe[t*C+c]
			}
		}
	}
	for l := 0; l < r.cfg.Layers; l++ {
		pre := "h." + strconv.Itoa(l) + "."
		h := r.layernorm(pre+"ln_1", x, N, C)
		qkv := r.conv1d(pre+"attn.c_attn", h, N, C, 3*C)
		y := make([]float64, N*C)
		for b := range B {
			for hd := range NH {
				for t := range T {
					q := qkv[(b*T+t)*3*C+hd*hs:]
					att := make([]float64, t+1)
					mx := math.Inf(-1)
					for u := 0; u <= t; u++ {
						k := qkv[(b*T+u)*3*C+C+hd*hs:]
						s := 0.0
						for i := range hs {
							s += q[i] * k[i]
						}
						att[u] = s / math.Sqrt(float64(hs))
						mx = max(mx, att[u])
					}
					sum := 0.0
					for u := range att {
						att[u] = math.Exp(att[u] - mx)
						sum += att[u]
					}
					for u := range att {
						v := qkv[(b*T+u)*3*C+2*C+hd*hs:]
						for i := range hs {
							y[(b*T+t)*C+hd*hs+i] += att[u] / sum * v[i]
						}
					}
				}
			}
		}
		proj := r.conv1d(pre+"attn.c_proj", y, N, C, C)
		for i := range x {
			x[i] += proj[i]
		}
		h2 := r.layernorm(pre+"ln_2", x, N, C)
		fc := r.conv1d(pre+"mlp.c_fc", h2, N, C, 4*C)
		for i, v := range fc {
			fc[i] = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		}
		out := r.conv1d(pre+"mlp.c_proj", fc, N, 4*C, C)
		for i := range x {
			x[i] += out[i]
		}
	}
	xf := r.layernorm("ln_f", x, N, C)
	logits := make([]float64, N*V)
	for n := range N {
		for v := range V {
			s := 0.0
			for c := range C {
				s += xf[n*C+c] * wte[v*C+c]
			}
			logits[n*V+v] = s
		}
	}
	if targets == nil {
		return logits, 0
	}
	loss, count := 0.0, 0
	for n := range N {
		if mask != nil && mask[n] == 0 {
			continue
		}
		row := logits[n*V : (n+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, v)
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		loss += mx + math.Log(sum) - row[targets[n]]
		count++
	}
	return logits, loss / float64(count)
}
