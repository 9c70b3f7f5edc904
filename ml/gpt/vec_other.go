//go:build !(goexperiment.simd && amd64)

package gpt

// Without GOEXPERIMENT=simd on amd64 the elementwise loops are scalar only
// (vec_amd64.go has the vector versions).

func geluForwardVec(out, th, inp []float32) int                        { return 0 }
func geluBackwardVec(dinp, inp, th, dout []float32) int                { return 0 }
func addVec(out, a, b []float32) int                                   { return 0 }
func accumulateVec(dst, src []float32) int                             { return 0 }
func lnParamGradVec(dweight, dbias, x, d []float32, m, rs float32) int { return 0 }
func expShiftVec(r []float32, shift float32) int                       { return 0 }
func scaleVec(r []float32, c float32) int                              { return 0 }
