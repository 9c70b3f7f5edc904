//go:build unix

package sft

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of this process so far; benchmarks
// report it per step because wall time on a shared machine mostly measures
// the other tenants.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
