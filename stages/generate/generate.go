// Package generate is the kind behind `dataset "x" { generate "<task>" {} }`:
// generated, checkable tasks written as Alpaca records. The planner treats a
// generated dataset as a stage of this kind with the task as a setting.
package generate

import (
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

// Tasks are the generated tasks this build knows.
var Tasks = []string{"arithmetic", "reverse", "sort"}

// Kind is the generated-dataset kind.
var Kind = &stages.Static{
	KindName:    "generate",
	KindVersion: 1,
	OutputNames: []string{"data"},
	KindSchema: &stages.Schema{Attrs: []stages.Attr{
		stages.Num("count", 1000, "records to generate"),
		stages.Num("seed", 0, "generator seed"),
		stages.Str("split", "train", "which part of the problem space: train or test", "train", "test"),
		stages.Num("digits", 2, "arithmetic: operand digits"),
		{Name: "ops", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("+")}), Doc: "arithmetic: operators among + and -"},
		stages.Num("length", 5, "reverse/sort: string length"),
		stages.Num("test_share", 0.1, "share of the problem space reserved for split = test"),
	}},
}

func init() { stages.Register(Kind) }
