package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// PlaceInput makes the same read-only copy as Materialize (file and tree),
// refuses an existing dest, and leaves nothing at dest when an object is
// damaged.
func TestPlaceInput(t *testing.T) {
	s := openTemp(t)
	src := filepath.Join(t.TempDir(), "src")
	build(t, src, sampleTree)
	tree, err := s.PutArtifact(src)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, "file content", 0o644)
	file, err := s.PutArtifact(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, a := range map[string]Artifact{"tree": tree, "file": file} {
		dest := filepath.Join(dir, name)
		if err := s.PlaceInput(a, dest); err != nil {
			t.Fatal(err)
		}
		if again, err := s.HashPath(dest); err != nil || again != a {
			t.Errorf("%s: placed copy hashes to %v, %v; want %v", name, again, err, a)
		}
		if err := s.PlaceInput(a, dest); err == nil {
			t.Errorf("%s: placed over an existing dest", name)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "file")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("placed file: %v %v, want mode 0444", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tree", "bin", "run.sh")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("placed executable: %v %v, want mode 0555", fi.Mode(), err)
	}
	// A damaged object: an error, and nothing at dest.
	flipByte(t, s.objectPath(file.Digest), 0)
	dest := filepath.Join(dir, "damaged")
	var ce *CorruptError
	if err := s.PlaceInput(file, dest); !errors.As(err, &ce) {
		t.Errorf("damaged object: err = %v, want a *CorruptError", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("damaged object: something was left at dest (%v)", err)
	}
}

// EmptyWorkDir removes everything, read-only parts included, but keeps the
// named subdirectory (emptied and writable), and gives the directory its
// mode back.
func TestEmptyWorkDir(t *testing.T) {
	s := openTemp(t)
	for _, tc := range []struct {
		name     string
		inputs   bool
		keep     string
		wantKept bool
	}{
		{"with inputs", true, "inputs", true},
		{"without inputs", false, "inputs", false},
		{"keep nothing", true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := s.NewWorkDir("x")
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(w, "out"), "o", 0o444)
			writeFile(t, filepath.Join(w, "ro", "deep", "f"), "f", 0o444)
			if err := os.Chmod(filepath.Join(w, "ro", "deep"), 0o555); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(w, "ro"), 0o500); err != nil {
				t.Fatal(err)
			}
			if tc.inputs {
				writeFile(t, filepath.Join(w, "inputs", "a"), "a", 0o444)
				writeFile(t, filepath.Join(w, "inputs", "t", "b"), "b", 0o444)
				if err := os.Chmod(filepath.Join(w, "inputs"), 0o555); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(w, 0o555); err != nil {
				t.Fatal(err)
			}
			kept, err := s.EmptyWorkDir(w, tc.keep)
			if err != nil || kept != tc.wantKept {
				t.Fatalf("EmptyWorkDir = %v, %v; want %v", kept, err, tc.wantKept)
			}
			var left []string
			filepath.WalkDir(w, func(p string, d fs.DirEntry, err error) error {
				if p != w {
					rel, _ := filepath.Rel(w, p)
					left = append(left, rel)
				}
				return nil
			})
			sort.Strings(left)
			want := 0
			if tc.wantKept {
				want = 1
				if len(left) != 1 || left[0] != "inputs" {
					t.Errorf("left %v, want [inputs]", left)
				}
				if fi, err := os.Stat(filepath.Join(w, "inputs")); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("kept inputs/: %v %v, want mode 0755", fi.Mode(), err)
				}
			}
			if len(left) != want {
				t.Errorf("left %v", left)
			}
			if fi, err := os.Stat(w); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("work dir: %v %v, want mode 0700", fi.Mode(), err)
			}
			s.RemoveWorkDir(w)
		})
	}
}

// A fan-out directory removed by hand is made again when something is
// committed into it, though the store knows the fan-out was complete.
func TestFanoutDirRemovedByHand(t *testing.T) {
	s := openTemp(t)
	b := []byte("content for a removed fan-out directory")
	d := DigestOf(b)
	if err := os.Remove(filepath.Dir(s.objectPath(d))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBytes(b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadBlob(d); err != nil || string(got) != string(b) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	// The same through PutArtifact (a file moved in).
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, "moved in", 0o644)
	d2 := DigestOf([]byte("moved in"))
	if err := os.Remove(filepath.Dir(s.objectPath(d2))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if a, err := s.PutArtifact(f); err != nil || a.Digest != d2 {
		t.Fatalf("PutArtifact = %v, %v", a, err)
	}
	if _, err := s.ReadBlob(d2); err != nil {
		t.Fatal(err)
	}
}
