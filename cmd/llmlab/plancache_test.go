package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/workspace"
)

// The second plan of an unchanged pipeline comes from the plan cache (no
// parse: cfg is nil) and equals a fresh plan; a change to the pipeline is
// a miss.
func TestPlanPipelineUsesTheCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(workspace.HomeEnv, "")
	path := filepath.Join(dir, "p.hcl")
	src := []byte("llmlab { version = 1 }\n" +
		"variable \"n\" {\n  type = number\n  default = 3\n}\n" +
		"stage \"exec\" \"a\" {\n  command = [\"sh\", \"-c\", \"echo ${var.n} > x\"]\n  outputs = { x = \"x\" }\n  resources { cpus = 2 }\n  retries = 1\n}\n" +
		"stage \"exec\" \"b\" {\n  for_each = toset([\"p\", \"q\"])\n  command = [\"sh\", \"-c\", \"cat inputs/x > y; echo ${each.key} 1.5e3 >> y\"]\n  inputs = { x = stage.a.x }\n  env = { K = each.key }\n  outputs = { y = \"y\" }\n  timeout = \"1m\"\n}\n")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	opts := planner.Options{Cache: ws}
	cfg, first, d := planPipeline(path, nil, ws, opts)
	if d.HasErrors() || cfg == nil {
		t.Fatalf("first plan: cfg %v, %v", cfg, d)
	}
	cfg, second, d := planPipeline(path, nil, ws, opts)
	if d.HasErrors() || cfg != nil {
		t.Fatalf("second plan did not come from the cache: cfg %v, %v", cfg, d)
	}
	parsed, _ := dsl.Parse(path, src)
	fresh, d := planner.Build(parsed, opts)
	if d.HasErrors() {
		t.Fatal(d)
	}
	for _, p := range []*planner.Plan{first, second, fresh} {
		p.CreatedAt = fresh.CreatedAt
	}
	if !reflect.DeepEqual(second, fresh) || !reflect.DeepEqual(first, fresh) {
		t.Errorf("cached plan differs from a fresh one")
		for i := range fresh.Stages {
			if !reflect.DeepEqual(second.Stages[i], fresh.Stages[i]) {
				t.Errorf("stage %d:\ncached %#v\nfresh  %#v", i, *second.Stages[i], *fresh.Stages[i])
			}
		}
		if !reflect.DeepEqual(second, fresh) {
			a, b := *second, *fresh
			a.Stages, b.Stages = nil, nil
			t.Errorf("second %#v\nfresh %#v", a, b)
		}
		if !reflect.DeepEqual(first, fresh) {
			a, b := *first, *fresh
			a.Stages, b.Stages = nil, nil
			t.Errorf("first %#v\nfresh %#v", a, b)
		}
	}
	if err := os.WriteFile(path, append(src, "\n# changed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, _, _ := planPipeline(path, nil, ws, opts); cfg == nil {
		t.Errorf("a changed pipeline was planned from the cache")
	}
}
