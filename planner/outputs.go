package planner

import (
	"fmt"
	"math"
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/llmlab/llmlab/dsl"
	"github.com/zclconf/go-cty/cty"
)

// OutputValue is the value of one output block after (or before) apply.
type OutputValue struct {
	Name        string
	Description string
	// Sensitive is true for `sensitive = true` outputs and for values
	// derived from sensitive variables; Value is then nil.
	Sensitive bool
	// Known is false while the value needs metrics of stages that have not
	// run yet.
	Known bool
	// Value is JSON-shaped: numbers as float64, artifacts as their address
	// ("stage.x.model"), unknown parts as "(known after apply)".
	Value any
}

// Unknown is how a value known only after apply is shown.
const Unknown = "(known after apply)"

// EvalOutputs evaluates the configuration's output blocks against a plan,
// with each stage's metrics taken from metrics (address -> name -> value)
// where known. A stage without an entry has unknown metrics.
func EvalOutputs(cfg *dsl.Config, opts Options, plan *Plan, metrics map[string]map[string]float64) ([]OutputValue, hcl.Diagnostics) {
	vars, diags := dsl.ResolveVariables(cfg, opts.Vars)
	if diags.HasErrors() {
		return nil, diags
	}
	scope, d := dsl.NewScope(cfg, vars)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, diags
	}
	single := map[string]cty.Value{}
	keyed := map[string]map[string]cty.Value{}
	for _, st := range cfg.Stages {
		if st.ForEach != nil {
			keyed[st.Name] = map[string]cty.Value{}
		}
	}
	for _, sp := range plan.Stages {
		addr, ok := parseStageAddr(sp.Address)
		if !ok {
			continue // a generated dataset
		}
		obj := map[string]cty.Value{}
		for _, o := range sp.Outputs {
			obj[o] = dsl.ArtifactVal(dsl.ArtifactRef{Stage: addr, Output: o})
		}
		if m, ok := metrics[sp.Address]; ok {
			mv := map[string]cty.Value{}
			for k, v := range m {
				if math.IsNaN(v) {
					mv[k] = cty.UnknownVal(cty.Number) // cty numbers cannot be NaN
				} else {
					mv[k] = cty.NumberFloatVal(v)
				}
			}
			obj["metrics"] = cty.ObjectVal(mv)
		} else {
			obj["metrics"] = cty.DynamicVal
		}
		if addr.HasKey {
			if keyed[addr.Name] == nil {
				keyed[addr.Name] = map[string]cty.Value{}
			}
			keyed[addr.Name][addr.Key] = cty.ObjectVal(obj)
		} else {
			single[addr.Name] = cty.ObjectVal(obj)
		}
	}
	for name, m := range keyed {
		single[name] = cty.ObjectVal(m)
	}
	ctx := scope.EvalContext(nil, cty.ObjectVal(single))
	var out []OutputValue
	for _, o := range cfg.Outputs {
		v, d := o.Value.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		ov := OutputValue{Name: o.Name, Description: o.Description, Known: v.IsWhollyKnown()}
		if o.Sensitive || v.ContainsMarked() {
			ov.Sensitive = true
		} else {
			ov.Value = jsonValue(v)
		}
		out = append(out, ov)
	}
	return out, diags
}

// parseStageAddr parses stage.<name> or stage.<name>["key"].
func parseStageAddr(s string) (dsl.StageAddr, bool) {
	const p = "stage."
	if len(s) <= len(p) || s[:len(p)] != p {
		return dsl.StageAddr{}, false
	}
	rest := s[len(p):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '[' {
			var key string
			if _, err := fmt.Sscanf(rest[i+1:len(rest)-1], "%q", &key); err != nil {
				return dsl.StageAddr{}, false
			}
			return dsl.StageAddr{Name: rest[:i], Key: key, HasKey: true}, true
		}
	}
	return dsl.StageAddr{Name: rest}, true
}

// jsonValue converts a cty value for display and JSON.
func jsonValue(v cty.Value) any {
	v, _ = v.Unmark()
	if !v.IsKnown() {
		return Unknown
	}
	if v.IsNull() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty.Equals(dsl.ArtifactType):
		r, _ := dsl.AsArtifact(v)
		return r.String()
	case ty == cty.String:
		return v.AsString()
	case ty == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == big.Exact {
				return i
			}
		}
		f, _ := bf.Float64()
		return f
	case ty == cty.Bool:
		return v.True()
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		l := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			l = append(l, jsonValue(e))
		}
		return l
	case ty.IsMapType() || ty.IsObjectType():
		m := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			m[k.AsString()] = jsonValue(e)
		}
		return m
	}
	return fmt.Sprintf("%#v", v)
}
