package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// ProfileEnv names a file to write a CPU profile of the whole command to
// (for `go tool pprof`); unset, nothing is profiled. It is for finding
// where llmlab's own time goes (see docs/bench/workflow.md).
const ProfileEnv = "LLMLAB_CPUPROFILE"

// startProfile starts CPU profiling when ProfileEnv is set and returns the
// function that stops it.
func startProfile() func() {
	path := os.Getenv(ProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "llmlab: %s: %s\n", ProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "llmlab: %s: %s\n", ProfileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
