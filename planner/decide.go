package planner

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/llmlab/llmlab/dsl"
	"github.com/zclconf/go-cty/cty"
)

// decide sets each stage's action and reasons from the cache and the
// previous run of its address.
func (p *planner) decide(plan *Plan) hcl.Diagnostics {
	var diags hcl.Diagnostics
	replace := map[string]bool{}
	for _, r := range p.opts.Replace {
		matched := false
		for _, s := range plan.Stages {
			if s.Address == r || stageName(s.Address) == r {
				replace[s.Address], matched = true, true
			}
		}
		if !matched {
			diags = append(diags, p.unknownAddress("-replace", r, plan))
		}
	}
	statuses, errs := p.lookupActions(plan.Stages)
	for i, s := range plan.Stages {
		st, err := statuses[i], errs[i]
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read the cache", Detail: err.Error()})
			continue
		}
		switch {
		case replace[s.Address]:
			s.Reasons = append(s.Reasons, Reason{Kind: ReasonReplace, Path: s.Address})
		case !s.Cache:
			s.Reasons = append(s.Reasons, Reason{Kind: ReasonCacheDisabled})
		case st.Found && st.OutputsIntact:
			s.Action = ActionCached
			t := st.Created
			s.CachedAt = &t
			plan.Summary.Cached++
			continue
		case st.Found:
			s.Reasons = append(s.Reasons, Reason{Kind: ReasonMissingOutput, Path: s.Address})
		default:
			prev, err := p.opts.Cache.Previous(s.Address)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read the run ledger", Detail: err.Error()})
				continue
			}
			s.Reasons = append(s.Reasons, whyChanged(s, prev)...)
		}
		s.Action = ActionRun
		plan.Summary.Run++
	}
	return diags
}

// lookupActions asks the cache about every stage's key, a few at a time:
// each answer reads and checks an action entry, and the reads are
// independent.
func (p *planner) lookupActions(ss []*StagePlan) ([]ActionStatus, []error) {
	statuses := make([]ActionStatus, len(ss))
	errs := make([]error, len(ss))
	workers := min(runtime.GOMAXPROCS(0), 4, len(ss))
	if workers <= 1 {
		for i, s := range ss {
			statuses[i], errs[i] = p.opts.Cache.Action(s.Key)
		}
		return statuses, errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ss) {
					return
				}
				statuses[i], errs[i] = p.opts.Cache.Action(ss[i].Key)
			}
		}()
	}
	wg.Wait()
	return statuses, errs
}

// whyChanged compares a stage with what its address last ran with.
func whyChanged(s *StagePlan, prev *Previous) []Reason {
	if prev == nil {
		return []Reason{{Kind: ReasonNew}}
	}
	var out []Reason
	if prev.KindVersion != s.KindVersion {
		out = append(out, Reason{Kind: ReasonKindVersion, Old: fmt.Sprint(prev.KindVersion), New: fmt.Sprint(s.KindVersion)})
	}
	if prev.Fingerprint != s.Fingerprint {
		out = append(out, Reason{Kind: ReasonFingerprint, Old: prev.Fingerprint, New: s.Fingerprint})
	}
	out = append(out, diffSettings(prev.Settings, s.KeySettings)...)
	names := map[string]bool{}
	for n := range prev.Inputs {
		names[n] = true
	}
	for n := range s.KeyInputs {
		names[n] = true
	}
	var inputs []string
	for n := range names {
		if prev.Inputs[n] != s.KeyInputs[n] {
			inputs = append(inputs, n)
		}
	}
	sort.Strings(inputs)
	for _, n := range inputs {
		r := Reason{Kind: ReasonInput, Path: n, Old: shortInput(prev.Inputs[n]), New: shortInput(s.KeyInputs[n])}
		for _, in := range s.Inputs {
			if in.Name == n && in.Stage != "" {
				r.New = in.Stage + "." + in.Output + " (changed)"
				if prev.Inputs[n] == "" {
					r.New = in.Stage + "." + in.Output
				}
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		// Same key as before, but its cache entry is gone (gc or a new store).
		out = append(out, Reason{Kind: ReasonMissingOutput, Path: s.Address})
	}
	return out
}

func shortInput(s string) string {
	switch {
	case s == "":
		return "(none)"
	case strings.HasPrefix(s, "sha256:"):
		return s[:len("sha256:")+12]
	case strings.HasPrefix(s, "key:"):
		return s[4:16]
	}
	return s
}

func stageName(address string) string {
	if i := strings.IndexByte(address, '['); i >= 0 {
		return address[:i]
	}
	return address
}

func (p *planner) unknownAddress(flag, addr string, plan *Plan) *hcl.Diagnostic {
	var names []string
	seen := map[string]bool{}
	for _, s := range plan.Stages {
		n := stageName(s.Address)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Unknown stage address",
		Detail:   fmt.Sprintf("%s %s: there is no such stage in %s.%s Addresses look like stage.<name> or stage.<name>[\"key\"].", flag, addr, p.cfg.Filename, dsl.DidYouMean(addr, names)),
	}
}

// applyTargets keeps only the targeted stages and everything they need.
func (p *planner) applyTargets(plan *Plan) hcl.Diagnostics {
	if len(p.opts.Targets) == 0 {
		return nil
	}
	var diags hcl.Diagnostics
	byAddr := map[string]*StagePlan{}
	for _, s := range plan.Stages {
		byAddr[s.Address] = s
	}
	keep := map[string]bool{}
	var visit func(a string)
	visit = func(a string) {
		if keep[a] {
			return
		}
		keep[a] = true
		for _, d := range byAddr[a].DependsOn {
			visit(d)
		}
	}
	for _, t := range p.opts.Targets {
		matched := false
		for _, s := range plan.Stages {
			if s.Address == t || stageName(s.Address) == t {
				visit(s.Address)
				matched = true
			}
		}
		if !matched {
			diags = append(diags, p.unknownAddress("-target", t, plan))
		}
	}
	var kept []*StagePlan
	for _, s := range plan.Stages {
		if keep[s.Address] {
			kept = append(kept, s)
		}
	}
	plan.Stages = kept
	plan.Targets = p.opts.Targets
	return diags
}

// checkOutputs validates output blocks: references, and that they evaluate
// with metrics still unknown.
func (p *planner) checkOutputs() {
	for _, o := range p.cfg.Outputs {
		refs := o.Value.Variables()
		before := len(p.diags.Errs())
		rc := p.refCheck(&decl{})
		p.diags = append(p.diags, p.scope.CheckRefs(refs, rc)...)
		if len(p.diags.Errs()) > before {
			continue
		}
		vals := map[string]cty.Value{}
		failed := false
		for _, t := range refs {
			if t.RootName() != "stage" {
				continue
			}
			ref, _ := dsl.ParseReference(t)
			if dc := p.byID["stage."+ref.Name]; dc != nil {
				if dc.failed {
					failed = true
				}
				vals[ref.Name] = dc.value
			}
		}
		if failed {
			continue
		}
		_, d := o.Value.Value(p.scope.EvalContext(nil, cty.ObjectVal(vals)))
		p.diags = append(p.diags, d...)
	}
}
