package planner

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dominikbraun/graph"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/stages/generate"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Options are the inputs of a plan besides the configuration.
type Options struct {
	Vars    dsl.VarInputs
	Targets []string // stage addresses; only these and what they need are planned
	Replace []string // stage addresses forced to run
	Cache   Cache
	Now     time.Time
}

// decl is one node of the declaration-level graph: a stage block or a
// generated dataset.
type decl struct {
	id      string // "stage.<name>" or "dataset.<name>"
	name    string
	index   int
	stage   *dsl.Stage
	dataset *dsl.Dataset
	kind    stages.Kind
	body    hcl.Body
	spec    hcldec.Spec
	refs    []hcl.Traversal // references in the body (settings)
	deps    map[string]bool // ids this decl depends on
	rng     hcl.Range

	failed    bool
	forEach   bool
	instances []*instance
	value     cty.Value // the value of stage.<name> for other stages
	outputs   []string
}

type instance struct {
	addr    dsl.StageAddr
	plan    *StagePlan
	outputs []string
}

type planner struct {
	cfg      *dsl.Config
	opts     Options
	scope    *dsl.Scope
	diags    hcl.Diagnostics
	decls    []*decl
	byID     map[string]*decl
	names    []string // stage names, for suggestions
	files    map[string]string
	salt     []byte
	datasets map[string]string      // dataset name -> absolute path (path datasets)
	specs    map[string]hcldec.Spec // kind name -> decoding spec
}

// Build validates a configuration and makes its plan: Evaluate, then
// Finish.
func Build(cfg *dsl.Config, opts Options) (*Plan, hcl.Diagnostics) {
	plan, diags := Evaluate(cfg, opts)
	if diags.HasErrors() {
		return nil, diags
	}
	plan, d := Finish(plan, cfg.Filename, opts)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	return plan, diags
}

// Evaluate validates a configuration and evaluates every stage: the plan
// of the whole pipeline (no -target applied) before any stage's action is
// decided. It depends only on the configuration, the variables, the salt
// and the content of the files in Plan.Files (and on this build of
// llmlab): never on the store or the ledger.
func Evaluate(cfg *dsl.Config, opts Options) (*Plan, hcl.Diagnostics) {
	if opts.Cache == nil {
		opts.Cache = NewMemCache()
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	p := &planner{cfg: cfg, opts: opts, byID: map[string]*decl{}, files: map[string]string{}, datasets: map[string]string{}, specs: map[string]hcldec.Spec{}, salt: opts.Cache.Salt()}
	vars, diags := dsl.ResolveVariables(cfg, opts.Vars)
	if diags.HasErrors() {
		return nil, diags
	}
	scope, d := dsl.NewScope(cfg, vars)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, diags
	}
	p.scope = scope
	p.diags = diags

	p.collect()
	order := p.order()
	if order == nil && len(p.decls) > 0 {
		return nil, p.diags // a cycle: nothing can be evaluated
	}
	for _, dc := range order {
		p.evaluate(dc)
	}
	p.checkOutputs()
	if p.diags.HasErrors() {
		return nil, p.diags
	}
	plan := &Plan{
		FormatVersion:  FormatVersion,
		Pipeline:       cfg.Filename,
		PipelineDigest: digestBytes(cfg.Source),
		CreatedAt:      opts.Now.UTC(),
		Files:          p.files,
	}
	if abs, err := filepath.Abs(cfg.Filename); err == nil {
		plan.Pipeline = abs
	}
	for _, dc := range order {
		for _, in := range dc.instances {
			plan.Stages = append(plan.Stages, in.plan)
		}
	}
	return plan, p.diags
}

// Finish applies opts.Targets to an evaluated plan and decides each
// stage's action from opts.Cache (and opts.Replace). It changes plan in
// place. filename is the pipeline as named by the user, for messages.
func Finish(plan *Plan, filename string, opts Options) (*Plan, hcl.Diagnostics) {
	if opts.Cache == nil {
		opts.Cache = NewMemCache()
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	p := &planner{cfg: &dsl.Config{Filename: filename}, opts: opts}
	var diags hcl.Diagnostics
	if d := p.applyTargets(plan); d.HasErrors() {
		return nil, append(diags, d...)
	}
	if d := p.decide(plan); d.HasErrors() {
		return nil, append(diags, d...)
	}
	return plan, diags
}

func digestBytes(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func (p *planner) errorf(subject hcl.Range, summary, detail string, args ...any) {
	p.diags = append(p.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: subject.Ptr(),
	})
}

// collect builds the declaration nodes and their references.
func (p *planner) collect() {
	var kinds []string
	for _, k := range stages.Names() {
		if k != generate.Kind.Name() { // datasets use it; stages cannot
			kinds = append(kinds, k)
		}
	}
	for _, s := range p.cfg.Stages {
		p.names = append(p.names, s.Name)
	}
	sort.Strings(p.names)
	for _, ds := range p.cfg.Datasets {
		if ds.Generate == nil {
			v, d := ds.Path.Value(p.scope.EvalContext(nil, cty.NilVal))
			p.diags = append(p.diags, p.scope.CheckRefs(ds.Path.Variables(), dsl.RefCheck{})...)
			if d.HasErrors() {
				p.diags = append(p.diags, d...)
				continue
			}
			var path string
			if err := gocty.FromCtyValue(v, &path); err != nil || path == "" {
				p.errorf(ds.Path.Range(), "Invalid dataset path", "The path of dataset %q must be a non-empty string.", ds.Name)
				continue
			}
			p.datasets[ds.Name] = p.absPath(path)
			continue
		}
		kind, _ := stages.Lookup(generate.Kind.Name())
		if !contains(generate.Tasks, ds.Generate.Task) {
			p.errorf(ds.Generate.TaskRange, "Unknown generated task", "There is no generated task %q.%s The tasks are: %s.",
				ds.Generate.Task, dsl.DidYouMean(ds.Generate.Task, generate.Tasks), strings.Join(generate.Tasks, ", "))
			continue
		}
		dc := &decl{id: "dataset." + ds.Name, name: ds.Name, dataset: ds, kind: kind, body: ds.Generate.Body, rng: ds.DeclRange, deps: map[string]bool{}}
		dc.spec = p.spec(kind)
		dc.refs = hcldec.Variables(dc.body, dc.spec)
		p.add(dc)
	}
	for _, s := range p.cfg.Stages {
		kind, ok := stages.Lookup(s.Kind)
		if !ok || !contains(kinds, s.Kind) {
			p.errorf(s.KindRange, "Unknown stage kind", "There is no stage kind %q.%s The kinds are: %s.", s.Kind, dsl.DidYouMean(s.Kind, kinds), strings.Join(kinds, ", "))
			continue
		}
		dc := &decl{id: "stage." + s.Name, name: s.Name, stage: s, kind: kind, body: s.Config, rng: s.DeclRange, deps: map[string]bool{}, forEach: s.ForEach != nil}
		dc.spec = p.spec(kind)
		dc.refs = hcldec.Variables(dc.body, dc.spec)
		p.add(dc)
	}
	// Edges.
	for _, dc := range p.decls {
		var all []hcl.Traversal
		all = append(all, dc.refs...)
		if dc.stage != nil {
			if dc.stage.ForEach != nil {
				all = append(all, dc.stage.ForEach.Variables()...)
			}
			all = append(all, dc.stage.DependsOn...)
		}
		for _, t := range all {
			switch t.RootName() {
			case "stage":
				ref, _ := dsl.ParseReference(t)
				if ref == nil {
					continue
				}
				if dc.dataset != nil {
					p.errorf(t.SourceRange(), "Stage reference not allowed here", "A generated dataset cannot depend on a stage; it is made before any stage runs.")
					continue
				}
				if _, ok := p.byID["stage."+ref.Name]; !ok {
					if !contains(p.names, ref.Name) {
						p.errorf(t.SourceRange(), "Reference to undeclared stage", "There is no stage named %q.%s Stages are referred to as stage.<name>.<output>.", ref.Name, dsl.DidYouMean(ref.Name, p.names))
					}
					continue
				}
				dc.deps["stage."+ref.Name] = true
			case "dataset":
				ref, _ := dsl.ParseReference(t)
				if ref != nil {
					if _, ok := p.byID["dataset."+ref.Name]; ok {
						dc.deps["dataset."+ref.Name] = true
					}
				}
			}
		}
	}
}

// spec returns kind's decoding spec, built once per kind and plan.
func (p *planner) spec(kind stages.Kind) hcldec.Spec {
	if sp, ok := p.specs[kind.Name()]; ok {
		return sp
	}
	sp := kind.Schema().Spec()
	p.specs[kind.Name()] = sp
	return sp
}

func (p *planner) add(dc *decl) {
	dc.index = len(p.decls)
	p.decls = append(p.decls, dc)
	p.byID[dc.id] = dc
}

func (p *planner) absPath(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.cfg.Dir, path)
}

// order sorts declarations topologically, ties broken by declaration order,
// and reports every cycle with its members in order.
func (p *planner) order() []*decl {
	// Kahn's algorithm with a heap on declaration order: O((V+E) log V),
	// on declaration indexes (graph.StableTopologicalSort rescans every
	// vertex per step, which is quadratic and too slow for 10,000-stage
	// pipelines; the graph library is used only to report cycles).
	n := len(p.decls)
	indeg := make([]int, n)
	succ := make([][]int32, n)
	for _, dc := range p.decls {
		for dep := range dc.deps {
			if dep == dc.id {
				p.errorf(dc.rng, "Stage refers to itself", "%s uses its own outputs. A stage can only use outputs of other stages.", dc.id)
				continue
			}
			d := p.byID[dep]
			succ[d.index] = append(succ[d.index], int32(dc.index))
			indeg[dc.index]++
		}
	}
	h := &declHeap{}
	for _, dc := range p.decls {
		if indeg[dc.index] == 0 {
			heap.Push(h, dc)
		}
	}
	out := make([]*decl, 0, n)
	for h.Len() > 0 {
		dc := heap.Pop(h).(*decl)
		out = append(out, dc)
		for _, next := range succ[dc.index] {
			indeg[next]--
			if indeg[next] == 0 {
				heap.Push(h, p.decls[next])
			}
		}
	}
	if len(out) == n {
		return out
	}
	g := graph.New(graph.StringHash, graph.Directed())
	for _, dc := range p.decls {
		_ = g.AddVertex(dc.id)
	}
	for _, dc := range p.decls {
		for dep := range dc.deps {
			if dep != dc.id {
				_ = g.AddEdge(dep, dc.id)
			}
		}
	}
	adj, _ := g.AdjacencyMap()
	sccs, _ := graph.StronglyConnectedComponents(g)
	var cycles [][]string
	for _, scc := range sccs {
		if len(scc) > 1 {
			cycles = append(cycles, p.cycleOrder(scc, adj))
		}
	}
	sort.Slice(cycles, func(i, j int) bool { return p.byID[cycles[i][0]].index < p.byID[cycles[j][0]].index })
	for _, c := range cycles {
		first := p.byID[c[0]]
		p.errorf(first.rng, "Cycle between stages", "These stages depend on each other in a cycle: %s -> %s. Remove one of the references so that the stages form a graph without cycles.", strings.Join(c, " -> "), c[0])
	}
	return nil
}

// cycleOrder returns the members of a strongly connected component as one
// cycle, starting at the earliest declared member and following the
// shortest path back to it.
func (p *planner) cycleOrder(scc []string, adj map[string]map[string]graph.Edge[string]) []string {
	in := map[string]bool{}
	start := scc[0]
	for _, id := range scc {
		in[id] = true
		if p.byID[id].index < p.byID[start].index {
			start = id
		}
	}
	prev := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{start: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		var nexts []string
		for n := range adj[cur] {
			if in[n] {
				nexts = append(nexts, n)
			}
		}
		sort.Slice(nexts, func(i, j int) bool { return p.byID[nexts[i]].index < p.byID[nexts[j]].index })
		for _, n := range nexts {
			if n == start {
				path := []string{cur}
				for path[0] != start {
					path = append([]string{prev[path[0]]}, path...)
				}
				return path
			}
			if !seen[n] {
				seen[n], prev[n] = true, cur
				queue = append(queue, n)
			}
		}
	}
	return scc
}

type declHeap []*decl

func (h declHeap) Len() int           { return len(h) }
func (h declHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h declHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *declHeap) Push(x any)        { *h = append(*h, x.(*decl)) }
func (h *declHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// stagesValue builds the `stage` root object with only the stages dc
// refers to (so evaluation stays linear in pipeline size).
func (p *planner) stagesValue(dc *decl) cty.Value {
	vals := map[string]cty.Value{}
	for dep := range dc.deps {
		d := p.byID[dep]
		if d.stage != nil {
			vals[d.name] = d.value
		}
	}
	return cty.ObjectVal(vals)
}

func (p *planner) refCheck(dc *decl) dsl.RefCheck {
	return dsl.RefCheck{
		Each:      dc.forEach,
		StageList: p.names,
		Stage: func(name string) ([]string, bool) {
			d, ok := p.byID["stage."+name]
			if !ok {
				return nil, false
			}
			return d.outputs, true
		},
	}
}

func (p *planner) failed(dc *decl) bool {
	for dep := range dc.deps {
		if p.byID[dep].failed {
			return true
		}
	}
	return false
}

// evaluate expands a declaration into instances and plans each.
func (p *planner) evaluate(dc *decl) {
	dc.value = cty.DynamicVal
	if p.failed(dc) {
		dc.failed = true
		return
	}
	before := len(p.diags.Errs())
	rc := p.refCheck(dc)
	if dc.dataset != nil {
		rc.Stage = nil
	}
	p.diags = append(p.diags, p.scope.CheckRefs(dc.refs, rc)...)
	if dc.stage != nil {
		for _, e := range dc.stage.CommonExprs() {
			p.diags = append(p.diags, p.scope.CheckRefs(e.Variables(), dsl.RefCheck{Each: dc.forEach})...)
		}
	}
	if len(p.diags.Errs()) > before {
		dc.failed = true
		return
	}
	stagesVal := p.stagesValue(dc)

	type iter struct {
		addr dsl.StageAddr
		each *dsl.Each
	}
	var iters []iter
	if dc.stage != nil && dc.stage.ForEach != nil {
		p.diags = append(p.diags, p.scope.CheckRefs(dc.stage.ForEach.Variables(), rc)...)
		fe, d := dc.stage.ForEach.Value(p.scope.EvalContext(nil, stagesVal))
		p.diags = append(p.diags, d...)
		if d.HasErrors() {
			dc.failed = true
			return
		}
		keys, each, err := forEachItems(fe)
		if err != "" {
			p.errorf(dc.stage.ForEach.Range(), "Invalid for_each argument", "%s", err)
			dc.failed = true
			return
		}
		for i, k := range keys {
			iters = append(iters, iter{addr: dsl.StageAddr{Name: dc.name, Key: k, HasKey: true}, each: each[i]})
		}
	} else {
		iters = []iter{{addr: dsl.StageAddr{Name: dc.name}}}
	}

	instVals := map[string]cty.Value{}
	for _, it := range iters {
		in := p.plan(dc, it.addr, it.each, stagesVal)
		if in == nil {
			dc.failed = true
			continue
		}
		dc.instances = append(dc.instances, in)
		if dc.outputs == nil {
			dc.outputs = in.outputs
		}
		obj := map[string]cty.Value{"metrics": cty.DynamicVal}
		for _, o := range in.outputs {
			obj[o] = dsl.ArtifactVal(dsl.ArtifactRef{Stage: it.addr, Output: o})
		}
		if dc.dataset != nil {
			dc.value = cty.ObjectVal(obj)
		} else if it.addr.HasKey {
			instVals[it.addr.Key] = cty.ObjectVal(obj)
		} else {
			dc.value = cty.ObjectVal(obj)
		}
	}
	if dc.forEach {
		dc.value = cty.ObjectVal(instVals)
	}
}

// forEachItems turns a for_each value into sorted keys and each values.
func forEachItems(v cty.Value) ([]string, []*dsl.Each, string) {
	if v.IsMarked() {
		return nil, nil, "for_each cannot use sensitive values: instance keys appear in addresses and output."
	}
	// As in Terraform, the keys must be known; a map's values may hold
	// metrics (known only after apply), so for_each = stage.x works, and
	// a setting that uses such a value is reported where it is used.
	if !v.IsKnown() || (v.Type().IsSetType() && !v.IsWhollyKnown()) {
		return nil, nil, "for_each must be known when planning; it cannot use metrics or other values known only after apply."
	}
	if v.IsNull() {
		return nil, nil, "for_each must be a map, an object or a set of strings, not null."
	}
	ty := v.Type()
	var keys []string
	var each []*dsl.Each
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			keys = append(keys, k.AsString())
			each = append(each, &dsl.Each{Key: k, Value: ev})
		}
	case ty.IsSetType():
		if !ty.ElementType().Equals(cty.String) {
			return nil, nil, "for_each over a set needs a set of strings; use toset([...]) of strings or a map."
		}
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			keys = append(keys, ev.AsString())
			each = append(each, &dsl.Each{Key: ev, Value: ev})
		}
	default:
		return nil, nil, fmt.Sprintf("for_each must be a map, an object or a set of strings; this is %s. A list can be turned into a set with toset(...).", ty.FriendlyName())
	}
	// ElementIterator already yields maps, objects and sets in key order.
	return keys, each, ""
}
