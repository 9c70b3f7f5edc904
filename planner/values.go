package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/llmlab/llmlab/dsl"
	"github.com/zclconf/go-cty/cty"
)

// Redacted is how a sensitive value appears in shown settings.
const Redacted = "(sensitive)"

// converted is a stage's settings in three forms.
type converted struct {
	shown   map[string]any             // sensitive values redacted
	key     map[string]any             // sensitive values as salted hashes
	secrets map[string]any             // path -> clear sensitive value
	refs    map[string]dsl.ArtifactRef // settings path -> reference
	strs    map[string]string          // settings path -> string (for ref-or-path attributes)
	unknown []string                   // paths whose value is not known at plan time
}

// convert walks a settings value. refPaths says which paths may hold path
// strings standing for inputs (their string values are recorded in strs).
func convert(v cty.Value, salt []byte) *converted {
	c := &converted{secrets: map[string]any{}, refs: map[string]dsl.ArtifactRef{}, strs: map[string]string{}}
	shown, key := c.walk("", v, salt, false)
	c.shown, _ = shown.(map[string]any)
	c.key, _ = key.(map[string]any)
	if c.shown == nil {
		c.shown, c.key = map[string]any{}, map[string]any{}
	}
	return c
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (c *converted) walk(path string, v cty.Value, salt []byte, sensitive bool) (shown, key any) {
	if v.IsMarked() {
		var marks cty.ValueMarks
		v, marks = v.Unmark()
		if _, ok := marks[dsl.SensitiveMark]; ok {
			sensitive = true
		}
	}
	if sensitive && v.IsWhollyKnown() {
		_, clear := c.walk(path, v, salt, false)
		c.secrets[path] = clear
		b, _ := json.Marshal(clear)
		h := sha256.New()
		h.Write(salt)
		h.Write(b)
		return Redacted, "(sensitive:" + hex.EncodeToString(h.Sum(nil)) + ")"
	}
	if !v.IsKnown() {
		c.unknown = append(c.unknown, path)
		return "(known after apply)", "(unknown)"
	}
	if v.IsNull() {
		return nil, nil
	}
	ty := v.Type()
	switch {
	case ty.Equals(dsl.ArtifactType):
		r, _ := dsl.AsArtifact(v)
		c.refs[path] = r
		return r.String(), r.String()
	case ty == cty.String:
		c.strs[path] = v.AsString()
		return v.AsString(), v.AsString()
	case ty == cty.Number:
		n := numberJSON(v)
		return n, n
	case ty == cty.Bool:
		return v.True(), v.True()
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		var shownL, keyL []any
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			_, ev := it.Element()
			s, k := c.walk(path+"["+strconv.Itoa(i)+"]", ev, salt, sensitive)
			shownL, keyL = append(shownL, s), append(keyL, k)
		}
		if shownL == nil {
			shownL, keyL = []any{}, []any{}
		}
		return shownL, keyL
	case ty.IsMapType() || ty.IsObjectType():
		shownM, keyM := map[string]any{}, map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			name := k.AsString()
			s, kk := c.walk(joinPath(path, name), ev, salt, sensitive)
			shownM[name], keyM[name] = s, kk
		}
		return shownM, keyM
	}
	return fmt.Sprintf("%#v", v), fmt.Sprintf("%#v", v)
}

// numberJSON renders a number exactly and canonically: integers without an
// exponent, others in the shortest exact form.
func numberJSON(v cty.Value) json.Number {
	bf := v.AsBigFloat()
	if bf.IsInt() {
		i, _ := bf.Int(nil)
		return json.Number(i.String())
	}
	f, _ := bf.Float64()
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// flatten maps every leaf of a JSON-shaped value to its canonical text.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[prefix] = "{}"
		}
		for k, e := range x {
			flatten(joinPath(prefix, k), e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		out[prefix] = string(canonicalJSON(x))
	}
}

// diffSettings lists the leaves that differ between old and new key
// settings, sorted by path. Sensitive values never appear in clear.
func diffSettings(old, new map[string]any) []Reason {
	a, b := map[string]string{}, map[string]string{}
	flatten("", normalizeJSON(old), a)
	flatten("", normalizeJSON(new), b)
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	var out []Reason
	for p := range paths {
		if a[p] == b[p] {
			continue
		}
		out = append(out, Reason{Kind: ReasonSetting, Path: p, Old: showLeaf(a[p]), New: showLeaf(b[p])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func showLeaf(s string) string {
	switch {
	case s == "":
		return "(none)"
	case strings.HasPrefix(s, `"(sensitive:`):
		return Redacted
	}
	return s
}

// normalizeJSON round-trips through JSON so that values from the ledger and
// fresh ones compare equal (json.Number vs float64).
func normalizeJSON(v any) any {
	b := canonicalJSON(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	_ = dec.Decode(&out)
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// setPath sets a value at a settings path such as "env.TOKEN" or
// "command[3]".
func setPath(root map[string]any, path string, val any) {
	var cur any = root
	parts := splitPath(path)
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p.name] = val
				return
			}
			cur = c[p.name]
		case []any:
			if p.index < 0 || p.index >= len(c) {
				return
			}
			if last {
				c[p.index] = val
				return
			}
			cur = c[p.index]
		default:
			return
		}
	}
}

type pathPart struct {
	name  string
	index int
}

func splitPath(path string) []pathPart {
	var out []pathPart
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			out = append(out, pathPart{name: name, index: -1})
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			n, _ := strconv.Atoi(idx)
			out = append(out, pathPart{index: n})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}
