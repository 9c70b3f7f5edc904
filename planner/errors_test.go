package planner

import (
	"strings"
	"testing"
)

// TestBuildErrors: every class of planning error the user can hit, with
// the message and the line it points at.
func TestBuildErrors(t *testing.T) {
	const head = "llmlab { version = 1 }\n"
	const a = `stage "exec" "a" {
  command = ["true"]
  outputs = { o = "o" }
}
`
	tests := []struct {
		name, src string
		line      int
		want      []string
	}{
		{"unknown stage", a + `stage "exec" "b" {
  command = ["true"]
  inputs  = { i = stage.aa.o }
  outputs = { o = "o" }
}
`, 8, []string{`There is no stage named "aa". Did you mean "a"?`}},
		{"unknown output", a + `stage "exec" "b" {
  command = ["true"]
  inputs  = { i = stage.a.out }
  outputs = { o = "o" }
}
`, 8, []string{`Stage "a" has no output named "out". Did you mean "o"?`}},
		{"duplicate stage", a + a, 6, []string{`Duplicate stage "a"`, `already declared at`}},
		{"cycle", `stage "exec" "a" {
  command = ["true"]
  inputs  = { i = stage.c.o }
  outputs = { o = "o" }
}
stage "exec" "b" {
  command = ["true"]
  inputs  = { i = stage.a.o }
  outputs = { o = "o" }
}
stage "exec" "c" {
  command = ["true"]
  inputs  = { i = stage.b.o }
  outputs = { o = "o" }
}
`, 0, []string{"stage.a -> stage.b -> stage.c -> stage.a"}},
		{"type error", `stage "exec" "a" {
  command = "true"
  outputs = { o = "o" }
}
`, 3, []string{`command`, `list of string required`}},
		{"for_each over a list", `stage "exec" "a" {
  for_each = ["x", "y"]
  command  = ["true"]
  outputs  = { o = "o" }
}
`, 3, []string{`for_each must be a map, an object or a set of strings`, `toset`}},
		{"each outside for_each", `stage "exec" "a" {
  command = ["echo", each.key]
  outputs = { o = "o" }
}
`, 3, []string{`each`}},
		{"setting from metrics", a + `stage "exec" "b" {
  command = ["echo", stage.a.metrics.loss]
  outputs = { o = "o" }
}
`, 7, []string{`known only after apply`}},
		{"for_each from metrics", a + `stage "exec" "b" {
  for_each = toset([stage.a.metrics.name])
  command  = ["true"]
  outputs  = { o = "o" }
}
`, 7, []string{`for_each must be known when planning`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, map[string]string{"pipeline.hcl": head + tt.src})
			_, diags := build(t, path, Options{Cache: NewMemCache()})
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var all []string
			for _, d := range diags {
				all = append(all, d.Summary+": "+d.Detail)
			}
			msg := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.line > 0 {
				at := false
				for _, d := range diags {
					if d.Subject != nil && d.Subject.Start.Line == tt.line && strings.HasSuffix(d.Subject.Filename, "pipeline.hcl") {
						at = true
					}
				}
				if !at {
					t.Errorf("no diagnostic at pipeline.hcl:%d: %s", tt.line, msg)
				}
			}
		})
	}
}

// TestForEachOverStages: for_each = stage.x iterates over x's instances
// (their metrics are unknown at plan time, their keys are known), and each
// instance's artifact is an input of the matching instance.
func TestForEachOverStages(t *testing.T) {
	path := write(t, map[string]string{"pipeline.hcl": `llmlab { version = 1 }
stage "exec" "a" {
  for_each = toset(["x", "y"])
  command  = ["echo", each.key]
  outputs  = { o = "o" }
}
stage "exec" "b" {
  for_each = stage.a
  command  = ["cat", each.key]
  inputs   = { i = each.value.o }
  outputs  = { o = "o" }
}
`})
	plan, diags := build(t, path, Options{Cache: NewMemCache()})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	b := plan.Stage(`stage.b["y"]`)
	if b == nil {
		t.Fatalf("no stage.b[\"y\"] in %v", plan.Stages)
	}
	if strings.Join(b.DependsOn, ",") != `stage.a["y"]` {
		t.Errorf(`stage.b["y"] depends on %v, want stage.a["y"]`, b.DependsOn)
	}
}
