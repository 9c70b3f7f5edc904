package store

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func putFileArtifact(t *testing.T, s *Store, content string) Artifact {
	t.Helper()
	d, err := s.PutBytes([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return Artifact{Kind: KindFile, Digest: d, Size: int64(len(content))}
}

func TestActionRoundTrip(t *testing.T) {
	s := openTemp(t)
	k := ActionKey(DigestOf([]byte("key 1")))
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	e := &ActionEntry{
		Key:     k,
		Address: "stage.train",
		Kind:    "train",
		Outputs: map[string]Artifact{
			"model": putFileArtifact(t, s, "weights"),
			"log":   putFileArtifact(t, s, "lines"),
		},
		Metrics:   map[string]float64{"loss": 1.891, "diverged": math.NaN(), "best": math.Inf(1), "worst": math.Inf(-1)},
		LogDigest: putFileArtifact(t, s, "log text").Digest,
		Started:   start,
		Finished:  start.Add(90 * time.Second),
	}
	if err := s.PutAction(e); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAction(k)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != k || got.Address != e.Address || got.Kind != e.Kind || got.LogDigest != e.LogDigest ||
		!got.Started.Equal(e.Started) || !got.Finished.Equal(e.Finished) || len(got.Outputs) != 2 ||
		got.Outputs["model"] != e.Outputs["model"] || got.Outputs["log"] != e.Outputs["log"] {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	m := got.Metrics
	if m["loss"] != 1.891 || !math.IsNaN(m["diverged"]) || !math.IsInf(m["best"], 1) || !math.IsInf(m["worst"], -1) {
		t.Fatalf("metrics %v", m)
	}
	// The file is deterministic: the same entry encodes to the same bytes.
	b1, _ := encodeAction(e)
	b2, _ := encodeAction(got)
	if string(b1) != string(b2) {
		t.Fatalf("encoding not deterministic:\n%s\n%s", b1, b2)
	}

	if _, err := s.GetAction(ActionKey(DigestOf([]byte("other")))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
}

func TestPutActionNeedsOutputsFirst(t *testing.T) {
	s := openTemp(t)
	k := ActionKey(DigestOf([]byte("k")))
	missing := Artifact{Kind: KindFile, Digest: DigestOf([]byte("not stored")), Size: 10}
	err := s.PutAction(&ActionEntry{Key: k, Address: "stage.a", Outputs: map[string]Artifact{"out": missing}})
	if err == nil {
		t.Fatal("entry with a missing output accepted")
	}
	mustContain(t, err.Error(), "stage.a", `output "out"`, "is not in the store; store outputs before the entry")
	if _, err := s.GetAction(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry written anyway: %v", err)
	}
	err = s.PutAction(&ActionEntry{Key: k, Address: "stage.a", LogDigest: DigestOf([]byte("no log"))})
	if err == nil {
		t.Fatal("entry with a missing log accepted")
	}
	mustContain(t, err.Error(), "log", "is not in the store")
	if err := s.PutAction(&ActionEntry{Address: "stage.a"}); err == nil {
		t.Fatal("zero key accepted")
	}
}

func TestDamagedActionIsAMiss(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		reason string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "truncated or damaged"},
		{"empty", func(b []byte) []byte { return nil }, "missing header"},
		{"bit flip", func(b []byte) []byte { b[len(b)-5] ^= 1; return b }, "truncated or damaged"},
		{"bad header", func(b []byte) []byte { return append([]byte("llmlab-action/1 zz\n"), b...) }, "bad header checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			k := ActionKey(DigestOf([]byte(tc.name)))
			if err := s.PutAction(&ActionEntry{Key: k, Address: "stage.x", Outputs: map[string]Artifact{"o": putFileArtifact(t, s, "o")}}); err != nil {
				t.Fatal(err)
			}
			p := s.actionPath(k)
			b, _ := os.ReadFile(p)
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := s.GetAction(k)
			var cae *CorruptActionError
			if !errors.As(err, &cae) || !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetAction: %v", err)
			}
			mustContain(t, err.Error(), "action cache entry "+k.String()+" is damaged ("+p+")", tc.reason, "the stage will run again")
			r, err := s.Verify()
			if err != nil || len(r.BadActions) != 1 || r.BadActions[0].Key != k {
				t.Fatalf("Verify: %+v %v", r, err)
			}
			if l, err := s.Actions(); err != nil || len(l) != 0 {
				t.Fatalf("Actions listed a damaged entry: %v %v", l, err)
			}
		})
	}

	// An entry stored under the wrong key (e.g. a file copied by hand).
	s := openTemp(t)
	k1, k2 := ActionKey(DigestOf([]byte("1"))), ActionKey(DigestOf([]byte("2")))
	if err := s.PutAction(&ActionEntry{Key: k1, Address: "stage.x"}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(s.actionPath(k2)), 0o755)
	if err := os.Rename(s.actionPath(k1), s.actionPath(k2)); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetAction(k2)
	if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	mustContain(t, err.Error(), "it belongs to key "+k1.String())
}
