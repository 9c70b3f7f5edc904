package planner

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// canonicalJSON encodes v with sorted keys and no insignificant space,
// exactly as encoding/json does (without HTML escaping). Cache keys and
// the ledger's settings are made of it, so its bytes must never change:
// the common shapes (maps, lists, plain strings, numbers, booleans) are
// written directly, and anything else falls back to encoding/json.
func canonicalJSON(v any) []byte {
	if b, ok := appendCanonical(make([]byte, 0, 256), v); ok {
		return b
	}
	return stdJSON(v)
}

// stdJSON is canonicalJSON through encoding/json.
func stdJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// appendCanonical appends v's encoding to b; ok is false for a value it
// does not handle exactly like encoding/json (the caller then falls back).
func appendCanonical(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case string:
		return appendPlainString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case json.Number:
		if x == "" || !validNumber(string(x)) {
			return b, false
		}
		return append(b, x...), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendCanonical(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		return appendSortedMap(b, x, appendCanonical)
	case map[string]string:
		return appendSortedMap(b, x, appendPlainString)
	}
	return b, false
}

// appendSortedMap writes m as a JSON object with sorted keys, each value
// by val; nil is null.
func appendSortedMap[V any](b []byte, m map[string]V, val func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendPlainString(b, k); !ok {
			return b, false
		}
		b = append(b, ':')
		if b, ok = val(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendPlainString quotes s if it needs no escaping: printable ASCII
// without '"' or '\\'. Other strings are left to encoding/json.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// validNumber reports whether s is a JSON number (encoding/json's rule for
// json.Number).
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}
