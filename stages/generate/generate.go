// Package generate is the kind behind `dataset "x" { generate "<task>" {} }`:
// generated, checkable tasks written as Alpaca records. The planner treats a
// generated dataset as a stage of this kind with the task as a setting.
//
// The output "data" is one file, data.json: a JSON array of
// {instruction, input, output} records, one record a line, which data_prep
// reads as format "instructions" and eval's exact_match as its data.
//
// Which problems are test problems is fixed by textdata (a hash of each
// problem, about textdata.TestShare of the problem space), not by a
// setting, so that a test set never shares a problem with a training set
// whatever their settings.
package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
)

// Tasks are the generated tasks this build knows.
var Tasks = []string{"arithmetic", "reverse", "sort"}

// DataFile is the name of the "data" output in the work directory.
const DataFile = "data.json"

type kind struct{ *stages.Static }

// Kind is the generated-dataset kind.
var Kind = &kind{&stages.Static{
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
	}},
}}

func init() { stages.Register(Kind) }

type settings struct {
	Task   string   `json:"task"`
	Count  float64  `json:"count"`
	Seed   float64  `json:"seed"`
	Split  string   `json:"split"`
	Digits float64  `json:"digits"`
	Ops    []string `json:"ops"`
	Length float64  `json:"length"`
}

// Spec turns the settings into the generator's TaskSpec.
func Spec(raw map[string]any) (textdata.TaskSpec, error) {
	var s settings
	if err := stages.DecodeSettings(raw, &s); err != nil {
		return textdata.TaskSpec{}, fmt.Errorf("generate settings: %w", err)
	}
	spec := textdata.TaskSpec{Task: s.Task, Split: s.Split, Ops: s.Ops}
	for _, f := range []struct {
		name string
		v    float64
		dst  *int
	}{{"count", s.Count, &spec.Count}, {"digits", s.Digits, &spec.Digits}, {"length", s.Length, &spec.Length}} {
		if f.v != math.Trunc(f.v) || math.Abs(f.v) > 1<<40 {
			return spec, fmt.Errorf("generate %q: %s = %v: want a whole number", s.Task, f.name, f.v)
		}
		*f.dst = int(f.v)
	}
	if s.Seed != math.Trunc(s.Seed) || math.Abs(s.Seed) > 1<<53 {
		return spec, fmt.Errorf("generate %q: seed = %v: want a whole number", s.Task, s.Seed)
	}
	spec.Seed = int64(s.Seed)
	if spec.Count < 1 {
		return spec, fmt.Errorf("generate %q: count = %d: want at least 1", s.Task, spec.Count)
	}
	return spec, nil
}

// Run generates the records and writes data.json.
func (k *kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	spec, err := Spec(job.Settings)
	if err != nil {
		return nil, err
	}
	recs, err := textdata.Generate(spec)
	if err != nil {
		return nil, err // textdata's errors already name the task
	}
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		if i < len(recs)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	if err := os.WriteFile(filepath.Join(job.WorkDir, DataFile), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if job.Log != nil {
		fmt.Fprintf(job.Log, "generated %d %s records (%s split, seed %d)\n", len(recs), spec.Task, spec.Split, spec.Seed)
	}
	return &stages.Result{Outputs: map[string]string{"data": DataFile}, Metrics: map[string]float64{"records": float64(len(recs))}}, nil
}
