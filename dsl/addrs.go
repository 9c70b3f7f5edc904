package dsl

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// StageAddr names one stage instance: stage.<name> or stage.<name>["key"]
// under for_each.
type StageAddr struct {
	Name   string
	Key    string
	HasKey bool
}

func (a StageAddr) String() string {
	if a.HasKey {
		return fmt.Sprintf("stage.%s[%s]", a.Name, strconv.Quote(a.Key))
	}
	return "stage." + a.Name
}

// Less orders addresses by name, then key.
func (a StageAddr) Less(b StageAddr) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.HasKey != b.HasKey {
		return !a.HasKey
	}
	return a.Key < b.Key
}

// ArtifactRef is what a reference to an artifact evaluates to: either a
// dataset (dataset.<name>) or a named output of a stage instance
// (stage.<name>.<output>). It travels through HCL evaluation as a cty capsule,
// so a reference stays a typed address and is never confused with a string.
type ArtifactRef struct {
	Dataset string    // set for dataset.<name>
	Stage   StageAddr // set for stage outputs
	Output  string
}

func (r ArtifactRef) IsDataset() bool { return r.Dataset != "" }

func (r ArtifactRef) String() string {
	if r.IsDataset() {
		return "dataset." + r.Dataset
	}
	return r.Stage.String() + "." + r.Output
}

// ArtifactType is the cty capsule type carrying an ArtifactRef.
var ArtifactType = cty.CapsuleWithOps("artifact", reflect.TypeOf(ArtifactRef{}), &cty.CapsuleOps{
	GoString: func(v interface{}) string { return v.(*ArtifactRef).String() },
	TypeGoString: func(reflect.Type) string {
		return "dsl.ArtifactType"
	},
	Equals: func(a, b interface{}) cty.Value {
		return cty.BoolVal(*a.(*ArtifactRef) == *b.(*ArtifactRef))
	},
	RawEquals: func(a, b interface{}) bool { return *a.(*ArtifactRef) == *b.(*ArtifactRef) },
})

// ArtifactVal wraps a reference as a cty value.
func ArtifactVal(r ArtifactRef) cty.Value { return cty.CapsuleVal(ArtifactType, &r) }

// AsArtifact returns the reference inside v, if v is a known artifact value.
func AsArtifact(v cty.Value) (ArtifactRef, bool) {
	v, _ = v.Unmark()
	if v.IsNull() || !v.IsKnown() || !v.Type().Equals(ArtifactType) {
		return ArtifactRef{}, false
	}
	return *v.EncapsulatedValue().(*ArtifactRef), true
}

// StageRef is a reference found in an expression to a stage: the whole
// stage (all instances), one instance, or one output of it.
type StageRef struct {
	Name   string
	Key    string
	HasKey bool
	Range  hcl.Range
}

// RefTarget classifies the root of a traversal.
type RefTarget int

const (
	RefOther RefTarget = iota
	RefVar
	RefLocal
	RefDataset
	RefStage
	RefEach
	RefPath
)

// Reference is a parsed reference from a traversal in the configuration.
type Reference struct {
	Target RefTarget
	Name   string // var/local/dataset/stage name; each/path attribute
	Key    string // stage instance key, when HasKey
	HasKey bool
	Attr   string // the attribute after the name/key (stage output), if any
	Range  hcl.Range
}

// ParseReference classifies a traversal such as var.lr, stage.x["k"].model.
// It returns diagnostics only for malformed references of known roots.
func ParseReference(t hcl.Traversal) (*Reference, hcl.Diagnostics) {
	root := t.RootName()
	ref := &Reference{Range: t.SourceRange()}
	switch root {
	case "var":
		ref.Target = RefVar
	case "local":
		ref.Target = RefLocal
	case "dataset":
		ref.Target = RefDataset
	case "stage":
		ref.Target = RefStage
	case "each":
		ref.Target = RefEach
	case "path":
		ref.Target = RefPath
	default:
		return &Reference{Target: RefOther, Name: root, Range: t.SourceRange()}, nil
	}
	if len(t) < 2 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid reference",
			Detail:   fmt.Sprintf("A reference to %q must name an object, as in %s.<name>.", root, root),
			Subject:  t.SourceRange().Ptr(),
		}}
	}
	name, ok := t[1].(hcl.TraverseAttr)
	if !ok {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid reference",
			Detail:   fmt.Sprintf("A reference to %q must be followed by a name, as in %s.<name>.", root, root),
			Subject:  t[1].SourceRange().Ptr(),
		}}
	}
	ref.Name = name.Name
	rest := t[2:]
	if ref.Target == RefStage && len(rest) > 0 {
		if idx, ok := rest[0].(hcl.TraverseIndex); ok {
			k := idx.Key
			if k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
				ref.Key, ref.HasKey = k.AsString(), true
			} else if k.Type() == cty.Number && k.IsKnown() && !k.IsNull() {
				ref.Key, ref.HasKey = k.AsBigFloat().Text('f', -1), true
			}
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		if a, ok := rest[0].(hcl.TraverseAttr); ok {
			ref.Attr = a.Name
		}
	}
	return ref, nil
}
