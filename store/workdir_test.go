package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// PlaceInput makes the same read-only copy as Materialize (file and tree),
// again over what it placed before, and leaves nothing at dest when an
// object is damaged.
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
		// Placed again over itself (see TestPlaceInputReuse).
		if err := s.PlaceInput(a, dest); err != nil {
			t.Errorf("%s: placed again: %v", name, err)
		}
		if again, err := s.HashPath(dest); err != nil || again != a {
			t.Errorf("%s: placed again, hashes to %v, %v; want %v", name, again, err, a)
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
// named subdirectory (writable) with only its regular files, and gives the
// directory its mode back.
func TestEmptyWorkDir(t *testing.T) {
	s := openTemp(t)
	for _, tc := range []struct {
		name      string
		inputs    bool
		keep      string
		wantKept  bool
		wantLeft  []string
		wantFiles []string
	}{
		{"with inputs", true, "inputs", true, []string{"inputs", "inputs/a"}, []string{"a"}},
		{"without inputs", false, "inputs", false, nil, nil},
		{"keep nothing", true, "", false, nil, nil},
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
				if err := os.Symlink("a", filepath.Join(w, "inputs", "l")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(w, "inputs", "t"), 0o555); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(w, "inputs"), 0o555); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(w, 0o555); err != nil {
				t.Fatal(err)
			}
			kept, files, err := s.EmptyWorkDir(w, tc.keep)
			if err != nil || kept != tc.wantKept || strings.Join(files, ",") != strings.Join(tc.wantFiles, ",") {
				t.Fatalf("EmptyWorkDir = %v, %v, %v; want %v, %v", kept, files, err, tc.wantKept, tc.wantFiles)
			}
			var left []string
			filepath.WalkDir(w, func(p string, d fs.DirEntry, err error) error {
				if p != w {
					rel, _ := filepath.Rel(w, p)
					left = append(left, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(left)
			if strings.Join(left, ",") != strings.Join(tc.wantLeft, ",") {
				t.Errorf("left %v, want %v", left, tc.wantLeft)
			}
			if tc.wantKept {
				if fi, err := os.Stat(filepath.Join(w, "inputs")); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("kept inputs/: %v %v, want mode 0755", fi.Mode(), err)
				}
			}
			if fi, err := os.Stat(w); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("work dir: %v %v, want mode 0700", fi.Mode(), err)
			}
			s.RemoveWorkDir(w)
		})
	}
}

// PlaceInput over a file an earlier PlaceInput left: the same inode is
// reused (kept when it still holds the input, overwritten otherwise, and
// re-hashed either way), except when it has other links or was changed
// into something else.
func TestPlaceInputReuse(t *testing.T) {
	s := openTemp(t)
	put := func(content string) Artifact {
		f := filepath.Join(t.TempDir(), "f")
		writeFile(t, f, content, 0o644)
		a, err := s.PutArtifact(f)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	one, two := put("one\n"), put("second content\n")
	ino := func(p string) uint64 {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	check := func(p string, a Artifact) {
		t.Helper()
		if got, err := s.HashPath(p); err != nil || got != a {
			t.Errorf("%s holds %v (%v), want %v", p, got, err, a)
		}
		if fi, err := os.Lstat(p); err != nil || fi.Mode() != 0o444 {
			t.Errorf("%s: mode %v (%v), want 0444", p, fi.Mode(), err)
		}
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "up")
	if err := s.PlaceInput(one, dest); err != nil {
		t.Fatal(err)
	}
	first := ino(dest)
	for _, a := range []Artifact{one, two, two, one} {
		if err := s.PlaceInput(a, dest); err != nil {
			t.Fatal(err)
		}
		check(dest, a)
		if ino(dest) != first {
			t.Errorf("placing %v made a new file", a)
		}
	}
	// A file changed behind our back (as root could) is overwritten.
	if err := os.Chmod(dest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, []byte("onf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.PlaceInput(one, dest); err != nil {
		t.Fatal(err)
	}
	check(dest, one)
	// A file with another link is not written through: a new file.
	link := filepath.Join(dir, "link")
	if err := os.Link(dest, link); err != nil {
		t.Fatal(err)
	}
	if err := s.PlaceInput(two, dest); err != nil {
		t.Fatal(err)
	}
	check(dest, two)
	check(link, one)
	// A directory, or a symlink, at dest is replaced.
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("link", dest); err != nil {
		t.Fatal(err)
	}
	if err := s.PlaceInput(two, dest); err != nil {
		t.Fatal(err)
	}
	check(dest, two)
	check(link, one)
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
