//go:build openblas && cgo

package blasimpl

import (
	"strings"
	"testing"
)

// TestOpenBLASSingleThreaded checks that OpenBLAS never threads inside a
// call: our tile split alone decides the parallelism, so a tile's
// summation order cannot depend on OPENBLAS_NUM_THREADS or the core count.
func TestOpenBLASSingleThreaded(t *testing.T) {
	if n := openblasThreads(); n != 1 {
		t.Fatalf("openblas_get_num_threads() = %d, want 1", n)
	}
}

// TestOpenBLASCore logs the kernel set OpenBLAS runs and fails if it is
// still its SSE3 fallback on a CPU with AVX2.
func TestOpenBLASCore(t *testing.T) {
	t.Logf("%s (core type fixed by init: %v)", openblasName, coreFixed)
	if strings.Contains(openblasName, "-prescott-") && cpuHasAVX2() {
		t.Errorf("OpenBLAS runs its Prescott kernels on a CPU with AVX2: %s", openblasName)
	}
}
