package main

import (
	"flag"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/script from actual output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"llmlab": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI golden scripts in testdata/script. Each script
// runs in a fresh directory; `llmlab` is this binary's CLI.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			env.Setenv("LLMLAB_HOME", "")
			return nil
		},
	})
}
