// Package exec is the `exec` stage kind: any external program, run in a
// fresh work directory with its inputs placed read-only.
package exec

import (
	"sort"

	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

// Kind is the exec stage kind.
type Kind struct{}

func init() { stages.Register(Kind{}) }

var schema = &stages.Schema{Attrs: []stages.Attr{
	{Name: "command", Type: cty.List(cty.String), Required: true, Doc: "argv; no shell unless you call one"},
	{Name: "inputs", Ref: stages.MapOfRefOrPath, Default: cty.EmptyObjectVal, Doc: "name -> reference or path; placed read-only at inputs/<name>"},
	{Name: "outputs", Type: cty.Map(cty.String), Required: true, Doc: "name -> path in the work directory"},
	{Name: "env", Type: cty.Map(cty.String), Default: cty.MapValEmpty(cty.String), Doc: "added to a minimal base environment"},
	{Name: "metrics", Type: cty.String, Doc: "path of a flat JSON object of numbers"},
}}

func (Kind) Name() string           { return "exec" }
func (Kind) Version() int           { return 1 }
func (Kind) Schema() *stages.Schema { return schema }

// Outputs are the declared output names, sorted.
func (Kind) Outputs(settings map[string]any) []string {
	outs, _ := settings["outputs"].(map[string]any)
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
