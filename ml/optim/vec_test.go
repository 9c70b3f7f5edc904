package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// scalarUpdate is Update's loop without the vector path: the reference the
// AVX2 loop (GOEXPERIMENT=simd) must match bit for bit.
func scalarUpdate(a *AdamW, params, grads []float32, lr float64) {
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
		for i := s.Offset; i < s.Offset+s.Len; i++ {
			gi := grads[i]
			mi := b1*a.M[i] + (1-b1)*gi
			vi := b2*a.V[i] + (1-b2)*gi*gi
			a.M[i], a.V[i] = mi, vi
			params[i] -= decay * params[i]
			params[i] -= lr32 * (mi / bc1) / (float32(math.Sqrt(float64(vi/bc2))) + eps)
		}
	}
}

func TestUpdateMatchesScalarLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	segs := []Segment{{0, 1003, true}, {1003, 5, false}, {1008, 64, true}, {1072, 13, false}}
	n := 1085
	p1, g := make([]float32, n), make([]float32, n)
	for i := range p1 {
		p1[i] = float32(r.NormFloat64())
	}
	p2 := append([]float32(nil), p1...)
	a1, _ := NewAdamW(n, segs, DefaultAdamW)
	a2, _ := NewAdamW(n, segs, DefaultAdamW)
	for step := 0; step < 5; step++ {
		for i := range g {
			g[i] = float32(r.NormFloat64() * []float64{1e-6, 1e-2, 1, 30}[i%4])
		}
		g[step] = 0
		a1.Update(p1, g, 1e-3)
		scalarUpdate(a2, p2, g, 1e-3)
		for i := range p1 {
			if math.Float32bits(p1[i]) != math.Float32bits(p2[i]) || a1.M[i] != a2.M[i] || a1.V[i] != a2.V[i] {
				t.Fatalf("step %d, element %d: param %v, m %v, v %v; scalar loop: %v, %v, %v", step, i, p1[i], a1.M[i], a1.V[i], p2[i], a2.M[i], a2.V[i])
			}
		}
	}
}
