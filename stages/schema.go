package stages

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// RefMode says whether an attribute takes artifact references.
type RefMode int

const (
	NoRef     RefMode = iota // a plain value
	Ref                      // a reference: dataset.x or stage.x.out
	RefOrPath                // a reference, or a path string relative to the pipeline file
	// MapOfRefOrPath is a map whose values are references or path strings
	// (exec's inputs).
	MapOfRefOrPath
)

// Attr is one attribute of a kind's schema.
type Attr struct {
	Name     string
	Type     cty.Type // ignored for reference attributes
	Required bool
	Default  cty.Value // cty.NilVal: none (null when absent)
	Ref      RefMode
	Enum     []string // allowed string values, if any
	Doc      string
}

// Block is a nested settings block (one per stage, never repeated).
type Block struct {
	Name     string
	Required bool
	Attrs    []Attr
	Blocks   []Block
	Doc      string
}

// Schema is a kind's settings: top-level attributes and blocks.
type Schema struct {
	Attrs  []Attr
	Blocks []Block
}

// Spec builds the hcldec spec that decodes a stage body.
func (s *Schema) Spec() hcldec.Spec {
	return objectSpec(s.Attrs, s.Blocks)
}

func objectSpec(attrs []Attr, blocks []Block) hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec{}
	for _, a := range attrs {
		ty := a.Type
		if a.Ref != NoRef {
			ty = cty.DynamicPseudoType
		}
		var as hcldec.Spec = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
		if a.Default != cty.NilVal {
			as = &hcldec.DefaultSpec{Primary: as, Default: &hcldec.LiteralSpec{Value: a.Default}}
		}
		spec[a.Name] = as
	}
	for _, b := range blocks {
		spec[b.Name] = &hcldec.BlockSpec{TypeName: b.Name, Required: b.Required, Nested: objectSpec(b.Attrs, b.Blocks)}
	}
	return spec
}

// Defaults returns the value of a block that was left out: its attributes at
// their defaults (null where there is none).
func (b *Block) Defaults() cty.Value {
	return defaultsOf(b.Attrs, b.Blocks)
}

func defaultsOf(attrs []Attr, blocks []Block) cty.Value {
	vals := map[string]cty.Value{}
	for _, a := range attrs {
		switch {
		case a.Default != cty.NilVal:
			vals[a.Name] = a.Default
		case a.Ref != NoRef:
			vals[a.Name] = cty.NullVal(cty.DynamicPseudoType)
		default:
			vals[a.Name] = cty.NullVal(a.Type)
		}
	}
	for _, b := range blocks {
		vals[b.Name] = cty.NullVal(hcldec.ImpliedType(objectSpec(b.Attrs, b.Blocks)))
	}
	return cty.ObjectVal(vals)
}

// Walk calls fn for every attribute in the schema with its dotted path.
func (s *Schema) Walk(fn func(path string, a *Attr)) {
	walkAttrs("", s.Attrs, s.Blocks, fn)
}

func walkAttrs(prefix string, attrs []Attr, blocks []Block, fn func(string, *Attr)) {
	for i := range attrs {
		fn(prefix+attrs[i].Name, &attrs[i])
	}
	for _, b := range blocks {
		walkAttrs(prefix+b.Name+".", b.Attrs, b.Blocks, fn)
	}
}

// Find returns the block with the given name.
func (s *Schema) Find(block string) *Block {
	for i := range s.Blocks {
		if s.Blocks[i].Name == block {
			return &s.Blocks[i]
		}
	}
	return nil
}

// Helpers that keep kind schemas short.

func Num(name string, def float64, doc string) Attr {
	return Attr{Name: name, Type: cty.Number, Default: cty.NumberFloatVal(def), Doc: doc}
}
func NumOpt(name, doc string) Attr { return Attr{Name: name, Type: cty.Number, Doc: doc} }
func NumReq(name, doc string) Attr {
	return Attr{Name: name, Type: cty.Number, Required: true, Doc: doc}
}
func Str(name, def, doc string, enum ...string) Attr {
	a := Attr{Name: name, Type: cty.String, Doc: doc, Enum: enum}
	if def != "" {
		a.Default = cty.StringVal(def)
	}
	return a
}
func Bool(name string, def bool, doc string) Attr {
	return Attr{Name: name, Type: cty.Bool, Default: cty.BoolVal(def), Doc: doc}
}
func RefAttr(name string, required bool, doc string) Attr {
	return Attr{Name: name, Ref: Ref, Required: required, Doc: doc}
}
func RefOrPathAttr(name string, required bool, doc string) Attr {
	return Attr{Name: name, Ref: RefOrPath, Required: required, Doc: doc}
}

// TrainingBlock is the training block shared by the training kinds.
func TrainingBlock(lr float64) Block {
	return Block{Name: "training", Doc: "optimisation settings", Attrs: []Attr{
		Num("steps", 1000, "optimiser steps"),
		Num("batch_size", 12, "sequences per step"),
		Num("learning_rate", lr, "peak learning rate"),
		NumOpt("min_lr", "final learning rate of the cosine decay (default learning_rate/10)"),
		Num("warmup_steps", 100, "linear warm-up steps"),
		Num("weight_decay", 0.1, "AdamW decoupled weight decay (2-D weights only)"),
		Num("grad_clip", 1.0, "global gradient-norm clip (0: off)"),
		Num("seed", 0, "random seed"),
		Num("eval_every", 250, "steps between evaluations"),
		Num("eval_batches", 20, "batches per evaluation"),
		Num("checkpoint_every", 500, "steps between resumable checkpoints"),
	}}
}

// String names a RefMode for docs.
func (m RefMode) String() string {
	switch m {
	case Ref:
		return "reference"
	case RefOrPath:
		return "reference or path"
	case MapOfRefOrPath:
		return "map of references or paths"
	}
	return "value"
}
