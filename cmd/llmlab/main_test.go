package main

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
			"grepall":  cmdGrepAll,
		},
	})
}

// waitfile FILE [SECONDS]: wait until FILE exists (default 20 s).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile FILE [SECONDS]")
	}
	limit := 20.0
	if len(args) == 2 {
		var err error
		if limit, err = strconv.ParseFloat(args[1], 64); err != nil {
			ts.Fatalf("waitfile: %v", err)
		}
	}
	deadline := time.Now().Add(time.Duration(limit * float64(time.Second)))
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %s did not appear within %gs", args[0], limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grepall TEXT DIR: TEXT occurs (as bytes) in some file under DIR; with !,
// in none. Every file is read, binary ones (SQLite, objects) included.
func cmdGrepAll(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: grepall TEXT DIR")
	}
	needle := []byte(args[0])
	var hits []string
	files := 0
	err := filepath.WalkDir(ts.MkAbs(args[1]), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("grepall: %v", err)
	}
	if files == 0 {
		ts.Fatalf("grepall: no files under %s", args[1])
	}
	switch {
	case neg && len(hits) > 0:
		ts.Fatalf("grepall: %q found in %v", args[0], hits)
	case !neg && len(hits) == 0:
		ts.Fatalf("grepall: %q not found in any of %d files under %s", args[0], files, args[1])
	}
	ts.Logf("grepall: %d files searched", files)
}
