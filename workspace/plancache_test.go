package workspace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	_ "github.com/llmlab/llmlab/stages/exec"
)

const cachePipeline = `llmlab { version = 1 }
variable "n" {
  type    = number
  default = 1
}
stage "exec" "a" {
  command = ["sh", "-c", "echo ${var.n} > x"]
  inputs  = { d = "data.txt" }
  outputs = { x = "x" }
}
`

// PlanKey covers everything the evaluation depends on besides the files it
// read: a change to any of them is a different key; pipelines or variables
// that may call file() are not cached at all.
func TestPlanKey(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(HomeEnv, "")
	path := filepath.Join(dir, "p.hcl")
	os.WriteFile(path, []byte(cachePipeline), 0o644)
	vf := filepath.Join(dir, "v.hcl")
	os.WriteFile(vf, []byte("n = 2\n"), 0o644)
	ws, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	src := []byte(cachePipeline)
	base := dsl.VarInputs{Env: []string{"HOME=/root", "LLMLAB_VAR_n=3"}, Files: []string{vf}, Vars: []string{"n=4"}}
	key := ws.PlanKey(path, src, base)
	if len(key) != 64 {
		t.Fatalf("key %q", key)
	}
	if again := ws.PlanKey(path, src, base); again != key {
		t.Fatalf("key not stable: %s, %s", key, again)
	}
	for _, tc := range []struct {
		name     string
		filename string
		src      string
		vars     dsl.VarInputs
		change   func()
		same     bool // the key must stay the same
		none     bool // not cacheable
	}{
		{name: "pipeline text", src: cachePipeline + "\n"},
		{name: "pipeline named differently", filename: "./p.hcl"},
		{name: "variable in the environment", vars: dsl.VarInputs{Env: []string{"HOME=/root", "LLMLAB_VAR_n=5"}, Files: base.Files, Vars: base.Vars}},
		{name: "other environment", vars: dsl.VarInputs{Env: []string{"HOME=/tmp", "LLMLAB_VAR_n=3"}, Files: base.Files, Vars: base.Vars}, same: true},
		{name: "-var", vars: dsl.VarInputs{Env: base.Env, Files: base.Files, Vars: []string{"n=6"}}},
		{name: "-var order", vars: dsl.VarInputs{Env: base.Env, Files: base.Files, Vars: []string{"n=4", "n=7"}}},
		{name: "no -var-file", vars: dsl.VarInputs{Env: base.Env, Vars: base.Vars}},
		{name: "-var-file content", change: func() { os.WriteFile(vf, []byte("n = 8\n"), 0o644) }},
		{name: "file() in the pipeline", src: cachePipeline + "locals { x = file(\"data.txt\") }\n", none: true},
		{name: "file() in a variable", vars: dsl.VarInputs{Env: base.Env, Files: base.Files, Vars: []string{"n=file (\"x\")"}}, none: true},
		{name: "file() in a var file", change: func() { os.WriteFile(vf, []byte("n = file(\"x\")\n"), 0o644) }, none: true},
		{name: "unreadable var file", vars: dsl.VarInputs{Env: base.Env, Files: []string{filepath.Join(dir, "missing.hcl")}}, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(vf, []byte("n = 2\n"), 0o644)
			filename, s, vars := path, src, base
			if tc.filename != "" {
				filename = tc.filename
			}
			if tc.src != "" {
				s = []byte(tc.src)
			}
			if tc.vars.Env != nil || tc.vars.Vars != nil || tc.vars.Files != nil {
				vars = tc.vars
			}
			if tc.change != nil {
				tc.change()
			}
			got := ws.PlanKey(filename, s, vars)
			switch {
			case tc.none && got != "":
				t.Errorf("cacheable, key %s", got)
			case !tc.none && got == "":
				t.Errorf("not cacheable")
			case !tc.none && tc.same && got != key:
				t.Errorf("key changed")
			case !tc.none && !tc.same && got == key:
				t.Errorf("key did not change")
			}
		})
	}
}

// CachedPlan serves what SavePlan stored only while the files the plan read
// and the kinds' versions and fingerprints are unchanged, and never a
// damaged entry; plans with sensitive values are never stored.
func TestCachedPlan(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(HomeEnv, "")
	path := filepath.Join(dir, "p.hcl")
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(path, []byte(cachePipeline), 0o644)
	ws, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	evaluate := func(src string, vars []string) *planner.Plan {
		t.Helper()
		cfg, d := dsl.Parse(path, []byte(src))
		if d.HasErrors() {
			t.Fatal(d)
		}
		p, d := planner.Evaluate(cfg, planner.Options{Cache: ws, Vars: dsl.VarInputs{Vars: vars}})
		if d.HasErrors() {
			t.Fatal(d)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		change func(p *planner.Plan) // before saving, or of the world after
		after  func()
		want   bool
	}{
		{name: "unchanged", want: true},
		{name: "input file content", after: func() { os.WriteFile(data, []byte("two\n"), 0o644) }},
		{name: "input file removed", after: func() { os.Remove(data) }},
		{name: "kind version", change: func(p *planner.Plan) { p.Stages[0].KindVersion++ }},
		{name: "kind fingerprint", change: func(p *planner.Plan) { p.Stages[0].Fingerprint = "other-backend" }},
		{name: "unknown kind", change: func(p *planner.Plan) { p.Stages[0].Kind = "no_such_kind" }},
		{name: "damaged entry", after: func() {
			f := ws.planCacheFile()
			b, _ := os.ReadFile(f)
			b[len(b)-3] ^= 1
			os.WriteFile(f, b, 0o644)
		}},
		{name: "truncated entry", after: func() {
			f := ws.planCacheFile()
			b, _ := os.ReadFile(f)
			os.WriteFile(f, b[:len(b)/2], 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(data, []byte("one\n"), 0o644)
			p := evaluate(cachePipeline, nil)
			if tc.change != nil {
				tc.change(p)
			}
			ws.SavePlan("k1", p)
			if tc.after != nil {
				tc.after()
			}
			got := ws.CachedPlan("k1")
			if (got != nil) != tc.want {
				t.Fatalf("served = %v, want %v", got != nil, tc.want)
			}
			if ws.CachedPlan("k2") != nil {
				t.Errorf("served under another key")
			}
		})
	}

	// Sensitive values: nothing is stored.
	os.WriteFile(data, []byte("one\n"), 0o644)
	os.Remove(ws.planCacheFile())
	sens := cachePipeline + `variable "tok" {
  type      = string
  sensitive = true
}
stage "exec" "s" {
  command = ["true"]
  env     = { T = var.tok }
  outputs = { x = "x" }
}
`
	ws.SavePlan("k3", evaluate(sens, []string{"tok=hunter2"}))
	if _, err := os.Stat(ws.planCacheFile()); err == nil {
		t.Errorf("a plan with a sensitive value was stored")
	}
}
