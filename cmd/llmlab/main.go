// Command llmlab runs LLM experiments written down as HCL pipelines.
// This package parses flags and renders results; the work happens in dsl,
// planner, executor, store and ledger.
package main

import (
	"io"
	"os"
	"runtime/debug"
)

func main() {
	// llmlab is a short-lived batch program whose planning allocates many
	// small HCL/cty values: trading memory for fewer GC cycles makes large
	// plans markedly faster. GOGC, when set, still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	stop := startProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(terraformFlags(args))
	err := root.Execute()
	if err == nil {
		return 0
	}
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	printError(stderr, err)
	return 1
}
