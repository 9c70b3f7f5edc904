package gpt

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vecTestInputs are values for the elementwise loops: random normals at
// several scales, the tanh clamp's edges, zeros, infinities and NaN, in a
// length that is not a multiple of 8 so that the scalar tail runs too.
func vecTestInputs(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), 7.9053111, -7.9053111, 7.9053112, -7.9053112,
		20, -20, 1e-30, -1e-30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 87, -87, 1e20}
	x := make([]float32, n)
	for i := range x {
		switch {
		case i < len(special):
			x[i] = special[i]
		default:
			x[i] = float32(r.NormFloat64() * []float64{0.01, 1, 3, 10}[i%4])
		}
	}
	r.Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
	return x
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#x), scalar loop gives %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestVectorLoopsMatchScalar checks that the elementwise loops (AVX2 under
// GOEXPERIMENT=simd, else scalar) give the scalar loops' exact bits, so a
// model trains to the same bytes with and without the experiment.
func TestVectorLoopsMatchScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 4099
	x, dout := vecTestInputs(r, n), vecTestInputs(r, n)

	out, th := make([]float32, n), make([]float32, n)
	wantOut, wantTh := make([]float32, n), make([]float32, n)
	geluForwardSpan(out, th, x)
	geluForwardScalar(wantOut, wantTh, x)
	sameBits(t, "gelu out", out, wantOut)
	sameBits(t, "gelu tanh", th, wantTh)

	d, want := vecTestInputs(r, n), make([]float32, n)
	copy(want, d)
	geluBackwardSpan(d, x, th, dout)
	geluBackwardScalar(want, x, th, dout)
	sameBits(t, "gelu dinp", d, want)

	sum := make([]float32, n)
	residualForward(sum, x, dout, n)
	for i := range want {
		want[i] = x[i] + dout[i]
	}
	sameBits(t, "residual", sum, want)

	acc := vecTestInputs(r, n)
	copy(want, acc)
	for i := accumulateVec(acc, dout); i < n; i++ {
		acc[i] += dout[i]
	}
	for i := range want {
		want[i] += dout[i]
	}
	sameBits(t, "accumulate", acc, want)

	dw, db := vecTestInputs(r, n), vecTestInputs(r, n)
	wantW, wantB := append([]float32(nil), dw...), append([]float32(nil), db...)
	m, rs := float32(0.3), float32(1.7)
	for i := lnParamGradVec(dw, db, x, dout, m, rs); i < n; i++ {
		db[i] += dout[i]
		dw[i] += (x[i] - m) * rs * dout[i]
	}
	for i := range wantW {
		wantB[i] += dout[i]
		wantW[i] += (x[i] - m) * rs * dout[i]
	}
	sameBits(t, "layernorm dbias", db, wantB)
	sameBits(t, "layernorm dweight", dw, wantW)
}

// TestVectorExpMatchesScalar checks exp32x8 (through expShiftVec) and
// scaleVec against exp32 and a multiply, bit for bit.
func TestVectorExpMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n = 100_003
	x := make([]float32, n)
	for i := range x {
		x[i] = -float32(r.ExpFloat64() * []float64{0.1, 3, 30, 100}[i%4])
	}
	x[0], x[1], x[2], x[3], x[4] = 0, -87.33654, -87.336535, -87.33655, float32(math.Copysign(0, -1))
	x[5], x[6] = float32(math.Inf(-1)), float32(math.NaN())
	const shift = 0.25
	got := append([]float32(nil), x...)
	for i := expShiftVec(got, shift); i < n; i++ {
		got[i] = exp32(got[i] - shift)
	}
	want := make([]float32, n)
	for i := range want {
		want[i] = exp32(x[i] - shift)
	}
	sameBits(t, "exp", got, want)
	for i := scaleVec(got, 0.37); i < n; i++ {
		got[i] *= 0.37
	}
	for i := range want {
		want[i] *= 0.37
	}
	sameBits(t, "scale", got, want)
}
