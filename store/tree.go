package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Artifact names a stored output or input: a single file (Digest is the
// blob) or a directory tree (Digest is the tree manifest). Size is the
// file's size, or the total size of the files of a tree.
type Artifact struct {
	Kind   string `json:"kind"` // KindFile or KindTree
	Digest Digest `json:"digest"`
	Size   int64  `json:"size"`
}

// Artifact kinds.
const (
	KindFile = "file"
	KindTree = "tree"
)

func (a Artifact) String() string { return a.Kind + ":" + a.Digest.Short() }

// Tree entry modes: files are normalised to 0644 or 0755 (any execute bit).
const (
	ModeFile    = "0644"
	ModeExec    = "0755"
	ModeDir     = "dir"
	ModeSymlink = "symlink"
)

// treeFormat identifies the manifest encoding; changing the encoding
// changes every tree digest, so it is versioned.
const treeFormat = "llmlab-tree/1"

// Tree is a directory manifest. Entries are sorted by Path (byte order),
// which puts every directory before its contents; the root itself is not
// an entry.
type Tree struct {
	Format  string      `json:"format"`
	Entries []TreeEntry `json:"entries"`
}

// TreeEntry is one file, directory or symlink of a Tree.
type TreeEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the tree root
	Mode   string `json:"mode"` // ModeFile, ModeExec, ModeDir or ModeSymlink
	Digest Digest `json:"digest,omitzero"`
	Size   int64  `json:"size,omitempty"`
	Target string `json:"target,omitempty"` // symlinks only; relative, inside the tree
}

// encodeTree returns the canonical manifest bytes: struct field order and
// sorted entries make the encoding deterministic.
func encodeTree(entries []TreeEntry) []byte {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	if entries == nil {
		entries = []TreeEntry{}
	}
	b, err := json.Marshal(Tree{Format: treeFormat, Entries: entries})
	if err != nil {
		panic(err) // cannot happen: only strings, ints and text marshalers
	}
	return append(b, '\n')
}

// decodeTree parses and validates a manifest so that a damaged or hostile
// manifest cannot make Materialize write outside its destination.
func decodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("invalid tree manifest: %v", err)
	}
	if t.Format != treeFormat {
		return nil, fmt.Errorf("invalid tree manifest: format %q, want %q", t.Format, treeFormat)
	}
	modes := make(map[string]string, len(t.Entries))
	for i, e := range t.Entries {
		if !fs.ValidPath(e.Path) || e.Path == "." {
			return nil, fmt.Errorf("invalid tree manifest: bad path %q", e.Path)
		}
		if i > 0 && t.Entries[i-1].Path >= e.Path {
			return nil, fmt.Errorf("invalid tree manifest: entries not sorted at %q", e.Path)
		}
		if dir := path.Dir(e.Path); dir != "." && modes[dir] != ModeDir {
			return nil, fmt.Errorf("invalid tree manifest: %q has no parent directory entry", e.Path)
		}
		switch e.Mode {
		case ModeFile, ModeExec:
			if e.Digest.IsZero() || e.Size < 0 {
				return nil, fmt.Errorf("invalid tree manifest: file %q has no digest", e.Path)
			}
		case ModeDir, ModeSymlink:
		default:
			return nil, fmt.Errorf("invalid tree manifest: %q has unknown mode %q", e.Path, e.Mode)
		}
		modes[e.Path] = e.Mode
	}
	for _, e := range t.Entries {
		if e.Mode == ModeSymlink {
			if err := checkLinkInside(t.Entries, e.Path, e.Target); err != nil {
				return nil, fmt.Errorf("invalid tree manifest: %v", err)
			}
		}
	}
	return &t, nil
}

// ReadTree reads and verifies the manifest of tree artifact d.
func (s *Store) ReadTree(d Digest) (*Tree, error) {
	b, err := s.ReadBlob(d)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("store object %s (%s): %w", d, s.objectPath(d), err)
	}
	return t, nil
}

// SymlinkError reports a symlink that points outside the artifact (or is
// absolute); such a link would not survive moving the artifact.
type SymlinkError struct {
	Artifact string // the artifact's root on disk
	Link     string // the link, relative to the root
	Target   string
	Reason   string
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("artifact %s: symlink %s -> %s %s; make the link relative and inside the artifact, or copy the file it points to",
		e.Artifact, e.Link, e.Target, e.Reason)
}

// checkLinkInside resolves target as the symlink at link would, following
// other symlinks of the tree, and fails if resolution leaves the tree.
// Targets that do not exist inside the tree are allowed (dangling links).
func checkLinkInside(entries []TreeEntry, link, target string) error {
	links := map[string]string{}
	for _, e := range entries {
		if e.Mode == ModeSymlink {
			links[e.Path] = e.Target
		}
	}
	return resolveInside(links, link, target)
}

func resolveInside(links map[string]string, link, target string) error {
	fail := func(reason string) error {
		return &SymlinkError{Link: link, Target: target, Reason: reason}
	}
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return fail("is absolute")
	}
	var cur []string
	if d := path.Dir(link); d != "." {
		cur = strings.Split(d, "/")
	}
	rest := strings.Split(target, "/")
	for follows := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return fail("points outside the artifact")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := strings.Join(append(cur[:len(cur):len(cur)], c), "/")
		t, isLink := links[next]
		if !isLink {
			cur = append(cur, c)
			continue
		}
		if follows++; follows > 64 {
			return fail("is part of a symlink loop")
		}
		if path.IsAbs(t) {
			return fail("resolves through " + next + " to an absolute path")
		}
		rest = append(strings.Split(t, "/"), rest...)
	}
	return nil
}

// scanned is one entry found while walking an artifact on disk.
type scanned struct {
	TreeEntry
	abs  string
	info fs.FileInfo
}

// scanTree walks dir (not following symlinks) and returns its entries
// sorted by path, with every symlink checked to stay inside.
func scanTree(dir string) ([]scanned, error) {
	var out []scanned
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		e := scanned{TreeEntry: TreeEntry{Path: filepath.ToSlash(rel)}, abs: p, info: info}
		switch m := info.Mode(); {
		case m.IsDir():
			e.Mode = ModeDir
		case m.IsRegular():
			e.Mode = ModeFile
			if m.Perm()&0o111 != 0 {
				e.Mode = ModeExec
			}
			e.Size = info.Size()
		case m&fs.ModeSymlink != 0:
			e.Mode = ModeSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("artifact %s: %s is a %s, not a file, directory or symlink; remove it or write it elsewhere", dir, rel, typeName(m))
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	links := map[string]string{}
	for _, e := range out {
		if e.Mode == ModeSymlink {
			links[e.Path] = e.Target
		}
	}
	for _, e := range out {
		if e.Mode == ModeSymlink {
			if err := resolveInside(links, e.Path, e.Target); err != nil {
				err.(*SymlinkError).Artifact = dir
				return nil, err
			}
		}
	}
	return out, nil
}

// buildTree scans dir and digests each regular file with fileFn (which may
// also store it), returning the manifest entries and total file size.
func buildTree(dir string, fileFn func(e *scanned) (Digest, int64, error)) ([]TreeEntry, int64, error) {
	ents, err := scanTree(dir)
	if err != nil {
		return nil, 0, err
	}
	out := make([]TreeEntry, 0, len(ents))
	var total int64
	for i := range ents {
		e := &ents[i]
		if e.Mode == ModeFile || e.Mode == ModeExec {
			d, n, err := fileFn(e)
			if err != nil {
				return nil, 0, err
			}
			e.Digest, e.Size = d, n
			total += n
		}
		out = append(out, e.TreeEntry)
	}
	return out, total, nil
}

// PutArtifact stores the file or directory at path, which must be an
// output in a work directory (see NewWorkDir): its regular files are MOVED
// into the store (renamed; copied only across filesystems or when
// hard-linked), each read once to hash it, and are gone from path
// afterwards; directories and symlinks stay. A directory becomes a tree
// manifest object, written after every file it names. A symlink pointing
// outside the artifact is refused with a *SymlinkError naming it.
func (s *Store) PutArtifact(p string) (Artifact, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return Artifact{}, fmt.Errorf("store artifact: %w", err)
	}
	switch m := info.Mode(); {
	case m.IsRegular():
		d, n, err := s.moveIn(p, info, nil)
		if err != nil {
			return Artifact{}, err
		}
		return Artifact{Kind: KindFile, Digest: d, Size: n}, nil
	case m.IsDir():
		dirs := map[string]bool{}
		entries, total, err := buildTree(p, func(e *scanned) (Digest, int64, error) {
			return s.moveIn(e.abs, e.info, dirs)
		})
		if err != nil {
			return Artifact{}, err
		}
		for _, d := range sortedKeys(dirs) {
			if err := syncDir(d); err != nil {
				return Artifact{}, err
			}
		}
		d, err := s.PutBytes(encodeTree(entries))
		if err != nil {
			return Artifact{}, err
		}
		return Artifact{Kind: KindTree, Digest: d, Size: total}, nil
	case m&fs.ModeSymlink != 0:
		t, _ := os.Readlink(p)
		return Artifact{}, &SymlinkError{Artifact: p, Link: ".", Target: t, Reason: "is the artifact itself (an output must be a file or directory)"}
	default:
		return Artifact{}, fmt.Errorf("store artifact %s: a %s is not a file or directory", p, typeName(m))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// moveIn hashes the file at p, flushes it to disk and renames it into the
// objects. If dirs is nil the object directory is marked dirty (see Sync),
// otherwise it is added to dirs for the caller to sync.
func (s *Store) moveIn(p string, before fs.FileInfo, dirs map[string]bool) (Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("store artifact: %w", err)
	}
	d, n, err := hashReader(f)
	if err == nil {
		err = f.Sync() // flush the producer's dirty pages before the rename publishes them
	}
	var after fs.FileInfo
	if err == nil {
		after, err = f.Stat()
	}
	f.Close()
	if err != nil {
		return Digest{}, 0, fmt.Errorf("store artifact %s: %w", p, err)
	}
	if after.Size() != n || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return Digest{}, 0, fmt.Errorf("store artifact %s: the file changed while it was being stored; is the stage still writing it?", p)
	}
	final := s.objectPath(d)
	if err := s.ensureDir(filepath.Dir(final)); err != nil {
		return Digest{}, 0, err
	}
	linked := false
	if st, ok := after.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		linked = true // renaming would leave the object writable through another name
	}
	if !linked {
		if err := os.Chmod(p, readOnlyMode(after.Mode())); err != nil {
			return Digest{}, 0, fmt.Errorf("store artifact: %w", err)
		}
		err = os.Rename(p, final)
		if errors.Is(err, fs.ErrNotExist) {
			// A fan-out directory removed by hand since it was known.
			s.forgetDir(filepath.Dir(final))
			if err = s.ensureDir(filepath.Dir(final)); err == nil {
				err = os.Rename(p, final)
			}
		}
	}
	if linked || errors.Is(err, syscall.EXDEV) {
		if err := s.copyIn(p, d); err != nil {
			return Digest{}, 0, err
		}
		err = os.Remove(p)
	}
	if err != nil {
		return Digest{}, 0, fmt.Errorf("store artifact: move %s into the store: %w", p, err)
	}
	if dirs == nil {
		s.markDirty(filepath.Dir(final)) // synced by PutAction or Sync
		return d, n, nil
	}
	dirs[filepath.Dir(final)] = true
	return d, n, nil
}

// readOnlyMode is the mode objects are stored with. Objects are always
// 0444: the execute bit of a tree entry lives in its manifest.
func readOnlyMode(fs.FileMode) fs.FileMode { return 0o444 }

// copyIn copies the file at src into the store as object want, through a
// temp file, and checks that the copy hashes to want.
func (s *Store) copyIn(src string, want Digest) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer in.Close()
	return s.writeAtomic(s.objectPath(want), func(f *os.File) error {
		if _, err := io.Copy(f, in); err != nil { // copy_file_range between files
			return fmt.Errorf("store: copy %s: %w", src, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		got, _, err := hashReader(f)
		if err != nil {
			return fmt.Errorf("store: copy %s: %w", src, err)
		}
		if got != want {
			return fmt.Errorf("store: %s changed while it was being copied into the store (hashed %s, copied %s)", src, want.Short(), got.Short())
		}
		return nil
	})
}

// typeName names the kind of a file that cannot be stored.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file (" + m.Type().String() + ")"
}
