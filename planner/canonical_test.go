package planner

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
)

// canonicalJSON's direct encoder must give exactly encoding/json's bytes:
// cache keys and the ledger's settings are made of them.
func TestCanonicalJSONMatchesEncodingJSON(t *testing.T) {
	cases := []any{
		nil, true, false, "", "plain", `quote"`, `back\slash`, "tab\t", "nl\n", "ctl\x01", "\x7f", "é", "<html>&", "\u2028",
		"invalid \xff utf8", 0, -3, 1 << 40,
		json.Number("0"), json.Number("-1.5e+10"), json.Number("12"), json.Number(""), json.Number("01"), json.Number("1."), json.Number("x"),
		1.5, float32(2), int64(7), uint8(3),
		[]any{}, []any(nil), []any{1, "a", nil, []any{true}},
		map[string]any{}, map[string]any(nil), map[string]any{"b": 1, "a": []any{"x"}, "c": map[string]any{"z": nil, "y": json.Number("3")}},
		map[string]any{"k\"ey": 1}, map[string]any{"é": "v"},
		map[string]string{}, map[string]string(nil), map[string]string{"in": "key:abc/out", "a": "sha256:00"},
		map[string]string{"x": "new\nline"},
		map[string]any{"settings": map[string]any{"command": []any{"sh", "-c", "echo 1 > out"}}, "inputs": map[string]string{"inputs.up": "key:1/out"}, "kind_version": 1},
		[]string{"typed", "slice"}, struct{ A int }{1},
	}
	for i, c := range cases {
		if got, want := string(canonicalJSON(c)), string(stdJSON(c)); got != want {
			t.Errorf("case %d (%#v): canonicalJSON = %s, encoding/json = %s", i, c, got, want)
		}
	}
}

func TestCanonicalJSONRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	strs := []string{"", "a", "sh", "-c", "cat inputs/up > /dev/null; echo 1 > out", `q"`, "\\", "\t", "ü", "\x00", "(sensitive:ab)", "<&>"}
	var gen func(depth int) any
	gen = func(depth int) any {
		n := r.Intn(9)
		if depth > 3 {
			n = r.Intn(5)
		}
		switch n {
		case 0:
			return nil
		case 1:
			return r.Intn(2) == 0
		case 2:
			return strs[r.Intn(len(strs))]
		case 3:
			return json.Number(fmt.Sprint(r.Intn(2000) - 1000))
		case 4:
			return json.Number(fmt.Sprintf("%g", r.NormFloat64()*1e6))
		case 5, 6:
			l := make([]any, r.Intn(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case 7:
			m := map[string]string{}
			for range r.Intn(4) {
				m[strs[r.Intn(len(strs))]] = strs[r.Intn(len(strs))]
			}
			return m
		default:
			m := map[string]any{}
			for range r.Intn(5) {
				m[strs[r.Intn(len(strs))]] = gen(depth + 1)
			}
			return m
		}
	}
	for i := 0; i < 5000; i++ {
		v := gen(0)
		if got, want := string(canonicalJSON(v)), string(stdJSON(v)); got != want {
			t.Fatalf("value %#v: canonicalJSON = %s, encoding/json = %s", v, got, want)
		}
	}
}

func FuzzCanonicalJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"", "\\", "\n", "é", "\xff", "\u2028", "<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, map[string]any{s: s}, map[string]string{s: s}, []any{s}, json.Number(s)} {
			if got, want := string(canonicalJSON(v)), string(stdJSON(v)); got != want {
				t.Fatalf("%#v: canonicalJSON = %q, encoding/json = %q", v, got, want)
			}
		}
	})
}
