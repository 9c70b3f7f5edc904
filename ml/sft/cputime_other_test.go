//go:build !unix

package sft

import "time"

// processCPU is unknown here; the benchmark then reports 0.
func processCPU() time.Duration { return 0 }
