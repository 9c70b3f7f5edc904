package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Scope holds the values an expression may refer to, apart from stages
// (which the planner supplies, since they depend on the graph).
type Scope struct {
	cfg       *Config
	Vars      map[string]cty.Value
	Locals    map[string]cty.Value
	funcs     map[string]function.Function
	datasets  cty.Value
	pathValue cty.Value
}

// Each is the for_each iteration value of one stage instance.
type Each struct {
	Key   cty.Value
	Value cty.Value
}

// NewScope evaluates locals (in dependency order) against resolved
// variables. Locals may refer to variables, other locals, datasets and
// path.root; not to stages.
func NewScope(cfg *Config, vars map[string]cty.Value) (*Scope, hcl.Diagnostics) {
	s := &Scope{
		cfg:    cfg,
		Vars:   vars,
		Locals: map[string]cty.Value{},
		funcs:  Functions(cfg.Dir),
		pathValue: cty.ObjectVal(map[string]cty.Value{
			"root": cty.StringVal(cfg.Dir),
		}),
	}
	ds := map[string]cty.Value{}
	for _, d := range cfg.Datasets {
		ds[d.Name] = ArtifactVal(ArtifactRef{Dataset: d.Name})
	}
	s.datasets = cty.ObjectVal(ds)

	var diags hcl.Diagnostics
	byName := map[string]*Local{}
	for _, l := range cfg.Locals {
		byName[l.Name] = l
	}
	state := map[string]int{} // 1 visiting, 2 done
	var eval func(l *Local, chain []string)
	eval = func(l *Local, chain []string) {
		switch state[l.Name] {
		case 2:
			return
		case 1:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cycle in locals",
				Detail:   fmt.Sprintf("These locals refer to each other in a cycle: %s. Break the cycle.", strings.Join(append(chain, "local."+l.Name), " -> ")),
				Subject:  l.DeclRange.Ptr(),
			})
			return
		}
		state[l.Name] = 1
		refs := l.Expr.Variables()
		diags = append(diags, s.CheckRefs(refs, RefCheck{})...)
		for _, t := range refs {
			if t.RootName() == "local" && len(t) > 1 {
				if a, ok := t[1].(hcl.TraverseAttr); ok {
					if dep, ok := byName[a.Name]; ok {
						eval(dep, append(chain, "local."+l.Name))
					}
				}
			}
		}
		if state[l.Name] == 2 {
			return
		}
		state[l.Name] = 2
		v, d := l.Expr.Value(s.EvalContext(nil, cty.NilVal))
		diags = append(diags, d...)
		s.Locals[l.Name] = v
	}
	for _, l := range cfg.Locals {
		eval(l, nil)
	}
	return s, diags
}

// EvalContext builds the evaluation context for an expression. stages is the
// value of the `stage` root (cty.NilVal when stages are out of scope).
func (s *Scope) EvalContext(each *Each, stages cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":     cty.ObjectVal(s.Vars),
		"local":   cty.ObjectVal(s.Locals),
		"dataset": s.datasets,
		"path":    s.pathValue,
	}
	if stages != cty.NilVal {
		vars["stage"] = stages
	}
	if each != nil {
		vars["each"] = cty.ObjectVal(map[string]cty.Value{"key": each.Key, "value": each.Value})
	}
	return &hcl.EvalContext{Variables: vars, Functions: s.funcs}
}

// RefCheck says which stage references are allowed where references are
// being checked.
type RefCheck struct {
	Each bool // each.key / each.value allowed (inside a for_each stage)
	// Stage, when set, validates stage.<name>[.<output>]: it returns the
	// stage's outputs and whether the stage exists. Nil means stages may not
	// be referenced here.
	Stage     func(name string) (outputs []string, ok bool)
	StageList []string // every stage name, for suggestions
}

// CheckRefs validates references to variables, locals, datasets, each, path
// and (if allowed) stages, with "did you mean" suggestions.
func (s *Scope) CheckRefs(refs []hcl.Traversal, rc RefCheck) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, t := range refs {
		ref, d := ParseReference(t)
		diags = append(diags, d...)
		if ref == nil {
			continue
		}
		bad := func(summary, detail string) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: ref.Range.Ptr()})
		}
		switch ref.Target {
		case RefVar:
			if _, ok := s.Vars[ref.Name]; !ok && !s.declaredVar(ref.Name) {
				bad("Reference to undeclared variable", fmt.Sprintf("There is no variable named %q.%s Declare it with a variable %q {} block.", ref.Name, DidYouMean(ref.Name, s.varNames()), ref.Name))
			}
		case RefLocal:
			if !s.declaredLocal(ref.Name) {
				bad("Reference to undeclared local value", fmt.Sprintf("There is no local value named %q.%s Declare it in a locals {} block.", ref.Name, DidYouMean(ref.Name, s.localNames())))
			}
		case RefDataset:
			if !s.declaredDataset(ref.Name) {
				bad("Reference to undeclared dataset", fmt.Sprintf("There is no dataset named %q.%s Declare it with a dataset %q {} block.", ref.Name, DidYouMean(ref.Name, s.datasetNames()), ref.Name))
			}
		case RefPath:
			if ref.Name != "root" {
				bad("Invalid path attribute", fmt.Sprintf("path has one attribute, path.root (the pipeline's directory); %q is not one.", ref.Name))
			}
		case RefEach:
			if !rc.Each {
				bad("Reference to \"each\" outside for_each", "each.key and each.value exist only in a stage that sets for_each.")
			} else if ref.Name != "key" && ref.Name != "value" {
				bad("Invalid each attribute", fmt.Sprintf("each has two attributes, each.key and each.value; %q is not one.%s", ref.Name, DidYouMean(ref.Name, []string{"key", "value"})))
			}
		case RefStage:
			if rc.Stage == nil {
				bad("Stage reference not allowed here", "Variables, locals and dataset paths are fixed before any stage runs, so they cannot refer to stages.")
				continue
			}
			outs, ok := rc.Stage(ref.Name)
			if !ok {
				bad("Reference to undeclared stage", fmt.Sprintf("There is no stage named %q.%s Stages are referred to as stage.<name>.<output>.", ref.Name, DidYouMean(ref.Name, rc.StageList)))
				continue
			}
			if ref.Attr != "" && ref.Attr != "metrics" && !contains(outs, ref.Attr) {
				bad("Reference to unknown stage output", fmt.Sprintf("Stage %q has no output named %q.%s Its outputs are: %s.", ref.Name, ref.Attr, DidYouMean(ref.Attr, outs), strings.Join(append(append([]string{}, outs...), "metrics"), ", ")))
			}
		case RefOther:
			bad("Unknown reference", fmt.Sprintf("%q is not something a pipeline can refer to.%s References start with var., local., dataset., stage., each. or path.", ref.Name, DidYouMean(ref.Name, []string{"var", "local", "dataset", "stage", "each", "path"})))
		}
	}
	return diags
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (s *Scope) declaredVar(n string) bool {
	for _, v := range s.cfg.Variables {
		if v.Name == n {
			return true
		}
	}
	return false
}

func (s *Scope) declaredLocal(n string) bool {
	for _, v := range s.cfg.Locals {
		if v.Name == n {
			return true
		}
	}
	return false
}

func (s *Scope) declaredDataset(n string) bool {
	for _, v := range s.cfg.Datasets {
		if v.Name == n {
			return true
		}
	}
	return false
}

func (s *Scope) varNames() []string {
	var out []string
	for _, v := range s.cfg.Variables {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

func (s *Scope) localNames() []string {
	var out []string
	for _, v := range s.cfg.Locals {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

func (s *Scope) datasetNames() []string {
	var out []string
	for _, v := range s.cfg.Datasets {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}
