package planner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/llmlab/llmlab/dsl"
	_ "github.com/llmlab/llmlab/stages/all"
)

// write puts files into a temp directory and returns the pipeline's path.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "pipeline.hcl")
}

func build(t *testing.T, path string, opts Options) (*Plan, hcl.Diagnostics) {
	t.Helper()
	cfg, diags := dsl.ParseFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	return Build(cfg, opts)
}

const basic = `
llmlab { version = 1 }

variable "lr" {
  type    = number
  default = 0.001
}

variable "token" {
  type      = string
  default   = "s3cret"
  sensitive = true
}

dataset "corpus" { path = "data.txt" }

stage "exec" "prep" {
  command = ["sh", "-c", "wc -c inputs/text > out.txt"]
  inputs  = { text = dataset.corpus }
  outputs = { counts = "out.txt" }
}

stage "exec" "train" {
  for_each = { a = 1, b = 2 }
  command  = ["echo", var.lr, each.value]
  inputs   = { counts = stage.prep.counts, script = "train.sh" }
  outputs  = { model = "model" }
  env      = { TOKEN = var.token }
}

stage "exec" "report" {
  command = ["cat"]
  inputs  = { a = stage.train["a"].model, b = stage.train["b"].model }
  outputs = { out = "o" }
}
`

func TestPlanBasic(t *testing.T) {
	path := write(t, map[string]string{"pipeline.hcl": basic, "data.txt": "hello", "train.sh": "echo"})
	cache := NewMemCache()
	plan, diags := build(t, path, Options{Cache: cache})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	var addrs []string
	for _, s := range plan.Stages {
		addrs = append(addrs, s.Address)
		if s.Action != ActionRun || s.Reasons[0].Kind != ReasonNew {
			t.Errorf("%s: action %s reasons %v, want run/new", s.Address, s.Action, s.Reasons)
		}
	}
	want := `stage.prep stage.train["a"] stage.train["b"] stage.report`
	if got := strings.Join(addrs, " "); got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
	if plan.Summary.Run != 4 || plan.Summary.Cached != 0 {
		t.Errorf("summary = %+v", plan.Summary)
	}
	rep := plan.Stage("stage.report")
	if strings.Join(rep.DependsOn, ",") != `stage.train["a"],stage.train["b"]` {
		t.Errorf("report depends on %v", rep.DependsOn)
	}
	tr := plan.Stage(`stage.train["a"]`)
	if tr.Settings["env"].(map[string]any)["TOKEN"] != Redacted {
		t.Errorf("sensitive value shown: %v", tr.Settings["env"])
	}
	if tr.ClearSettings()["env"].(map[string]any)["TOKEN"] != "s3cret" {
		t.Errorf("clear settings lost the secret: %v", tr.ClearSettings()["env"])
	}
	if strings.Contains(string(canonicalJSON(tr.KeySettings)), "s3cret") {
		t.Error("secret in key settings")
	}

	// A second plan after "apply" is fully cached.
	cache.Record(plan, time.Now())
	plan2, diags := build(t, path, Options{Cache: cache})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if plan2.Summary.Run != 0 || plan2.Summary.Cached != 4 {
		t.Errorf("second plan summary = %+v, want all cached", plan2.Summary)
	}

	// Changing a variable reruns the stages that use it and their dependants only.
	plan3, diags := build(t, path, Options{Cache: cache, Vars: dsl.VarInputs{Vars: []string{"lr=0.002"}}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	got := map[string]string{}
	for _, s := range plan3.Stages {
		got[s.Address] = s.Action
	}
	if got["stage.prep"] != ActionCached || got[`stage.train["a"]`] != ActionRun || got["stage.report"] != ActionRun {
		t.Errorf("actions after change: %v", got)
	}
	r := plan3.Stage(`stage.train["a"]`).Reasons
	if len(r) != 1 || r[0].Kind != ReasonSetting || r[0].Path != "command[1]" || r[0].Old != `"0.001"` || r[0].New != `"0.002"` {
		t.Errorf("reasons = %+v", r)
	}
	r = plan3.Stage("stage.report").Reasons
	if len(r) != 2 || r[0].Kind != ReasonInput || r[0].Path != "inputs.a" {
		t.Errorf("report reasons = %+v", r)
	}

	// A changed sensitive value reruns without revealing it.
	plan4, _ := build(t, path, Options{Cache: cache, Vars: dsl.VarInputs{Env: []string{"LLMLAB_VAR_token=other"}}})
	r = plan4.Stage(`stage.train["b"]`).Reasons
	if len(r) != 1 || r[0].Path != "env.TOKEN" || r[0].Old != Redacted || r[0].New != Redacted {
		t.Errorf("sensitive reasons = %+v", r)
	}

	// Changing an input file reruns its readers.
	os.WriteFile(filepath.Join(filepath.Dir(path), "data.txt"), []byte("changed"), 0o644)
	plan5, _ := build(t, path, Options{Cache: cache})
	if s := plan5.Stage("stage.prep"); s.Action != ActionRun || s.Reasons[0].Kind != ReasonInput || s.Reasons[0].Path != "inputs.text" {
		t.Errorf("prep after input change: %s %+v", s.Action, s.Reasons)
	}
}

func TestKeyIgnoresResourcesAndPaths(t *testing.T) {
	a := `
llmlab { version = 1 }
stage "exec" "x" {
  command = ["true"]
  outputs = { o = "o" }
  RES
}
`
	keyOf := func(src string) string {
		path := write(t, map[string]string{"pipeline.hcl": src})
		plan, diags := build(t, path, Options{})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return plan.Stages[0].Key
	}
	k1 := keyOf(strings.Replace(a, "RES", "", 1))
	k2 := keyOf(strings.Replace(a, "RES", "resources {\n cpus = 4\n time = \"1h\"\n}\nretries = 2\ntimeout = \"5m\"", 1))
	if k1 != k2 {
		t.Errorf("resources changed the key: %s vs %s", k1, k2)
	}
	k3 := keyOf(strings.Replace(strings.Replace(a, "RES", "", 1), `["true"]`, `["false"]`, 1))
	if k1 == k3 {
		t.Error("command change did not change the key")
	}
}

func TestTargetsAndReplace(t *testing.T) {
	path := write(t, map[string]string{"pipeline.hcl": basic, "data.txt": "hello", "train.sh": "echo"})
	plan, diags := build(t, path, Options{Targets: []string{`stage.train["a"]`}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(plan.Stages) != 2 || plan.Stages[0].Address != "stage.prep" {
		t.Errorf("targeted plan has %d stages", len(plan.Stages))
	}
	cache := NewMemCache()
	full, _ := build(t, path, Options{Cache: cache})
	cache.Record(full, time.Now())
	plan, _ = build(t, path, Options{Cache: cache, Replace: []string{"stage.prep"}})
	if s := plan.Stage("stage.prep"); s.Action != ActionRun || s.Reasons[0].Kind != ReasonReplace {
		t.Errorf("replace: %s %+v", s.Action, s.Reasons)
	}
	if plan.Summary.Run != 1 {
		t.Errorf("replace ran %d stages, want 1", plan.Summary.Run)
	}
	_, diags = build(t, path, Options{Targets: []string{"stage.trian"}})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `Did you mean "stage.train"?`) {
		t.Errorf("unknown target diags: %v", diags)
	}
}
