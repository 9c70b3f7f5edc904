package gpt

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The layer functions below follow llm.c's train_gpt2.c: outputs first,
// shapes in the doc comment, gradients accumulated with +=. Every function
// that uses goroutines splits its work by output rows (or by batch x head),
// so each output element is computed by the same sequence of operations at
// any GOMAXPROCS; reductions across rows (bias and LayerNorm weight
// gradients, embedding gradients) run sequentially in row order.

// parallelFor calls fn on consecutive chunks of [0, n). Chunks are computed
// independently, so the result does not depend on how many there are. work
// is the approximate cost of one item; small jobs stay on one goroutine.
func parallelFor(n, work int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	const minWork = 1 << 14
	if w := n * work / minWork; w < workers {
		workers = w
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// encoderForward: out [B,T,C] = wte[inp[b,t]] + wpe[t]; inp [B,T], wte [V,C], wpe [maxT,C].
func encoderForward(out []float32, inp []int32, wte, wpe []float32, B, T, C int) {
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			o := out[(b*T+t)*C : (b*T+t+1)*C]
			te := wte[int(inp[b*T+t])*C:][:C]
			pe := wpe[t*C:][:C]
			for i := range o {
				o[i] = te[i] + pe[i]
			}
		}
	}
}

// encoderBackward: dwte [V,C] += and dwpe [maxT,C] += from dout [B,T,C]; inp [B,T].
func encoderBackward(dwte, dwpe, dout []float32, inp []int32, B, T, C int) {
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			d := dout[(b*T+t)*C : (b*T+t+1)*C]
			dte := dwte[int(inp[b*T+t])*C:][:C]
			dpe := dwpe[t*C:][:C]
			for i, v := range d {
				dte[i] += v
				dpe[i] += v
			}
		}
	}
}

// layernormForward: out [N,C], mean [N], rstd [N] from inp [N,C], weight [C], bias [C].
func layernormForward(out, mean, rstd, inp, weight, bias []float32, N, C int, eps float32) {
	parallelFor(N, 8*C, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			x := inp[r*C : (r+1)*C]
			var s float64
			for _, v := range x {
				s += float64(v)
			}
			m := float32(s / float64(C))
			var s2 float64
			for _, v := range x {
				d := float64(v - m)
				s2 += d * d
			}
			rs := float32(1 / math.Sqrt(s2/float64(C)+float64(eps)))
			o := out[r*C : (r+1)*C]
			for i, v := range x {
				o[i] = (v-m)*rs*weight[i] + bias[i]
			}
			mean[r], rstd[r] = m, rs
		}
	})
}

// layernormBackward: dinp [N,C] +=, dweight [C] +=, dbias [C] += from dout [N,C],
// inp [N,C], weight [C], mean [N], rstd [N].
func layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	parallelFor(N, 10*C, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			x := inp[r*C : (r+1)*C]
			d := dout[r*C : (r+1)*C]
			m, rs := mean[r], rstd[r]
			var dnormMean, dnormNormMean float32
			for i := range x {
				norm := (x[i] - m) * rs
				dn := weight[i] * d[i]
				dnormMean += dn
				dnormNormMean += dn * norm
			}
			dnormMean /= float32(C)
			dnormNormMean /= float32(C)
			di := dinp[r*C : (r+1)*C]
			for i := range x {
				norm := (x[i] - m) * rs
				dn := weight[i] * d[i]
				di[i] += (dn - dnormMean - norm*dnormNormMean) * rs
			}
		}
	})
	// Sequential over rows: a fixed summation order at any thread count.
	for r := 0; r < N; r++ {
		x := inp[r*C : (r+1)*C]
		d := dout[r*C : (r+1)*C]
		m, rs := mean[r], rstd[r]
		for i := lnParamGradVec(dweight, dbias, x, d, m, rs); i < len(x); i++ {
			dbias[i] += d[i]
			dweight[i] += (x[i] - m) * rs * d[i]
		}
	}
}

// matmulForward: out [N,OC] = inp [N,IC] * weight [IC,OC] + bias [OC] (bias may be nil).
func matmulForward(out, inp, weight, bias []float32, N, IC, OC int) {
	beta := float32(0)
	if bias != nil {
		for r := 0; r < N; r++ {
			copy(out[r*OC:(r+1)*OC], bias)
		}
		beta = 1
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: N, Cols: IC, Stride: IC, Data: inp[:N*IC]},
		blas32.General{Rows: IC, Cols: OC, Stride: OC, Data: weight[:IC*OC]},
		beta,
		blas32.General{Rows: N, Cols: OC, Stride: OC, Data: out[:N*OC]})
}

// matmulBackward: dinp [N,IC] +=, dweight [IC,OC] +=, dbias [OC] += (may be nil)
// from dout [N,OC], inp [N,IC], weight [IC,OC].
func matmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, IC, OC int) {
	gDout := blas32.General{Rows: N, Cols: OC, Stride: OC, Data: dout[:N*OC]}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		gDout,
		blas32.General{Rows: IC, Cols: OC, Stride: OC, Data: weight[:IC*OC]},
		1,
		blas32.General{Rows: N, Cols: IC, Stride: IC, Data: dinp[:N*IC]})
	blas32.Gemm(blas.Trans, blas.NoTrans, 1,
		blas32.General{Rows: N, Cols: IC, Stride: IC, Data: inp[:N*IC]},
		gDout,
		1,
		blas32.General{Rows: IC, Cols: OC, Stride: OC, Data: dweight[:IC*OC]})
	if dbias != nil {
		for r := 0; r < N; r++ {
			d := dout[r*OC : (r+1)*OC]
			for i := accumulateVec(dbias[:OC], d); i < OC; i++ {
				dbias[i] += d[i]
			}
		}
	}
}

// headForward: logits [N,V] = inp [N,C] * wte^T, wte [V,C] (the tied output head).
func headForward(logits, inp, wte []float32, N, C, V int) {
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: N, Cols: C, Stride: C, Data: inp[:N*C]},
		blas32.General{Rows: V, Cols: C, Stride: C, Data: wte[:V*C]},
		0,
		blas32.General{Rows: N, Cols: V, Stride: V, Data: logits[:N*V]})
}

// headBackward: dinp [N,C] +=, dwte [V,C] += from dlogits [N,V], inp [N,C], wte [V,C].
func headBackward(dinp, dwte, dlogits, inp, wte []float32, N, C, V int) {
	gD := blas32.General{Rows: N, Cols: V, Stride: V, Data: dlogits[:N*V]}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		gD,
		blas32.General{Rows: V, Cols: C, Stride: C, Data: wte[:V*C]},
		1,
		blas32.General{Rows: N, Cols: C, Stride: C, Data: dinp[:N*C]})
	blas32.Gemm(blas.Trans, blas.NoTrans, 1,
		gD,
		blas32.General{Rows: N, Cols: C, Stride: C, Data: inp[:N*C]},
		1,
		blas32.General{Rows: V, Cols: C, Stride: C, Data: dwte[:V*C]})
}

// attentionForward: out [B,T,C], att [B,NH,T,T] (softmax weights, zero above
// the diagonal) from qkv [B,T,3C] (query, key, value each C = NH x head size).
// Per batch and head: att = softmax(causal(q k^T / sqrt(hs))), out = att v,
// the two products through blas32 on strided views.
func attentionForward(out, att, qkv []float32, B, T, C, NH int) {
	hs := C / NH
	C3 := 3 * C
	scale := float32(1 / math.Sqrt(float64(hs)))
	parallelFor(B*NH, T*T*hs*2, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			q := headView(qkv, b*T*C3+h*hs, T, hs, C3)
			k := headView(qkv, b*T*C3+C+h*hs, T, hs, C3)
			v := headView(qkv, b*T*C3+2*C+h*hs, T, hs, C3)
			a := att[bh*T*T : (bh+1)*T*T]
			ga := blas32.General{Rows: T, Cols: T, Stride: T, Data: a}
			blas32.Gemm(blas.NoTrans, blas.Trans, scale, q, k, 0, ga)
			causalSoftmax(a, T)
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, ga, v, 0, headView(out, b*T*C+h*hs, T, hs, C))
		}
	})
}

// causalSoftmax replaces each row t of a [T,T] by the softmax of its first
// t+1 entries and zeros after them. A function of its own so that exp32
// inlines (Forward, into which attentionForward inlines, is too big).
//
//go:noinline
func causalSoftmax(a []float32, T int) {
	for t := 0; t < T; t++ {
		row := a[t*T : (t+1)*T]
		r := row[:t+1]
		maxv := r[0]
		for _, x := range r[1:] {
			if x > maxv { // a NaN still spreads: exp32(NaN) is NaN
				maxv = x
			}
		}
		// exp32 of every entry (8 lanes at a time where available), then
		// the sum in index order: the scalar loop's bits either way.
		for i := expShiftVec(r, maxv); i < len(r); i++ {
			r[i] = exp32(r[i] - maxv)
		}
		var sum float32
		for _, e := range r {
			sum += e
		}
		inv := 1 / sum
		for i := scaleVec(r, inv); i < len(r); i++ {
			r[i] *= inv
		}
		clear(row[t+1:])
	}
}

// headView is the [rows, cols] matrix at data[off:] with the given row stride.
func headView(data []float32, off, rows, cols, stride int) blas32.General {
	return blas32.General{Rows: rows, Cols: cols, Stride: stride, Data: data[off : off+(rows-1)*stride+cols]}
}

// attentionBackward: dqkv [B,T,3C] += from dout [B,T,C], qkv [B,T,3C],
// att [B,NH,T,T]; scratch holds at least B*NH*T*T floats.
func attentionBackward(dqkv, dout, qkv, att, scratch []float32, B, T, C, NH int) {
	hs := C / NH
	C3 := 3 * C
	scale := float32(1 / math.Sqrt(float64(hs)))
	parallelFor(B*NH, T*T*hs*4, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			q := headView(qkv, b*T*C3+h*hs, T, hs, C3)
			k := headView(qkv, b*T*C3+C+h*hs, T, hs, C3)
			v := headView(qkv, b*T*C3+2*C+h*hs, T, hs, C3)
			dq := headView(dqkv, b*T*C3+h*hs, T, hs, C3)
			dk := headView(dqkv, b*T*C3+C+h*hs, T, hs, C3)
			dv := headView(dqkv, b*T*C3+2*C+h*hs, T, hs, C3)
			do := headView(dout, b*T*C+h*hs, T, hs, C)
			a := att[bh*T*T : (bh+1)*T*T]
			ga := blas32.General{Rows: T, Cols: T, Stride: T, Data: a}
			da := scratch[bh*T*T : (bh+1)*T*T]
			gda := blas32.General{Rows: T, Cols: T, Stride: T, Data: da}
			// out = att v
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, do, v, 0, gda)
			blas32.Gemm(blas.Trans, blas.NoTrans, 1, ga, do, 1, dv)
			// softmax: dpre[t2] = att[t2] * (datt[t2] - sum_t3 att[t3] datt[t3])
			for t := 0; t < T; t++ {
				ar, dr := a[t*T:(t+1)*T], da[t*T:(t+1)*T]
				var dot float32
				for t2 := 0; t2 <= t; t2++ {
					dot += ar[t2] * dr[t2]
				}
				for t2 := 0; t2 <= t; t2++ {
					dr[t2] = ar[t2] * (dr[t2] - dot)
				}
				clear(dr[t+1:])
			}
			// pre = q k^T * scale
			blas32.Gemm(blas.NoTrans, blas.NoTrans, scale, gda, k, 1, dq)
			blas32.Gemm(blas.Trans, blas.NoTrans, scale, gda, q, 1, dk)
		}
	})
}

const geluScale = 0.7978845608028654 // sqrt(2/pi)

// geluForward: out [N] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) of
// inp [N] (Hugging Face "gelu_new"); th [N] keeps the tanh for the backward pass.
func geluForward(out, th, inp []float32, N int) {
	parallelFor(N, 40, func(lo, hi int) { geluForwardSpan(out[lo:hi], th[lo:hi], inp[lo:hi]) })
}

// geluForwardSpan is geluForward on equal-length slices: AVX2 where the
// build and CPU have it (vec_amd64.go, same bits), scalar for the rest.
func geluForwardSpan(out, th, inp []float32) {
	n := geluForwardVec(out, th, inp)
	geluForwardScalar(out[n:], th[n:], inp[n:])
}

// geluForwardScalar is a separate function so that tanh32 inlines into its
// loop: Forward is too big for the compiler to inline non-trivial calls
// into closures placed inside it.
//
//go:noinline
func geluForwardScalar(out, th, inp []float32) {
	out, th = out[:len(inp)], th[:len(inp)]
	for i, x := range inp {
		u := geluScale * (x + 0.044715*x*x*x)
		t := tanh32(u)
		th[i] = t
		out[i] = 0.5 * x * (1 + t)
	}
}

// geluBackward: dinp [N] += from dout [N], inp [N] and the forward's tanh th [N].
func geluBackward(dinp, inp, th, dout []float32, N int) {
	parallelFor(N, 10, func(lo, hi int) { geluBackwardSpan(dinp[lo:hi], inp[lo:hi], th[lo:hi], dout[lo:hi]) })
}

func geluBackwardSpan(dinp, inp, th, dout []float32) {
	n := geluBackwardVec(dinp, inp, th, dout)
	geluBackwardScalar(dinp[n:], inp[n:], th[n:], dout[n:])
}

//go:noinline
func geluBackwardScalar(dinp, inp, th, dout []float32) {
	dinp, th, dout = dinp[:len(inp)], th[:len(inp)], dout[:len(inp)]
	for i, x := range inp {
		t := th[i]
		sech2 := 1 - t*t
		local := 0.5*(1+t) + 0.5*x*sech2*geluScale*(1+3*0.044715*x*x)
		dinp[i] += local * dout[i]
	}
}

// residualForward: out [N] = a [N] + b [N].
func residualForward(out, a, b []float32, N int) {
	for i := addVec(out[:N], a[:N], b[:N]); i < N; i++ {
		out[i] = a[i] + b[i]
	}
}

// softmaxForward: probs [N,V] = softmax of logits [N,V] by row.
func softmaxForward(probs, logits []float32, N, V int) {
	parallelFor(N, 20*V, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			l := logits[r*V : (r+1)*V]
			p := probs[r*V : (r+1)*V]
			maxv := l[0]
			for _, v := range l[1:] {
				if v > maxv {
					maxv = v
				}
			}
			var sum float64
			for i, v := range l {
				e := exp32(v - maxv)
				p[i] = e
				sum += float64(e)
			}
			inv := float32(1 / sum)
			for i := range p {
				p[i] *= inv
			}
		}
	})
}

// crossEntropyForward: losses [N] = -log probs[r, targets[r]], probs [N,V];
// rows with weight 0 (mask) get loss 0.
func crossEntropyForward(losses, probs []float32, targets []int32, weights []float32, N, V int) {
	for r := 0; r < N; r++ {
		if weights[r] == 0 {
			losses[r] = 0
			continue
		}
		losses[r] = -float32(math.Log(float64(probs[r*V+int(targets[r])])))
	}
}

// crossEntropySoftmaxBackward: dlogits [N,V] += (probs - onehot(target)) * dloss[r]
// from probs [N,V], targets [N], dloss [N] (the loss weight of each row).
func crossEntropySoftmaxBackward(dlogits, probs []float32, targets []int32, dloss []float32, N, V int) {
	parallelFor(N, 2*V, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			w := dloss[r]
			if w == 0 {
				continue
			}
			p := probs[r*V : (r+1)*V]
			d := dlogits[r*V : (r+1)*V]
			for i, v := range p {
				d[i] += v * w
			}
			d[targets[r]] -= w
		}
	})
}
