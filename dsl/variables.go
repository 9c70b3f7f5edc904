package dsl

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// SensitiveMark marks values that come from sensitive variables. Marked
// values are never printed, logged or stored in clear.
const SensitiveMark = "sensitive"

// EnvPrefix is the prefix of environment variables that set pipeline
// variables: LLMLAB_VAR_lr=3e-4.
const EnvPrefix = "LLMLAB_VAR_"

// VarInputs are the user's variable assignments besides defaults. The
// precedence is Terraform's: defaults, then the environment, then -var-file
// files in order, then -var flags in order; a later source wins.
type VarInputs struct {
	Env   []string // KEY=VALUE pairs, normally os.Environ()
	Files []string // -var-file paths (HCL: name = value)
	Vars  []string // -var name=value
}

type rawVar struct {
	expr   hcl.Expression // from a file: an HCL expression
	text   string         // from the env or -var: raw text
	source string
	rng    hcl.Range
}

// ResolveVariables computes every variable's value, applies type conversion
// and runs validation blocks. parser receives var files so diagnostics can
// show their snippets.
func ResolveVariables(cfg *Config, in VarInputs) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decl := map[string]*Variable{}
	var names []string
	for _, v := range cfg.Variables {
		decl[v.Name] = v
		names = append(names, v.Name)
	}
	raw := map[string]rawVar{}

	unknown := func(name, source string, r *hcl.Range) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Value for undeclared variable",
			Detail:   fmt.Sprintf("%s sets variable %q, which the pipeline does not declare.%s Declare it with a variable %q {} block or remove the assignment.", source, name, DidYouMean(name, names), name),
			Subject:  r,
		})
	}

	env := append([]string(nil), in.Env...)
	sort.Strings(env)
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvPrefix) {
			continue
		}
		name, val, _ := strings.Cut(strings.TrimPrefix(kv, EnvPrefix), "=")
		if _, ok := decl[name]; !ok {
			continue // like Terraform, stray environment variables are ignored
		}
		raw[name] = rawVar{text: val, source: "environment variable " + EnvPrefix + name}
	}
	for _, fn := range in.Files {
		src, err := os.ReadFile(fn)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read variables file",
				Detail:   fmt.Sprintf("%s. Check the -var-file path.", err),
			})
			continue
		}
		f, d := cfg.Parser.ParseHCL(src, fn)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		attrs, d := f.Body.JustAttributes()
		diags = append(diags, d...)
		for _, a := range sortedAttrs(attrs) {
			if _, ok := decl[a.Name]; !ok {
				unknown(a.Name, "The variables file "+fn, a.NameRange.Ptr())
				continue
			}
			raw[a.Name] = rawVar{expr: a.Expr, source: fn, rng: a.Range}
		}
	}
	for _, kv := range in.Vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid -var option",
				Detail:   fmt.Sprintf("The option -var %q is not of the form name=value, as in -var lr=3e-4.", kv),
			})
			continue
		}
		if _, ok := decl[name]; !ok {
			unknown(name, "The option -var "+kv, nil)
			continue
		}
		raw[name] = rawVar{text: val, source: "-var " + name}
	}

	vals := map[string]cty.Value{}
	for _, v := range cfg.Variables {
		var val cty.Value
		r, given := raw[v.Name]
		switch {
		case given && r.expr != nil:
			x, d := r.expr.Value(&hcl.EvalContext{Functions: Functions(cfg.Dir)})
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			val = x
		case given:
			x, d := parseVarText(v, r)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			val = x
		case v.HasDefault:
			val = v.Default
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No value for required variable",
				Detail:   fmt.Sprintf("Variable %q has no default. Set it with -var %s=..., a -var-file, or the environment variable %s%s.", v.Name, v.Name, EnvPrefix, v.Name),
				Subject:  v.DeclRange.Ptr(),
			})
			continue
		}
		conv, err := convert.Convert(val, v.Type)
		if err != nil {
			subj := v.DeclRange.Ptr()
			if given && r.expr != nil {
				subj = r.expr.Range().Ptr()
			}
			src := "its default"
			if given {
				src = r.source
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid value for variable",
				Detail:   fmt.Sprintf("Variable %q must be %s; the value from %s is not: %s.", v.Name, typeexpr.TypeString(v.Type), src, err),
				Subject:  subj,
			})
			continue
		}
		if v.Sensitive {
			conv = conv.Mark(SensitiveMark)
		}
		vals[v.Name] = conv
		diags = append(diags, validateVariable(cfg, v, conv)...)
	}
	return vals, diags
}

// parseVarText interprets text from -var or the environment: as a literal
// string for string variables, otherwise as an HCL expression (so numbers,
// lists and maps can be given on the command line, as in Terraform).
func parseVarText(v *Variable, r rawVar) (cty.Value, hcl.Diagnostics) {
	if v.Type == cty.String || v.Type == cty.DynamicPseudoType {
		return cty.StringVal(r.text), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(r.text), r.source, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("The value %q from %s is not a valid %s for variable %q.", r.text, r.source, typeexpr.TypeString(v.Type), v.Name),
		}}
	}
	val, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("The value %q from %s must be a constant %s for variable %q.", r.text, r.source, typeexpr.TypeString(v.Type), v.Name),
		}}
	}
	return val, nil
}

func validateVariable(cfg *Config, v *Variable, val cty.Value) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.Name: val})},
		Functions: Functions(cfg.Dir),
	}
	for _, vb := range v.Validations {
		cond, d := vb.Condition.Value(ctx)
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		cond, _ = cond.Unmark()
		if cond.IsNull() || !cond.IsKnown() || cond.Type() != cty.Bool {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid validation condition",
				Detail:   "A validation condition must be true or false.",
				Subject:  vb.Condition.Range().Ptr(),
			})
			continue
		}
		if cond.True() {
			continue
		}
		msgVal, d := vb.ErrorMessage.Value(ctx)
		msg := "the value is not valid"
		if !d.HasErrors() {
			if m, _ := msgVal.Unmark(); m.Type() == cty.String && m.IsKnown() && !m.IsNull() {
				msg = m.AsString()
			}
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", msg, vb.DeclRange),
			Subject:  v.DeclRange.Ptr(),
		})
	}
	return diags
}
