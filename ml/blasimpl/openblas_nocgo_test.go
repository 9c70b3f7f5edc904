//go:build openblas && !cgo

package blasimpl

import "testing"

// TestOpenBLASNeedsCgo fails a build that asked for OpenBLAS but silently
// lost it because cgo is off (CGO_ENABLED=0 or no C compiler).
func TestOpenBLASNeedsCgo(t *testing.T) {
	t.Fatal("built with -tags openblas but without cgo: the openblas backend is missing; set CGO_ENABLED=1 and install gcc and libopenblas-dev")
}
