package planner

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/stages"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

// plan decodes one instance's settings and computes its inputs and key.
func (p *planner) plan(dc *decl, addr dsl.StageAddr, each *dsl.Each, stagesVal cty.Value) *instance {
	ctx := p.scope.EvalContext(each, stagesVal)
	val, diags := hcldec.Decode(dc.body, dc.spec, ctx)
	p.diags = append(p.diags, diags...)
	schema := dc.kind.Schema()
	if val != cty.NilVal && val.IsKnown() {
		val = fillDefaults(val, schema.Attrs, schema.Blocks)
		if !p.checkSchema(dc, val) {
			return nil
		}
	}
	if diags.HasErrors() {
		return nil
	}
	address := addr.String()
	if dc.dataset != nil {
		address = dc.id
		// The task is a setting like any other.
		m := val.AsValueMap()
		m["task"] = cty.StringVal(dc.dataset.Generate.Task)
		val = cty.ObjectVal(m)
	}
	conv := convert(val, p.salt)
	if len(conv.unknown) > 0 {
		p.errorf(settingRange(dc.body, conv.unknown[0], dc.rng), "Setting known only after apply", "%s: the setting %s uses a value known only after apply (such as another stage's metrics). Stage settings must be known when planning; use metrics in output blocks instead.", address, strings.Join(conv.unknown, ", "))
		return nil
	}
	sp := &StagePlan{
		Address:     address,
		Kind:        dc.kind.Name(),
		KindVersion: dc.kind.Version(),
		Settings:    conv.shown,
		KeySettings: conv.key,
		KeyInputs:   map[string]string{},
		Cache:       true,
		Reasons:     []Reason{},
		Inputs:      []Input{},
	}
	if len(conv.secrets) > 0 {
		sp.Secrets = conv.secrets
	}
	if kp, ok := dc.kind.(stages.KeyPruner); ok {
		kp.PruneKey(sp.KeySettings)
	}
	if f, ok := dc.kind.(stages.Fingerprinter); ok {
		sp.Fingerprint = f.Fingerprint()
	}
	if dc.stage != nil && !p.common(dc.stage, ctx, sp) {
		return nil
	}
	sp.Outputs = dc.kind.Outputs(sp.Settings)
	if sp.Outputs == nil {
		sp.Outputs = []string{}
	}

	// Inputs: references, and path strings where the schema allows them.
	deps := map[string]bool{}
	refPaths := pathAttrs(schema)
	for path, ref := range conv.refs {
		in := Input{Name: path, Ref: ref.String()}
		if ref.IsDataset() {
			if abs, ok := p.datasets[ref.Dataset]; ok {
				in.Path = abs
				in.Digest = p.digest(abs, dc.rng)
				if in.Digest == "" {
					return nil
				}
				sp.KeyInputs[path] = in.Digest
			} else {
				up := p.byID["dataset."+ref.Dataset]
				if up == nil || len(up.instances) == 0 {
					return nil
				}
				in.Stage, in.Output = up.instances[0].plan.Address, "data"
				sp.KeyInputs[path] = "key:" + up.instances[0].plan.Key + "/data"
			}
		} else {
			up := p.findInstance(ref.Stage)
			if up == nil {
				p.errorf(dc.rng, "Reference to unknown stage instance", "%s refers to %s, which does not exist.", address, ref)
				return nil
			}
			in.Stage, in.Output = up.plan.Address, ref.Output
			sp.KeyInputs[path] = "key:" + up.plan.Key + "/" + ref.Output
		}
		if in.Stage != "" {
			deps[in.Stage] = true
		}
		sp.Inputs = append(sp.Inputs, in)
	}
	for path, s := range conv.strs {
		if !matchesAny(path, refPaths) {
			continue
		}
		abs := p.absPath(s)
		in := Input{Name: path, Ref: s, Path: abs, Digest: p.digest(abs, dc.rng)}
		if in.Digest == "" {
			return nil
		}
		sp.KeyInputs[path] = in.Digest
		sp.Inputs = append(sp.Inputs, in)
	}
	sort.Slice(sp.Inputs, func(i, j int) bool { return sp.Inputs[i].Name < sp.Inputs[j].Name })

	// Edges without data: depends_on, and stage references in settings that
	// are not artifacts (none survive the known-value check today, but
	// whole-stage references in depends_on do).
	if dc.stage != nil {
		for _, t := range dc.stage.DependsOn {
			ref, _ := dsl.ParseReference(t)
			if up := p.byID["stage."+ref.Name]; up != nil {
				for _, in := range up.instances {
					deps[in.plan.Address] = true
				}
			}
		}
	}
	sp.DependsOn = make([]string, 0, len(deps))
	for d := range deps {
		sp.DependsOn = append(sp.DependsOn, d)
	}
	sort.Strings(sp.DependsOn)
	sp.Key = computeKey(sp)
	return &instance{addr: addr, plan: sp, outputs: sp.Outputs}
}

func (p *planner) digest(abs string, rng hcl.Range) string {
	if d, ok := p.files[abs]; ok {
		return d
	}
	d, err := p.opts.Cache.Digest(abs)
	if err != nil {
		p.errorf(rng, "Cannot read input", "%s. Inputs given as paths are relative to the pipeline file's directory (%s).", err, p.cfg.Dir)
		return ""
	}
	p.files[abs] = d
	return d
}

func (p *planner) findInstance(a dsl.StageAddr) *instance {
	dc := p.byID["stage."+a.Name]
	if dc == nil {
		return nil
	}
	for _, in := range dc.instances {
		if in.addr == a {
			return in
		}
	}
	return nil
}

// computeKey is the cache key: SHA-256 of the kind, its version, the
// backend fingerprint, the canonical settings and the input identities.
// Resources, retries, timeout, paths, host and time never enter it.
func computeKey(sp *StagePlan) string {
	b := canonicalJSON(map[string]any{
		"kind":         sp.Kind,
		"kind_version": sp.KindVersion,
		"fingerprint":  sp.Fingerprint,
		"settings":     sp.KeySettings,
		"inputs":       sp.KeyInputs,
	})
	return digestBytes(b)[len("sha256:"):]
}

// common evaluates the common settings: resources, retries, timeout, cache.
func (p *planner) common(s *dsl.Stage, ctx *hcl.EvalContext, sp *StagePlan) bool {
	ok := true
	num := func(e hcl.Expression, name string, into *int) {
		if e == nil {
			return
		}
		v, d := e.Value(ctx)
		p.diags = append(p.diags, d...)
		if d.HasErrors() {
			ok = false
			return
		}
		v, _ = v.Unmark()
		if err := gocty.FromCtyValue(v, into); err != nil || *into < 0 {
			p.errorf(e.Range(), "Invalid "+name, "%s must be a whole number of zero or more.", name)
			ok = false
		}
	}
	str := func(e hcl.Expression, name string, into *string, check func(string) error) {
		if e == nil {
			return
		}
		v, d := e.Value(ctx)
		p.diags = append(p.diags, d...)
		if d.HasErrors() {
			ok = false
			return
		}
		v, _ = v.Unmark()
		if err := gocty.FromCtyValue(v, into); err != nil {
			p.errorf(e.Range(), "Invalid "+name, "%s must be a string.", name)
			ok = false
			return
		}
		if check != nil {
			if err := check(*into); err != nil {
				p.errorf(e.Range(), "Invalid "+name, "%s", err)
				ok = false
			}
		}
	}
	duration := func(s string) error {
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q is not a duration; write it like \"30m\", \"1h30m\" or \"90s\"", s)
		}
		return nil
	}
	num(s.Retries, "retries", &sp.Retries)
	str(s.Timeout, "timeout", &sp.Timeout, duration)
	if s.Cache != nil {
		v, d := s.Cache.Value(ctx)
		p.diags = append(p.diags, d...)
		if !d.HasErrors() {
			if err := gocty.FromCtyValue(v, &sp.Cache); err != nil {
				p.errorf(s.Cache.Range(), "Invalid cache", "cache must be true or false.")
				ok = false
			}
		}
	}
	if r := s.Resources; r != nil {
		num(r.CPUs, "resources.cpus", &sp.Resources.CPUs)
		num(r.GPUs, "resources.gpus", &sp.Resources.GPUs)
		str(r.Memory, "resources.memory", &sp.Resources.Memory, nil)
		str(r.Time, "resources.time", &sp.Resources.Time, duration)
		str(r.Partition, "resources.partition", &sp.Resources.Partition, nil)
	}
	return ok
}

// fillDefaults replaces absent (null) optional blocks with their defaults,
// so every stage's settings have the same shape and the key never depends
// on whether a default was written out.
func fillDefaults(v cty.Value, attrs []stages.Attr, blocks []stages.Block) cty.Value {
	if v.IsNull() || !v.Type().IsObjectType() {
		return v
	}
	m := v.AsValueMap()
	if m == nil {
		m = map[string]cty.Value{}
	}
	for _, b := range blocks {
		bv, ok := m[b.Name]
		if !ok || bv.IsNull() {
			bv = b.Defaults()
		}
		m[b.Name] = fillDefaults(bv, b.Attrs, b.Blocks)
	}
	return cty.ObjectVal(m)
}

// checkSchema validates references, ref-or-path attributes and enums.
func (p *planner) checkSchema(dc *decl, val cty.Value) bool {
	ok := true
	schema := dc.kind.Schema()
	schema.Walk(func(path string, a *stages.Attr) {
		v := lookupPath(val, path)
		if v == cty.NilVal || v.IsNull() {
			return
		}
		// The source range is looked up only for an error: finding it
		// re-reads the body, and most settings are valid.
		rng := func() hcl.Range { return p.attrRange(dc.body, path) }
		uv, _ := v.Unmark()
		isRef := uv.Type().Equals(dsl.ArtifactType)
		switch a.Ref {
		case stages.Ref:
			if !isRef && uv.IsKnown() {
				p.errorf(rng(), "Invalid reference", "%s must be a reference to an artifact, such as stage.prep.train or dataset.corpus; got %s.", path, uv.Type().FriendlyName())
				ok = false
			}
		case stages.RefOrPath:
			if !isRef && uv.IsKnown() && uv.Type() != cty.String {
				p.errorf(rng(), "Invalid input", "%s must be a reference (stage.x.out, dataset.x) or a path string relative to the pipeline file; got %s.", path, uv.Type().FriendlyName())
				ok = false
			}
		case stages.MapOfRefOrPath:
			if !uv.Type().IsObjectType() && !uv.Type().IsMapType() {
				p.errorf(rng(), "Invalid inputs", "%s must be a map of names to references or paths, as in { base = stage.base.model, script = \"train.py\" }.", path)
				ok = false
				return
			}
			for it := uv.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				ev, _ = ev.Unmark()
				if !ev.Type().Equals(dsl.ArtifactType) && ev.Type() != cty.String {
					p.errorf(rng(), "Invalid input", "%s.%s must be a reference or a path string; got %s.", path, k.AsString(), ev.Type().FriendlyName())
					ok = false
				}
			}
		}
		if len(a.Enum) > 0 && uv.Type() == cty.String && uv.IsKnown() && !contains(a.Enum, uv.AsString()) {
			p.errorf(rng(), "Invalid value", "%s must be one of %s; got %q.%s", path, quoteAll(a.Enum), uv.AsString(), dsl.DidYouMean(uv.AsString(), a.Enum))
			ok = false
		}
	})
	return ok
}

func quoteAll(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

func lookupPath(v cty.Value, path string) cty.Value {
	for _, part := range strings.Split(path, ".") {
		if v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute(part) {
			return cty.NilVal
		}
		v = v.GetAttr(part)
	}
	return v
}

// attrRange finds the source range of an attribute at a dotted path.
func (p *planner) attrRange(body hcl.Body, path string) hcl.Range {
	parts := strings.Split(path, ".")
	for i, part := range parts {
		if i == len(parts)-1 {
			content, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: part}}})
			if a, ok := content.Attributes[part]; ok {
				return a.Expr.Range()
			}
			break
		}
		content, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: part}}})
		if len(content.Blocks) == 0 {
			break
		}
		body = content.Blocks[0].Body
	}
	return body.MissingItemRange()
}

// pathAttrs lists the settings paths whose string values are file inputs.
func pathAttrs(s *stages.Schema) []string {
	var out []string
	s.Walk(func(path string, a *stages.Attr) {
		switch a.Ref {
		case stages.RefOrPath:
			out = append(out, path)
		case stages.MapOfRefOrPath:
			out = append(out, path+".*")
		}
	})
	return out
}

func matchesAny(path string, patterns []string) bool {
	for _, pat := range patterns {
		if pat == path {
			return true
		}
		if prefix, ok := strings.CutSuffix(pat, "*"); ok && strings.HasPrefix(path, prefix) && !strings.Contains(path[len(prefix):], ".") {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// settingRange finds the expression of the setting at path (such as
// "training.steps" or "command[1]") in body, so that a diagnostic points at
// it; otherwise it returns def.
func settingRange(body hcl.Body, path string, def hcl.Range) hcl.Range {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return def
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		if j := strings.IndexByte(part, '['); j >= 0 {
			part = part[:j]
		}
		if a, ok := b.Attributes[part]; ok {
			return a.Expr.Range()
		}
		if i == len(parts)-1 {
			break
		}
		var next *hclsyntax.Body
		for _, blk := range b.Blocks {
			if blk.Type == part {
				next = blk.Body
				break
			}
		}
		if next == nil {
			break
		}
		b = next
	}
	return def
}
