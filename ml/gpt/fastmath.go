package gpt

import "math"

// Float32 tanh and exp for the elementwise layers. math.Tanh and math.Exp
// work in float64 and were about 15% of a training step. Both functions
// below use only float32 adds, multiplies and one divide, so their results
// are the same on every run and thread count. TestFastMath checks them
// against math.Tanh and math.Exp.

// tanh32 is tanh(x) to within 4e-7 absolute and relative: Eigen's rational
// approximation (generic_fast_tanh_float, a 13/6-degree minimax fit on
// [-7.9, 7.9], where float32 tanh reaches ±1 within rounding). It is
// small enough to inline (about 3x faster in gelu's loop than a call);
// NaN fails both comparisons and stays NaN.
func tanh32(x float32) float32 {
	const clamp = 7.90531110763549805
	// Plain comparisons: the min and max builtins handle NaN and signed
	// zeros with branches and made this function twice as slow.
	if x > clamp {
		x = clamp
	}
	if x < -clamp {
		x = -clamp
	}
	x2 := x * x
	p := ((((((-2.76076847742355e-16*x2+2.00018790482477e-13)*x2+-8.60467152213735e-11)*x2+
		5.12229709037114e-08)*x2+1.48572235717979e-05)*x2+6.37261928875436e-04)*x2 + 4.89352455891786e-03)
	q := ((1.19825839466702e-06*x2+1.18534705686654e-04)*x2+2.26843463243900e-03)*x2 + 4.89352518554385e-03
	return p * x / q
}

// exp32 is e^x to within 2e-7 relative (Cephes expf: x = n ln2 + r with
// |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n). It is 0 below
// -87.3 (where e^x leaves the normal float32 range); x must be at most 88
// (the softmaxes call it with x <= 0). It is small enough to inline.
func exp32(x float32) float32 {
	if x < -87.33654 {
		return 0
	}
	// n = round(x / ln2) by the 1.5*2^23 trick: exact for |n| < 2^22. A NaN
	// x makes r and y NaN, so the result is NaN whatever 2^n becomes.
	const magic = 12582912
	n := float32(x*1.44269504088896341+magic) - magic
	r := x - n*0.693359375 - n*-2.12194440e-4
	y := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	return (y*(r*r) + r + 1) * math.Float32frombits(uint32(int32(n)+127)<<23)
}
