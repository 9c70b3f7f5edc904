//go:build unix

// Package cputime gives the process's CPU time, which the benchmarks report
// per step: wall time on a shared machine mostly measures the other tenants.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user+system CPU time of this process so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
