package dsl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the diagnostics, in order
	}{
		{"missing llmlab block", `stage "exec" "a" {}`, []string{"Missing llmlab block", "llmlab { version = 1 }"}},
		{"wrong version", "llmlab { version = 2 }", []string{"Unsupported language version", "version 1", "version 2"}},
		{"duplicate stage", "llmlab { version = 1 }\nstage \"exec\" \"a\" {}\nstage \"exec\" \"a\" {}", []string{`Duplicate stage "a"`, "already declared at p.hcl:2"}},
		{"duplicate variable", "llmlab { version = 1 }\nvariable \"x\" {}\nvariable \"x\" {}", []string{`Duplicate variable "x"`}},
		{"bad name", "llmlab { version = 1 }\nstage \"exec\" \"9a\" {}", []string{"Invalid stage name"}},
		{"unknown top-level block", "llmlab { version = 1 }\nstag \"exec\" \"a\" {}", []string{`Unsupported block type`, `Did you mean "stage"?`}},
		{"dataset without source", "llmlab { version = 1 }\ndataset \"d\" {}", []string{"Dataset has no source"}},
		{"dataset with two sources", "llmlab { version = 1 }\ndataset \"d\" {\n  path = \"x\"\n  generate \"sort\" {}\n}", []string{"Dataset has two sources"}},
		{"bad default", "llmlab { version = 1 }\nvariable \"x\" {\n  type = number\n  default = \"abc\"\n}", []string{"Invalid default value for variable", "number"}},
		{"bad depends_on", "llmlab { version = 1 }\nstage \"exec\" \"a\" {\n  depends_on = [var.x]\n}", []string{"Invalid depends_on entry"}},
		{"syntax", "llmlab { version = 1 }\nstage \"exec\" \"a\" {\n  model { layers = 4, heads = 4 }\n}", []string{"p.hcl:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("p.hcl", []byte(tt.src))
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			msg := diags.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("diagnostics %q do not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseKeepsRanges(t *testing.T) {
	cfg, diags := Parse("p.hcl", []byte("llmlab { version = 1 }\n\nstage \"exec\" \"a\" {\n  for_each = { x = 1 }\n  depends_on = [stage.b]\n  retries = 2\n}\nstage \"exec\" \"b\" {}\noutput \"o\" {\n  value = 1\n  sensitive = true\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := cfg.Stages[0]
	if s.Kind != "exec" || s.Name != "a" || s.DeclRange.Start.Line != 3 || s.NameRange.Start.Column != 14 {
		t.Errorf("stage decoded as %+v", s)
	}
	if s.ForEach == nil || len(s.DependsOn) != 1 || s.Retries == nil {
		t.Error("common settings not decoded")
	}
	if len(cfg.Outputs) != 1 || !cfg.Outputs[0].Sensitive {
		t.Error("output not decoded")
	}
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	varFile := filepath.Join(dir, "a.vars.hcl")
	os.WriteFile(varFile, []byte("lr = 0.3\nname = \"file\"\n"), 0o644)
	src := `llmlab { version = 1 }
variable "lr" {
  type    = number
  default = 0.1
}
variable "name" {
  default = "default"
}
variable "secret" {
  sensitive = true
  default   = "x"
}
variable "required" {
  type = number
}
variable "tags" {
  type    = list(string)
  default = []
}
`
	tests := []struct {
		name string
		in   VarInputs
		lr   float64
		str  string
		err  string
	}{
		{"defaults", VarInputs{Vars: []string{"required=1"}}, 0.1, "default", ""},
		{"env over default", VarInputs{Env: []string{"LLMLAB_VAR_lr=0.2", "LLMLAB_VAR_required=1"}}, 0.2, "default", ""},
		{"file over env", VarInputs{Env: []string{"LLMLAB_VAR_lr=0.2", "LLMLAB_VAR_required=1"}, Files: []string{varFile}}, 0.3, "file", ""},
		{"-var over file", VarInputs{Files: []string{varFile}, Vars: []string{"lr=0.4", "required=1"}}, 0.4, "file", ""},
		{"later -var wins", VarInputs{Vars: []string{"lr=0.4", "lr=0.5", "required=1"}}, 0.5, "default", ""},
		{"missing required", VarInputs{}, 0, "", `Variable "required" has no default`},
		{"undeclared", VarInputs{Vars: []string{"lrr=1", "required=1"}}, 0, "", `Did you mean "lr"?`},
		{"wrong type", VarInputs{Vars: []string{"lr=abc", "required=1"}}, 0, "", `must be a constant number for variable "lr"`},
		{"malformed", VarInputs{Vars: []string{"lr", "required=1"}}, 0, "", "not of the form name=value"},
		{"list from cli", VarInputs{Vars: []string{`tags=["a","b"]`, "required=1"}}, 0.1, "default", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse(filepath.Join(dir, "p.hcl"), []byte(src))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			vals, diags := ResolveVariables(cfg, tt.in)
			if tt.err != "" {
				if !strings.Contains(diags.Error(), tt.err) {
					t.Fatalf("diags %q do not contain %q", diags.Error(), tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			lr, _ := vals["lr"].AsBigFloat().Float64()
			if lr != tt.lr || vals["name"].AsString() != tt.str {
				t.Errorf("lr=%v name=%v", lr, vals["name"].GoString())
			}
			if !vals["secret"].HasMark(SensitiveMark) {
				t.Error("sensitive variable not marked")
			}
		})
	}
}

func TestValidationBlock(t *testing.T) {
	src := `llmlab { version = 1 }
variable "lr" {
  type    = number
  default = 0.1
  validation {
    condition     = var.lr > 0 && var.lr < 1
    error_message = "The learning rate must be between 0 and 1."
  }
}
`
	cfg, _ := Parse("p.hcl", []byte(src))
	if _, diags := ResolveVariables(cfg, VarInputs{}); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, diags := ResolveVariables(cfg, VarInputs{Vars: []string{"lr=3"}})
	if !strings.Contains(diags.Error(), "The learning rate must be between 0 and 1.") {
		t.Errorf("got %v", diags)
	}
}

func TestLocalsAndFunctions(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prompt.txt"), []byte("hello"), 0o644)
	src := `llmlab { version = 1 }
variable "n" { default = 3 }
locals {
  doubled = local.base * 2
  base    = var.n
  text    = upper(file("prompt.txt"))
  list    = concat(range(2), [max(5, 7)])
  js      = jsonencode(merge({ a = 1 }, { b = lower("X") }))
  f       = format("%s-%03d", "run", local.doubled)
}
`
	cfg, diags := Parse(filepath.Join(dir, "p.hcl"), []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	vars, _ := ResolveVariables(cfg, VarInputs{})
	s, diags := NewScope(cfg, vars)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := map[string]cty.Value{
		"text": cty.StringVal("HELLO"),
		"js":   cty.StringVal(`{"a":1,"b":"x"}`),
		"f":    cty.StringVal("run-006"),
	}
	for k, v := range want {
		if !s.Locals[k].RawEquals(v) {
			t.Errorf("local.%s = %#v, want %#v", k, s.Locals[k], v)
		}
	}
	if s.Locals["list"].LengthInt() != 3 {
		t.Errorf("local.list = %#v", s.Locals["list"])
	}
}

func TestLocalsCycle(t *testing.T) {
	cfg, _ := Parse("p.hcl", []byte("llmlab { version = 1 }\nlocals {\n  a = local.b\n  b = local.a\n}\n"))
	_, diags := NewScope(cfg, nil)
	if !strings.Contains(diags.Error(), "Cycle in locals") || !strings.Contains(diags.Error(), "local.a -> local.b -> local.a") {
		t.Errorf("got %v", diags)
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		src  string
		want Reference
	}{
		{`stage.train["r8"].model`, Reference{Target: RefStage, Name: "train", Key: "r8", HasKey: true, Attr: "model"}},
		{`stage.base.model`, Reference{Target: RefStage, Name: "base", Attr: "model"}},
		{`var.lr`, Reference{Target: RefVar, Name: "lr"}},
		{`dataset.corpus`, Reference{Target: RefDataset, Name: "corpus"}},
		{`each.value`, Reference{Target: RefEach, Name: "value"}},
	}
	for _, tt := range tests {
		cfg, diags := Parse("p.hcl", []byte("llmlab { version = 1 }\nlocals { x = "+tt.src+" }\n"))
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		ref, _ := ParseReference(cfg.Locals[0].Expr.Variables()[0])
		ref.Range = tt.want.Range
		if *ref != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.src, *ref, tt.want)
		}
	}
}
