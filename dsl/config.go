// Package dsl parses llmlab pipeline files (HCL) into typed configuration
// that keeps its source ranges. It knows nothing of execution: stage bodies
// stay as hcl.Body values that the planner decodes with each kind's schema.
package dsl

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// LanguageVersion is the only `llmlab { version = N }` this build accepts.
const LanguageVersion = 1

// Config is one parsed pipeline file.
type Config struct {
	Filename string // as given
	Dir      string // absolute directory of the pipeline file: path.root
	Source   []byte
	Parser   *hclparse.Parser // holds the file for diagnostic snippets

	Version   int
	Variables []*Variable
	Locals    []*Local
	Datasets  []*Dataset
	Stages    []*Stage
	Outputs   []*Output
}

// Variable is a `variable "name" {}` block.
type Variable struct {
	Name        string
	Type        cty.Type // cty.DynamicPseudoType when not declared
	Default     cty.Value
	HasDefault  bool
	Description string
	Sensitive   bool
	Validations []*Validation
	DeclRange   hcl.Range
}

// Validation is a variable's `validation { condition, error_message }`.
type Validation struct {
	Condition    hcl.Expression
	ErrorMessage hcl.Expression
	DeclRange    hcl.Range
}

// Local is one attribute of a `locals {}` block.
type Local struct {
	Name      string
	Expr      hcl.Expression
	DeclRange hcl.Range
}

// Dataset is a `dataset "name" {}` block: a path, or a generated task.
type Dataset struct {
	Name      string
	Path      hcl.Expression // nil when generated
	Generate  *Generate
	DeclRange hcl.Range
}

// Generate is `generate "<task>" { ... }` inside a dataset.
type Generate struct {
	Task      string
	Body      hcl.Body
	TaskRange hcl.Range
	DeclRange hcl.Range
}

// Stage is a `stage "<kind>" "<name>" {}` block. Common settings are decoded
// here; the rest of the body (Config) belongs to the kind's schema.
type Stage struct {
	Kind      string
	Name      string
	ForEach   hcl.Expression // nil when absent
	DependsOn []hcl.Traversal
	Resources *Resources
	Retries   hcl.Expression
	Timeout   hcl.Expression
	Cache     hcl.Expression
	Config    hcl.Body

	KindRange hcl.Range
	NameRange hcl.Range
	DeclRange hcl.Range
}

// Resources are scheduling hints; they never enter a cache key.
type Resources struct {
	CPUs      hcl.Expression
	Memory    hcl.Expression
	GPUs      hcl.Expression
	Time      hcl.Expression
	Partition hcl.Expression
	DeclRange hcl.Range
}

// Output is an `output "name" { value = ... }` block.
type Output struct {
	Name        string
	Value       hcl.Expression
	Description string
	Sensitive   bool
	DeclRange   hcl.Range
}

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "llmlab"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "dataset", LabelNames: []string{"name"}},
		{Type: "stage", LabelNames: []string{"kind", "name"}},
		{Type: "output", LabelNames: []string{"name"}},
	},
}

// ParseFile reads and parses a pipeline file.
func ParseFile(filename string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read pipeline file",
			Detail:   fmt.Sprintf("%s. Check the path and try again.", err),
		}}
	}
	return Parse(filename, src)
}

// Parse parses pipeline source. filename is used for diagnostics and to
// locate path.root.
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	dir, _ := filepath.Abs(filepath.Dir(filename))
	cfg := &Config{Filename: filename, Dir: dir, Source: src, Parser: hclparse.NewParser()}
	f, diags := cfg.Parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return cfg, diags
	}
	content, moreDiags := f.Body.Content(fileSchema)
	diags = append(diags, moreDiags...)

	seen := map[string]hcl.Range{}
	dup := func(kind, name string, r hcl.Range) bool {
		k := kind + "." + name
		if prev, ok := seen[k]; ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s %q", kind, name),
				Detail:   fmt.Sprintf("A %s named %q was already declared at %s. Names must be unique; rename one of them.", kind, name, prev),
				Subject:  r.Ptr(),
			})
			return true
		}
		seen[k] = r
		return false
	}

	var llmlabBlock *hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "llmlab":
			if llmlabBlock != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate llmlab block",
					Detail:   fmt.Sprintf("The llmlab block was already declared at %s; keep only one.", llmlabBlock.DefRange),
					Subject:  b.DefRange.Ptr(),
				})
				continue
			}
			llmlabBlock = b
			diags = append(diags, cfg.decodeLLMLab(b)...)
		case "variable":
			v, d := decodeVariable(b)
			diags = append(diags, d...)
			if v != nil && !dup("variable", v.Name, b.DefRange) {
				cfg.Variables = append(cfg.Variables, v)
			}
		case "locals":
			attrs, d := b.Body.JustAttributes()
			diags = append(diags, d...)
			for _, a := range sortedAttrs(attrs) {
				if dup("local", a.Name, a.NameRange) {
					continue
				}
				cfg.Locals = append(cfg.Locals, &Local{Name: a.Name, Expr: a.Expr, DeclRange: a.Range})
			}
		case "dataset":
			ds, d := decodeDataset(b)
			diags = append(diags, d...)
			if ds != nil && !dup("dataset", ds.Name, b.DefRange) {
				cfg.Datasets = append(cfg.Datasets, ds)
			}
		case "stage":
			s, d := decodeStage(b)
			diags = append(diags, d...)
			if s != nil && !dup("stage", s.Name, s.NameRange) {
				cfg.Stages = append(cfg.Stages, s)
			}
		case "output":
			o, d := decodeOutput(b)
			diags = append(diags, d...)
			if o != nil && !dup("output", o.Name, b.DefRange) {
				cfg.Outputs = append(cfg.Outputs, o)
			}
		}
	}
	if llmlabBlock == nil && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing llmlab block",
			Detail:   fmt.Sprintf("A pipeline file must declare the language version it is written for. Add this at the top of the file:\n\n  llmlab { version = %d }", LanguageVersion),
			Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		})
	}
	return cfg, diags
}

func (cfg *Config) decodeLLMLab(b *hcl.Block) hcl.Diagnostics {
	var raw struct {
		Version int      `hcl:"version"`
		Remain  hcl.Body `hcl:",remain"`
	}
	diags := gohcl.DecodeBody(b.Body, nil, &raw)
	if diags.HasErrors() {
		return diags
	}
	attrs, _ := raw.Remain.JustAttributes()
	for _, a := range sortedAttrs(attrs) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsupported argument",
			Detail:   fmt.Sprintf("The llmlab block takes only \"version\"; remove %q.", a.Name),
			Subject:  a.NameRange.Ptr(),
		})
	}
	cfg.Version = raw.Version
	if raw.Version != LanguageVersion {
		attr, _ := b.Body.JustAttributes()
		r := b.DefRange
		if a, ok := attr["version"]; ok {
			r = a.Expr.Range()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsupported language version",
			Detail:   fmt.Sprintf("This llmlab understands version %d of the pipeline language; the file asks for version %d.", LanguageVersion, raw.Version),
			Subject:  r.Ptr(),
		})
	}
	return diags
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

func decodeVariable(b *hcl.Block) (*Variable, hcl.Diagnostics) {
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, Default: cty.NilVal, DeclRange: b.DefRange}
	diags := checkName("variable", v.Name, b.LabelRanges[0])
	content, d := b.Body.Content(variableSchema)
	diags = append(diags, d...)
	if a, ok := content.Attributes["type"]; ok {
		ty, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type = ty
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &v.Description)...)
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &v.Sensitive)...)
	}
	if a, ok := content.Attributes["default"]; ok {
		val, d := a.Expr.Value(&hcl.EvalContext{Functions: Functions("")})
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := convert.Convert(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("The default of variable %q does not match its type %s: %s.", v.Name, typeexpr.TypeString(v.Type), err),
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				v.Default, v.HasDefault = conv, true
			}
		}
	}
	for _, vb := range content.Blocks {
		var raw struct {
			Condition    hcl.Expression `hcl:"condition"`
			ErrorMessage hcl.Expression `hcl:"error_message"`
		}
		d := gohcl.DecodeBody(vb.Body, nil, &raw)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Validations = append(v.Validations, &Validation{Condition: raw.Condition, ErrorMessage: raw.ErrorMessage, DeclRange: vb.DefRange})
		}
	}
	return v, diags
}

var datasetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "path"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "generate", LabelNames: []string{"task"}}},
}

func decodeDataset(b *hcl.Block) (*Dataset, hcl.Diagnostics) {
	ds := &Dataset{Name: b.Labels[0], DeclRange: b.DefRange}
	diags := checkName("dataset", ds.Name, b.LabelRanges[0])
	content, d := b.Body.Content(datasetSchema)
	diags = append(diags, d...)
	if a, ok := content.Attributes["path"]; ok {
		ds.Path = a.Expr
	}
	for _, g := range content.Blocks {
		if ds.Generate != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate generate block",
				Detail:   "A dataset is generated by one task; declare another dataset for a second task.",
				Subject:  g.DefRange.Ptr(),
			})
			continue
		}
		ds.Generate = &Generate{Task: g.Labels[0], Body: g.Body, TaskRange: g.LabelRanges[0], DeclRange: g.DefRange}
	}
	switch {
	case ds.Path == nil && ds.Generate == nil && !diags.HasErrors():
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dataset has no source",
			Detail:   fmt.Sprintf("Dataset %q needs either path = \"<file or directory>\" or a generate \"<task>\" { ... } block.", ds.Name),
			Subject:  b.DefRange.Ptr(),
		})
	case ds.Path != nil && ds.Generate != nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dataset has two sources",
			Detail:   fmt.Sprintf("Dataset %q sets both path and generate; keep one of them.", ds.Name),
			Subject:  ds.Generate.DeclRange.Ptr(),
		})
	}
	return ds, diags
}

var stageCommonSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"}, {Name: "depends_on"}, {Name: "retries"}, {Name: "timeout"}, {Name: "cache"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "resources"}},
}

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "cpus"}, {Name: "memory"}, {Name: "gpus"}, {Name: "time"}, {Name: "partition"},
	},
}

func decodeStage(b *hcl.Block) (*Stage, hcl.Diagnostics) {
	s := &Stage{
		Kind: b.Labels[0], Name: b.Labels[1],
		KindRange: b.LabelRanges[0], NameRange: b.LabelRanges[1], DeclRange: b.DefRange,
	}
	diags := checkName("stage", s.Name, s.NameRange)
	content, remain, d := b.Body.PartialContent(stageCommonSchema)
	diags = append(diags, d...)
	s.Config = remain
	if a, ok := content.Attributes["for_each"]; ok {
		s.ForEach = a.Expr
	}
	if a, ok := content.Attributes["retries"]; ok {
		s.Retries = a.Expr
	}
	if a, ok := content.Attributes["timeout"]; ok {
		s.Timeout = a.Expr
	}
	if a, ok := content.Attributes["cache"]; ok {
		s.Cache = a.Expr
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		exprs, d := hcl.ExprList(a.Expr)
		diags = append(diags, d...)
		for _, e := range exprs {
			t, d := hcl.AbsTraversalForExpr(e)
			if d.HasErrors() || t.RootName() != "stage" || len(t) != 2 {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid depends_on entry",
					Detail:   "depends_on takes a list of whole stages, as in depends_on = [stage.prepare].",
					Subject:  e.Range().Ptr(),
				})
				continue
			}
			s.DependsOn = append(s.DependsOn, t)
		}
	}
	for _, rb := range content.Blocks {
		rc, d := rb.Body.Content(resourcesSchema)
		diags = append(diags, d...)
		r := &Resources{DeclRange: rb.DefRange}
		for name, a := range rc.Attributes {
			switch name {
			case "cpus":
				r.CPUs = a.Expr
			case "memory":
				r.Memory = a.Expr
			case "gpus":
				r.GPUs = a.Expr
			case "time":
				r.Time = a.Expr
			case "partition":
				r.Partition = a.Expr
			}
		}
		s.Resources = r
	}
	return s, diags
}

func decodeOutput(b *hcl.Block) (*Output, hcl.Diagnostics) {
	o := &Output{Name: b.Labels[0], DeclRange: b.DefRange}
	diags := checkName("output", o.Name, b.LabelRanges[0])
	var raw struct {
		Value       hcl.Expression `hcl:"value"`
		Description *string        `hcl:"description"`
		Sensitive   *bool          `hcl:"sensitive"`
	}
	d := gohcl.DecodeBody(b.Body, nil, &raw)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	o.Value = raw.Value
	if raw.Description != nil {
		o.Description = *raw.Description
	}
	if raw.Sensitive != nil {
		o.Sensitive = *raw.Sensitive
	}
	return o, diags
}

func checkName(kind, name string, r hcl.Range) hcl.Diagnostics {
	if hclValidIdentifier(name) {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", kind),
		Detail:   fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter or underscore.", name),
		Subject:  r.Ptr(),
	}}
}

func hclValidIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case i > 0 && (c == '-' || (c >= '0' && c <= '9')):
		default:
			return false
		}
	}
	return true
}

// sortedAttrs returns attributes in source order, so diagnostics and
// evaluation order never depend on map iteration.
func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sortByRange(out, func(a *hcl.Attribute) hcl.Range { return a.Range })
	return out
}

// CommonExprs returns the expressions of the common settings that are set
// (retries, timeout, cache, resources), for reference checking.
func (s *Stage) CommonExprs() []hcl.Expression {
	var out []hcl.Expression
	for _, e := range []hcl.Expression{s.Retries, s.Timeout, s.Cache} {
		if e != nil {
			out = append(out, e)
		}
	}
	if r := s.Resources; r != nil {
		for _, e := range []hcl.Expression{r.CPUs, r.Memory, r.GPUs, r.Time, r.Partition} {
			if e != nil {
				out = append(out, e)
			}
		}
	}
	return out
}
