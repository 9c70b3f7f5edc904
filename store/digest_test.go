package store

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	good := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // sha256("")
	tests := []struct {
		in      string
		wantErr string
	}{
		{good, ""},
		{strings.ToUpper(good), `character 'E' at offset 0 is not lower-case hex`},
		{good[:63], "want 64 hex characters, got 63"},
		{good + "0", "want 64 hex characters, got 65"},
		{"g" + good[1:], `character 'g' at offset 0`},
		{"", "got 0 characters"},
	}
	for _, tc := range tests {
		d, err := ParseDigest(tc.in)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ParseDigest(%q): %v", tc.in, err)
				continue
			}
			if d != DigestOf(nil) || d.String() != tc.in || d.Short() != tc.in[:12] || d.IsZero() {
				t.Errorf("ParseDigest(%q) = %v (short %v)", tc.in, d, d.Short())
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseDigest(%q): no error", tc.in)
			continue
		}
		mustContain(t, err.Error(), "invalid digest", tc.wantErr)
		if _, err := ParseActionKey(tc.in); err == nil || !strings.Contains(err.Error(), "invalid action key") {
			t.Errorf("ParseActionKey(%q) error = %v", tc.in, err)
		}
	}
}

func TestDigestJSON(t *testing.T) {
	type doc struct {
		D Digest
		K ActionKey
		Z Digest `json:",omitzero"`
	}
	in := doc{D: DigestOf([]byte("a")), K: ActionKey(DigestOf([]byte("b")))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"D":"` + in.D.String() + `","K":"` + in.K.String() + `"}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"D":"zz"}`), &out); err == nil {
		t.Fatal("bad hex accepted")
	}
	if !(Digest{}).IsZero() || !(ActionKey{}).IsZero() || in.K.IsZero() {
		t.Fatal("IsZero wrong")
	}
}
