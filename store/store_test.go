package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPutReadBlob(t *testing.T) {
	s := openTemp(t)
	for _, content := range []string{"", "hello", strings.Repeat("x", 3<<20)} {
		d, err := s.PutBytes([]byte(content))
		if err != nil {
			t.Fatal(err)
		}
		if d != DigestOf([]byte(content)) {
			t.Fatalf("digest %s, want sha256", d)
		}
		got, err := s.ReadBlob(d)
		if err != nil || string(got) != content {
			t.Fatalf("ReadBlob: %v (len %d)", err, len(got))
		}
		rc, err := s.OpenBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != content {
			t.Fatalf("OpenBlob: %v", err)
		}
		info, err := os.Stat(s.objectPath(d))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o444 {
			t.Errorf("object mode %v, want 0444", info.Mode().Perm())
		}
		if _, err := s.PutBytes([]byte(content)); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	missing := DigestOf([]byte("never stored"))
	for name, f := range map[string]func() error{
		"ReadBlob": func() error { _, err := s.ReadBlob(missing); return err },
		"OpenBlob": func() error { _, err := s.OpenBlob(missing); return err },
	} {
		err := f()
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s of missing object: %v", name, err)
		}
		mustContain(t, err.Error(), "store object "+missing.String()+": not in the store (", s.objectPath(missing))
	}
}

func TestCorruptionIsNeverServed(t *testing.T) {
	s := openTemp(t)
	content := strings.Repeat("precious model weights ", 1000)
	d, err := s.PutBytes([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	p := s.objectPath(d)
	flipByte(t, p, 100)

	checkCorrupt := func(what string, err error) {
		t.Helper()
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: got %v, want *CorruptError", what, err)
		}
		if ce.Digest != d || ce.Path != p || ce.Got == d {
			t.Fatalf("%s: %+v", what, ce)
		}
		mustContain(t, err.Error(), "store object "+d.String()+" is corrupt ("+p+"): content hashes to "+ce.Got.String(), "llmlab store verify")
	}

	b, err := s.ReadBlob(d)
	if b != nil {
		t.Fatal("ReadBlob returned content of a corrupt object")
	}
	checkCorrupt("ReadBlob", err)

	rc, err := s.OpenBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	checkCorrupt("OpenBlob", err)

	checkCorrupt("VerifyArtifact", s.VerifyArtifact(Artifact{Kind: KindFile, Digest: d, Size: int64(len(content))}))

	dest := filepath.Join(t.TempDir(), "out")
	checkCorrupt("Materialize", s.Materialize(Artifact{Kind: KindFile, Digest: d}, dest))
	if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Materialize left %s behind after corruption", dest)
	}

	r, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || len(r.Corrupt) != 1 || r.Corrupt[0].Digest != d || r.Corrupt[0].Path != p {
		t.Fatalf("Verify report %+v", r)
	}
	checkCorrupt("Verify", r.Corrupt[0])

	// A corrupt object is replaced, not kept, when its content is stored again.
	if _, err := s.PutBytes([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadBlob(d); err != nil || string(got) != content {
		t.Fatalf("after re-put: %v", err)
	}
}

func TestLeftoverTempIsNeverAnObject(t *testing.T) {
	root := filepath.Join(t.TempDir(), ".llmlab")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// What a writer killed before its rename leaves: a half-written temp file.
	half := filepath.Join(s.tmp, "tmp-123456")
	writeFile(t, half, "half of an obj", 0o600)
	fresh := filepath.Join(s.tmp, "tmp-654321")
	writeFile(t, fresh, "being written right now", 0o600)
	old := time.Now().Add(-2 * tempMaxAge)
	if err := os.Chtimes(half, old, old); err != nil {
		t.Fatal(err)
	}
	work, err := s.NewWorkDir("stage.train")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(work) != s.tmp || !strings.HasPrefix(filepath.Base(work), "work-stage.train-") {
		t.Fatalf("work dir %s", work)
	}
	if err := os.Chtimes(work, old, old); err != nil {
		t.Fatal(err)
	}

	u, err := s.Du()
	if err != nil {
		t.Fatal(err)
	}
	if u.Objects != 0 {
		t.Fatalf("temp files counted as objects: %+v", u)
	}
	if r, err := s.Verify(); err != nil || !r.OK() || r.Objects != 0 {
		t.Fatalf("Verify: %+v %v", r, err)
	}
	if _, err := s.ReadBlob(DigestOf([]byte("half of an obj"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("temp content served: %v", err)
	}

	if _, err := Open(root); err != nil { // cleans old temp files only
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Error("Open kept an old temp file")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("Open removed a temp file that may be in use")
	}
	if _, err := os.Stat(work); err != nil {
		t.Error("Open removed a work dir (only gc under the lock may)")
	}
}
