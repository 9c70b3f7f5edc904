package dsl

import "testing"

// FuzzParse: no input may make the parser or variable resolution panic.
func FuzzParse(f *testing.F) {
	f.Add("llmlab { version = 1 }\nvariable \"x\" { default = 1 }\nlocals { y = var.x * 2 }\n")
	f.Add("llmlab { version = 1 }\nstage \"exec\" \"a\" {\n  command = [\"true\"]\n  outputs = { o = \"o\" }\n  for_each = { a = 1 }\n}\n")
	f.Add("llmlab { version = 1 }\ndataset \"d\" {\n  generate \"arithmetic\" {\n    count = 5\n  }\n}\n")
	f.Add("variable \"v\" {\n  validation {\n    condition = var.v > 1\n    error_message = \"x\"\n  }\n}")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, diags := Parse("fuzz.hcl", []byte(src))
		if diags.HasErrors() || cfg == nil {
			return
		}
		vars, diags := ResolveVariables(cfg, VarInputs{Vars: []string{"x=1"}})
		if diags.HasErrors() {
			return
		}
		_, _ = NewScope(cfg, vars)
	})
}
