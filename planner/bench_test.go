package planner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/dsl"
)

// SyntheticPipeline returns a pipeline of n exec stages: a chain (each
// stage reads the previous one's output) or a fan-out (one root, n-1
// readers of it).
func SyntheticPipeline(n int, shape string) string {
	var b strings.Builder
	b.WriteString("llmlab { version = 1 }\n\n")
	b.WriteString("stage \"exec\" \"s0\" {\n  command = [\"sh\", \"-c\", \"echo 0 > out\"]\n  outputs = { out = \"out\" }\n}\n")
	for i := 1; i < n; i++ {
		up := 0
		if shape == "chain" {
			up = i - 1
		}
		fmt.Fprintf(&b, "stage \"exec\" \"s%d\" {\n  command = [\"sh\", \"-c\", \"cat inputs/in > out; echo %d >> out\"]\n  inputs  = { in = stage.s%d.out }\n  outputs = { out = \"out\" }\n}\n", i, i, up)
	}
	return b.String()
}

func benchmarkPlan(b *testing.B, n int, shape string) {
	src := []byte(SyntheticPipeline(n, shape))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		cfg, diags := dsl.Parse("bench.hcl", src)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		plan, diags := Build(cfg, Options{})
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		if len(plan.Stages) != n {
			b.Fatalf("planned %d stages, want %d", len(plan.Stages), n)
		}
	}
}

func BenchmarkPlanChain1000(b *testing.B)   { benchmarkPlan(b, 1000, "chain") }
func BenchmarkPlanFanout1000(b *testing.B)  { benchmarkPlan(b, 1000, "fanout") }
func BenchmarkPlanChain10000(b *testing.B)  { benchmarkPlan(b, 10000, "chain") }
func BenchmarkPlanFanout10000(b *testing.B) { benchmarkPlan(b, 10000, "fanout") }
