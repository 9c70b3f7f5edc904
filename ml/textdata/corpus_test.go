package textdata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadCorpusFileAndDirectory(t *testing.T) {
	text, err := ReadCorpus("testdata/tinyshakespeare_20k.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(text) != 19986 || !strings.HasPrefix(text, "First Citizen:\nBefore we proceed") {
		t.Fatalf("read %d bytes starting %q", len(text), text[:20])
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.txt"), "bee\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "ay") // no final newline
	writeFile(t, filepath.Join(dir, "sub", "c.md"), "sea\n")
	writeFile(t, filepath.Join(dir, ".hidden"), "secret\n")
	writeFile(t, filepath.Join(dir, ".git", "x"), "object\n")
	writeFile(t, filepath.Join(dir, "empty.txt"), "")
	got, err := ReadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ay\nbee\nsea\n"; got != want {
		t.Fatalf("ReadCorpus(dir) = %q, want %q", got, want)
	}
}

func TestReadCorpusErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	writeFile(t, empty, "")
	emptyDir := filepath.Join(dir, "d")
	writeFile(t, filepath.Join(emptyDir, "x.txt"), "")
	writeFile(t, filepath.Join(emptyDir, ".y"), "hidden text")
	bad := filepath.Join(dir, "latin1.txt")
	writeFile(t, bad, "caf\xe9 au lait")
	for _, c := range []struct{ path, want string }{
		{empty, "text corpus " + empty + " is empty"},
		{emptyDir, "text corpus " + emptyDir + " is empty: it holds 1 non-hidden files, none with any text"},
		{bad, bad + ": not UTF-8 text (invalid byte at offset 3); convert it to UTF-8"},
		{filepath.Join(dir, "missing"), "reading text corpus: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		_, err := ReadCorpus(c.path)
		if err == nil || err.Error() != c.want {
			t.Errorf("ReadCorpus(%s) error = %v\nwant %q", c.path, err, c.want)
		}
	}
}

func TestSplitTextTail(t *testing.T) {
	text, err := ReadCorpus("testdata/tinyshakespeare_20k.txt")
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := SplitText(text, 0.1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// nanoGPT: train_data = data[:int(n*0.9)].
	n := utf8.RuneCountInString(text)
	if utf8.RuneCountInString(train) != int(float64(n)*0.9) || train+val != text {
		t.Fatalf("train %d chars, val %d, of %d", len(train), len(val), n)
	}
	// Characters, not bytes: 14 characters, int(14*0.75) = 10 for train.
	train, val, err = SplitText("ééééééééééàààà", 0.25, 0)
	if err != nil || train != "éééééééééé" || val != "àààà" {
		t.Fatalf("rune split: %q %q %v", train, val, err)
	}
	train, val, err = SplitText("abc", 0, 0)
	if err != nil || train != "abc" || val != "" {
		t.Fatalf("validation 0: %q %q %v", train, val, err)
	}
}

func TestSplitTextSeeded(t *testing.T) {
	text, _ := ReadCorpus("testdata/tinyshakespeare_20k.txt")
	starts := map[int]bool{}
	for seed := int64(1); seed <= 5; seed++ {
		train, val, err := SplitText(text, 0.1, seed)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(text, val)
		if i < 0 || text[:i]+text[i+len(val):] != train {
			t.Fatalf("seed %d: val is not one block cut out of the text", seed)
		}
		if utf8.RuneCountInString(val) != utf8.RuneCountInString(text)-int(float64(utf8.RuneCountInString(text))*0.9) {
			t.Fatalf("seed %d: val has %d chars", seed, len(val))
		}
		again, val2, _ := SplitText(text, 0.1, seed)
		if again != train || val2 != val {
			t.Fatalf("seed %d: not deterministic", seed)
		}
		starts[i] = true
	}
	if len(starts) < 4 {
		t.Fatalf("5 seeds gave only %d block positions", len(starts))
	}
}

func TestSplitTextErrors(t *testing.T) {
	for _, c := range []struct {
		text string
		v    float64
		want string
	}{
		{"abc", 1, "split validation = 1: want a share in [0, 1), such as 0.1"},
		{"abc", -0.1, "split validation = -0.1: want a share in [0, 1), such as 0.1"},
		{"a", 0.1, "split validation = 0.1 of 1 characters leaves an empty training or validation text; use a larger corpus or another share"},
	} {
		_, _, err := SplitText(c.text, c.v, 0)
		if err == nil || err.Error() != c.want {
			t.Errorf("SplitText(%q, %v) error = %v, want %q", c.text, c.v, err, c.want)
		}
	}
}
