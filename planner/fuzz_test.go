package planner

import (
	"testing"

	"github.com/llmlab/llmlab/dsl"
)

// FuzzPlan: no pipeline may make the planner panic.
func FuzzPlan(f *testing.F) {
	f.Add(SyntheticPipeline(3, "chain"))
	f.Add(SyntheticPipeline(3, "fanout"))
	f.Add(`llmlab { version = 1 }
stage "exec" "a" {
  for_each = toset(["x", "y"])
  command  = ["echo", each.key]
  outputs  = { o = "o" }
}
stage "exec" "b" {
  for_each = stage.a
  command  = ["cat"]
  inputs   = { i = each.value.o }
  outputs  = { o = "o" }
  depends_on = [stage.a]
}
output "x" { value = { for k, v in stage.b : k => v.metrics } }
`)
	f.Add(`llmlab { version = 1 }
dataset "g" {
  generate "arithmetic" {
    count = 10
  }
}
stage "data_prep" "p" {
  source = dataset.g
  tokenizer {
    kind = "char"
  }
}
stage "pretrain" "m" {
  data = stage.p.train
  model {
    layers  = 1
    heads   = 1
    dim     = 8
    context = 8
  }
}
`)
	f.Fuzz(func(t *testing.T, src string) {
		cfg, diags := dsl.Parse("fuzz.hcl", []byte(src))
		if diags.HasErrors() {
			return
		}
		_, _ = Build(cfg, Options{})
	})
}
