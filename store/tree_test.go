package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type fsOp struct {
	path, content string
	mode          os.FileMode // 0: file 0644
	link          string      // non-empty: a symlink with this target
	dir           bool
}

func build(t *testing.T, root string, ops []fsOp) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		p := filepath.Join(root, op.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case op.dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case op.link != "":
			if err := os.Symlink(op.link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := op.mode
			if mode == 0 {
				mode = 0o644
			}
			writeFile(t, p, op.content, mode)
		}
	}
}

var sampleTree = []fsOp{
	{path: "model/config.json", content: `{"layers":4}`},
	{path: "model/weights.bin", content: strings.Repeat("w", 5000)},
	{path: "bin/run.sh", content: "#!/bin/sh\necho hi\n", mode: 0o700},
	{path: "copy.bin", content: strings.Repeat("w", 5000)}, // same content as weights.bin
	{path: "empty", dir: true},
	{path: "latest", link: "model"},
	{path: "model/w", link: "../model/./weights.bin"},
	{path: "dangling", link: "not/there"},
}

func TestTreeManifestDeterministic(t *testing.T) {
	s := openTemp(t)
	reversed := make([]fsOp, len(sampleTree))
	for i, op := range sampleTree {
		reversed[len(sampleTree)-1-i] = op
	}
	a := filepath.Join(t.TempDir(), "a")
	build(t, a, sampleTree)
	b := filepath.Join(t.TempDir(), "b")
	build(t, b, reversed)
	// Mode bits other than "any x" and the umask do not matter.
	if err := os.Chmod(filepath.Join(b, "bin/run.sh"), 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b, "copy.bin"), 0o600); err != nil {
		t.Fatal(err)
	}

	ha, err := s.HashPath(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := s.HashPath(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb {
		t.Fatalf("same tree, different artifacts: %v %v", ha, hb)
	}
	wantSize := int64(len(`{"layers":4}`) + 5000 + len("#!/bin/sh\necho hi\n") + 5000)
	if ha.Kind != KindTree || ha.Size != wantSize {
		t.Fatalf("HashPath = %+v, want tree of %d bytes", ha, wantSize)
	}
	// AddPath (copy) and PutArtifact (move) give the same artifact.
	ab, err := s.AddPath(b)
	if err != nil || ab != ha {
		t.Fatalf("AddPath = %v, %v; want %v", ab, err, ha)
	}
	if _, err := os.Stat(filepath.Join(b, "model/weights.bin")); err != nil {
		t.Fatal("AddPath moved an input")
	}
	pa, err := s.PutArtifact(a)
	if err != nil || pa != ha {
		t.Fatalf("PutArtifact = %v, %v; want %v", pa, err, ha)
	}
	if _, err := os.Lstat(filepath.Join(a, "model/weights.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("PutArtifact did not move the file")
	}

	tr, err := s.ReadTree(pa.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tr.Entries {
		got = append(got, e.Path+" "+e.Mode+" "+e.Target)
	}
	want := []string{
		"bin dir ", "bin/run.sh 0755 ", "copy.bin 0644 ", "dangling symlink not/there", "empty dir ",
		"latest symlink model", "model dir ", "model/config.json 0644 ", "model/w symlink ../model/./weights.bin",
		"model/weights.bin 0644 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !s.Has(pa) {
		t.Fatal("Has = false after PutArtifact")
	}
	if err := s.VerifyArtifact(pa); err != nil {
		t.Fatal(err)
	}
}

func TestMaterialize(t *testing.T) {
	s := openTemp(t)
	src := filepath.Join(t.TempDir(), "src")
	build(t, src, sampleTree)
	a, err := s.PutArtifact(src)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "new", "parent", "dest")
	if err := s.Materialize(a, dest); err != nil {
		t.Fatal(err)
	}
	again, err := s.HashPath(dest)
	if err != nil || again != a {
		t.Fatalf("materialized tree hashes to %v, %v; want %v", again, err, a)
	}
	checks := []struct {
		path string
		mode os.FileMode
		link string
	}{
		{"model/weights.bin", 0o444, ""},
		{"bin/run.sh", 0o555, ""},
		{"empty", os.ModeDir | 0o755, ""},
		{"latest", os.ModeSymlink, "model"},
	}
	for _, c := range checks {
		info, err := os.Lstat(filepath.Join(dest, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if c.link != "" {
			tgt, _ := os.Readlink(filepath.Join(dest, c.path))
			if info.Mode()&os.ModeSymlink == 0 || tgt != c.link {
				t.Errorf("%s: mode %v target %q", c.path, info.Mode(), tgt)
			}
			continue
		}
		if info.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, info.Mode(), c.mode)
		}
	}
	// A copy, not a link: changing it leaves the object intact.
	p := filepath.Join(dest, "model/weights.bin")
	flipByte(t, p, 0)
	if err := s.VerifyArtifact(a); err != nil {
		t.Fatalf("materialized copy shares storage with the store: %v", err)
	}
	if err := s.Materialize(a, dest); err == nil || !strings.Contains(err.Error(), dest+" already exists") {
		t.Fatalf("Materialize over existing dest: %v", err)
	}

	// A corrupt entry fails the whole materialization and leaves nothing.
	tr, _ := s.ReadTree(a.Digest)
	var wd Digest
	for _, e := range tr.Entries {
		if e.Path == "model/config.json" {
			wd = e.Digest
		}
	}
	flipByte(t, s.objectPath(wd), 2)
	dest2 := filepath.Join(t.TempDir(), "dest2")
	err = s.Materialize(a, dest2)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Digest != wd {
		t.Fatalf("Materialize with corrupt entry: %v", err)
	}
	mustContain(t, err.Error(), "entry model/config.json", wd.String())
	if ents, _ := os.ReadDir(filepath.Dir(dest2)); len(ents) != 0 {
		t.Fatalf("Materialize left %v", ents)
	}
	if err := s.VerifyArtifact(a); !errors.As(err, &ce) {
		t.Fatalf("VerifyArtifact: %v", err)
	} else {
		mustContain(t, err.Error(), "entry model/config.json", "is corrupt")
	}
	if !s.Has(a) {
		t.Error("Has should stay cheap (size check only) and report a same-size corrupt object as present")
	}
	if err := os.Remove(s.objectPath(wd)); err != nil {
		t.Fatal(err)
	}
	if s.Has(a) {
		t.Error("Has = true with a missing entry")
	}
}

func TestSymlinks(t *testing.T) {
	tests := []struct {
		name    string
		ops     []fsOp
		badLink string // "" = accepted
		reason  string
	}{
		{"inside relative", []fsOp{{path: "a/f", content: "x"}, {path: "l", link: "a/f"}}, "", ""},
		{"inside via parent", []fsOp{{path: "a/f", content: "x"}, {path: "b/l", link: "../a/f"}}, "", ""},
		{"to a dir inside", []fsOp{{path: "a/f", content: "x"}, {path: "l", link: "a"}}, "", ""},
		{"to the root", []fsOp{{path: "f", content: "x"}, {path: "a/l", link: ".."}}, "", ""},
		{"up and out", []fsOp{{path: "f", content: "x"}, {path: "l", link: "../outside"}}, "l", "points outside the artifact"},
		{"deep up and out", []fsOp{{path: "a/b/l", link: "../../../x"}}, "a/b/l", "points outside the artifact"},
		{"absolute", []fsOp{{path: "f", content: "x"}, {path: "l", link: "/etc/passwd"}}, "l", "is absolute"},
		{"out through another link", []fsOp{{path: "here", link: "."}, {path: "l", link: "here/../x"}}, "l", "points outside the artifact"},
		{"through a link to an absolute path", []fsOp{{path: "abs", dir: true}, {path: "d", link: "/tmp"}, {path: "l", link: "d/x"}}, "d", "is absolute"},
		{"loop", []fsOp{{path: "a", link: "b/x"}, {path: "b", link: "a/y"}}, "a", "symlink loop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			dir := filepath.Join(t.TempDir(), "out")
			build(t, dir, tc.ops)
			for i, f := range []func(string) (Artifact, error){s.HashPath, s.AddPath, s.PutArtifact} {
				a, err := f(dir)
				if tc.badLink == "" {
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						continue // HashPath stores nothing
					}
					dest := filepath.Join(t.TempDir(), "m")
					if err := s.Materialize(a, dest); err != nil {
						t.Fatal(err)
					}
					continue
				}
				var se *SymlinkError
				if !errors.As(err, &se) || se.Link != tc.badLink {
					t.Fatalf("got %v, want a SymlinkError for %s", err, tc.badLink)
				}
				mustContain(t, err.Error(), "artifact "+dir+": symlink "+tc.badLink+" -> ", tc.reason, "make the link relative and inside the artifact")
			}
		})
	}
}

func TestPutArtifactFileAndErrors(t *testing.T) {
	s := openTemp(t)
	work, err := s.NewWorkDir("x")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(work, "out.txt")
	writeFile(t, p, "result", 0o755)
	a, err := s.PutArtifact(p)
	if err != nil {
		t.Fatal(err)
	}
	if a != (Artifact{Kind: KindFile, Digest: DigestOf([]byte("result")), Size: 6}) {
		t.Fatalf("artifact %+v", a)
	}
	if info, err := os.Stat(s.objectPath(a.Digest)); err != nil || info.Mode().Perm() != 0o444 {
		t.Fatalf("object: %v %v", info, err)
	}
	// A hard-linked output is copied, so the object cannot change via the other name.
	q := filepath.Join(work, "linked.txt")
	other := filepath.Join(work, "other-name")
	writeFile(t, q, "linked content", 0o644)
	if err := os.Link(q, other); err != nil {
		t.Fatal(err)
	}
	la, err := s.PutArtifact(q)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, other, "LINKED CONTENT", 0o644)
	if err := s.VerifyArtifact(la); err != nil {
		t.Fatalf("hard-linked output shares storage with its object: %v", err)
	}

	l := filepath.Join(work, "link")
	if err := os.Symlink("out.txt", l); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutArtifact(l); err == nil {
		t.Fatal("symlink as artifact accepted")
	} else {
		mustContain(t, err.Error(), "symlink . -> out.txt is the artifact itself")
	}
	if _, err := s.PutArtifact(filepath.Join(work, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
	if err := s.RemoveWorkDir(work); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeTreeRejectsHostileManifests(t *testing.T) {
	d := DigestOf([]byte("x")).String()
	tests := []struct{ json, want string }{
		{`{"format":"other","entries":[]}`, "format"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"../x","mode":"0644","digest":"` + d + `"}]}`, "bad path"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"/x","mode":"0644","digest":"` + d + `"}]}`, "bad path"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"a/x","mode":"0644","digest":"` + d + `"}]}`, "no parent directory"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"b","mode":"dir"},{"path":"a","mode":"dir"}]}`, "not sorted"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"a","mode":"0777","digest":"` + d + `"}]}`, "unknown mode"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"a","mode":"0644"}]}`, "no digest"},
		{`{"format":"llmlab-tree/1","entries":[{"path":"a","mode":"symlink","target":"../../etc"}]}`, "points outside"},
	}
	for _, tc := range tests {
		_, err := decodeTree([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decodeTree(%s) = %v, want %q", tc.json, err, tc.want)
		}
	}
}

func TestPutArtifactRefusesOddFiles(t *testing.T) {
	s := openTemp(t)
	dir := filepath.Join(t.TempDir(), "out")
	build(t, dir, []fsOp{{path: "f", content: "x"}})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	for _, f := range []func(string) (Artifact, error){s.HashPath, s.PutArtifact} {
		_, err := f(dir)
		if err == nil {
			t.Fatal("named pipe accepted")
		}
		mustContain(t, err.Error(), "artifact "+dir+": pipe is a named pipe, not a file, directory or symlink; remove it or write it elsewhere")
	}
}

func TestPutArtifactNoticesAWriterStillWriting(t *testing.T) {
	s := openTemp(t)
	p := filepath.Join(t.TempDir(), "out.bin")
	writeFile(t, p, "partial", 0o644)
	before, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "partial and more", 0o644) // the stage kept writing
	_, _, err = s.moveIn(p, before, nil)
	if err == nil {
		t.Fatal("a file that changed during PutArtifact was stored")
	}
	mustContain(t, err.Error(), "store artifact "+p+": the file changed while it was being stored; is the stage still writing it?")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("the file was moved anyway")
	}
}
