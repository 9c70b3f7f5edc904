package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// settle waits past a few kernel clock ticks so that the next change gets a
// new ctime, and so that a file hashed now is not "racy".
func settle() { time.Sleep(30 * time.Millisecond) }

func TestDigestCache(t *testing.T) {
	const orig = "0123456789abcdef"
	tests := []struct {
		name    string
		change  func(t *testing.T, p string)
		rehash  bool
		content string // content afterwards
	}{
		{"unchanged", func(t *testing.T, p string) {}, false, orig},
		{"same size, mtime restored", func(t *testing.T, p string) {
			info, _ := os.Stat(p)
			writeFile(t, p, "0123456789ABCDEF", 0o644)
			if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, true, "0123456789ABCDEF"},
		{"appended", func(t *testing.T, p string) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("!")
			f.Close()
		}, true, orig + "!"},
		{"replaced by rename, same content", func(t *testing.T, p string) {
			writeFile(t, p+".new", orig, 0o644)
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		}, true, orig},
		{"touched", func(t *testing.T, p string) {
			now := time.Now().Add(time.Hour)
			os.Chtimes(p, now, now)
		}, true, orig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), ".llmlab")
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			s.stat.racyWindow = 0
			p := filepath.Join(t.TempDir(), "input.txt")
			writeFile(t, p, orig, 0o644)
			settle()
			a1, err := s.HashPath(p)
			if err != nil || a1.Digest != DigestOf([]byte(orig)) {
				t.Fatalf("first hash: %v %v", a1, err)
			}
			settle()
			tc.change(t, p)
			settle()
			// A fresh Store: the cache must come from its file under root.
			s2, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			s2.stat.racyWindow = 0
			a2, err := s2.HashPath(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := DigestOf([]byte(tc.content)); a2.Digest != want || a2.Size != int64(len(tc.content)) {
				t.Fatalf("after change: %v, want digest %s", a2, want.Short())
			}
			if got := s2.filesHashed.Load() == 1; got != tc.rehash {
				t.Fatalf("re-hashed = %v, want %v", got, tc.rehash)
			}
		})
	}
}

// A file hashed in the same clock tick as its last change may change again
// without any stat field moving; such an entry is not trusted.
func TestDigestCacheRacyEntry(t *testing.T) {
	s := openTemp(t) // default racy window
	p := filepath.Join(t.TempDir(), "fresh")
	writeFile(t, p, "just written", 0o644)
	for range 2 {
		if _, err := s.HashPath(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.filesHashed.Load(); n != 2 {
		t.Fatalf("hashed %d times, want 2: a racily clean entry was trusted", n)
	}
	s.stat.racyWindow = 0 // as if the racy window had passed
	if _, err := s.HashPath(p); err != nil {
		t.Fatal(err)
	}
	if n := s.filesHashed.Load(); n != 2 {
		t.Fatalf("hashed %d times, want 2: the entry is no longer racy", n)
	}
}

func TestAddPathCopiesAndReusesCache(t *testing.T) {
	s := openTemp(t)
	s.stat.racyWindow = 0
	dir := filepath.Join(t.TempDir(), "data")
	build(t, dir, []fsOp{{path: "train.txt", content: "to be or not to be"}, {path: "sub/val.txt", content: "that is"}})
	settle()
	a, err := s.AddPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyArtifact(a); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "train.txt")); err != nil || string(b) != "to be or not to be" {
		t.Fatal("input changed by AddPath")
	}
	if n := s.filesHashed.Load(); n != 2 {
		t.Fatalf("hashed %d files, want 2", n)
	}
	b, err := s.AddPath(dir)
	if err != nil || b != a {
		t.Fatal(b, err)
	}
	if n := s.filesHashed.Load(); n != 2 {
		t.Fatalf("unchanged inputs re-hashed: %d", n)
	}
	// A single file input, given through a symlink.
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(filepath.Join(dir, "train.txt"), link)
	f, err := s.AddPath(link)
	if err != nil || f.Kind != KindFile || f.Digest != DigestOf([]byte("to be or not to be")) {
		t.Fatal(f, err)
	}
}
