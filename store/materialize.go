package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Has reports cheaply whether everything a refers to is present: the
// object (with the expected size) and, for a tree, its verified manifest
// and every entry's object. It does not re-hash blobs; VerifyArtifact does.
func (s *Store) Has(a Artifact) bool {
	switch a.Kind {
	case KindFile:
		return s.hasObject(a.Digest, a.Size)
	case KindTree:
		t, err := s.ReadTree(a.Digest)
		if err != nil {
			return false
		}
		for _, e := range t.Entries {
			if (e.Mode == ModeFile || e.Mode == ModeExec) && !s.hasObject(e.Digest, e.Size) {
				return false
			}
		}
		return true
	}
	return false
}

func (s *Store) hasObject(d Digest, size int64) bool {
	st, err := os.Stat(s.objectPath(d))
	return err == nil && st.Mode().IsRegular() && st.Size() == size
}

// VerifyArtifact re-hashes every object a refers to. Errors name each
// missing (ErrNotFound) or corrupt (*CorruptError) object.
func (s *Store) VerifyArtifact(a Artifact) error {
	switch a.Kind {
	case KindFile:
		_, err := s.checkObject(a.Digest)
		return err
	case KindTree:
		t, err := s.ReadTree(a.Digest)
		if err != nil {
			return fmt.Errorf("tree %s: %w", a.Digest.Short(), err)
		}
		var errs []error
		seen := map[Digest]bool{}
		for _, e := range t.Entries {
			if e.Mode != ModeFile && e.Mode != ModeExec || seen[e.Digest] {
				continue
			}
			seen[e.Digest] = true
			if _, err := s.checkObject(e.Digest); err != nil {
				errs = append(errs, fmt.Errorf("tree %s entry %s: %w", a.Digest.Short(), e.Path, err))
			}
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("artifact %s: unknown kind %q", a.Digest.Short(), a.Kind)
}

// Materialize recreates artifact a at dest, which must not exist: files
// are copied (never hard-linked: a stage running as root could write
// through a link into the store), verified against their digests, and made
// read-only (0444, or 0555 for executables). The result appears at dest
// atomically; on error nothing is left at dest.
func (s *Store) Materialize(a Artifact, dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("materialize %s: %s already exists", a, dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("materialize %s: %w", a, err)
	}
	parent, base := filepath.Split(filepath.Clean(dest))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("materialize %s: %w", a, err)
	}
	switch a.Kind {
	case KindFile:
		f, err := os.CreateTemp(parent, ".llmlab-tmp-"+base+"-")
		if err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		tmp := f.Name()
		if err := s.copyOut(a.Digest, f, 0o444, false); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("materialize %s at %s: %w", a, dest, err)
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		return nil
	case KindTree:
		t, err := s.ReadTree(a.Digest)
		if err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		tmp, err := os.MkdirTemp(parent, ".llmlab-tmp-"+base+"-")
		if err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		if err := s.fillTree(t, tmp); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("materialize %s at %s: %w", a, dest, err)
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		return nil
	}
	return fmt.Errorf("materialize %s: unknown artifact kind %q", a.Digest.Short(), a.Kind)
}

func (s *Store) fillTree(t *Tree, dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for _, e := range t.Entries {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		switch e.Mode {
		case ModeDir:
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case ModeSymlink:
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
		case ModeFile, ModeExec:
			f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o444)
			if e.Mode == ModeExec {
				mode = 0o555
			}
			if err := s.copyOut(e.Digest, f, mode, false); err != nil {
				return fmt.Errorf("entry %s: %w", e.Path, err)
			}
		}
	}
	return nil
}

// copyOut copies object d into dst (copy_file_range where possible), then
// re-hashes the copy, sets mode and closes dst. over: dst is an existing
// file written over from its start, cut to size after the copy.
func (s *Store) copyOut(d Digest, dst *os.File, mode fs.FileMode, over bool) error {
	defer dst.Close()
	src, err := os.Open(s.objectPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return s.notFound(d)
	}
	if err != nil {
		return fmt.Errorf("store object %s: %w", d, err)
	}
	defer src.Close()
	n, err := io.Copy(dst, src)
	if err != nil {
		return fmt.Errorf("copy store object %s: %w", d, err)
	}
	if over {
		if err := dst.Truncate(n); err != nil { // the rest of a longer file
			return err
		}
	}
	if _, err := dst.Seek(0, io.SeekStart); err != nil {
		return err
	}
	got, _, err := hashReader(dst)
	if err != nil {
		return fmt.Errorf("copy store object %s: %w", d, err)
	}
	if got != d {
		return &CorruptError{Digest: d, Path: s.objectPath(d), Got: got}
	}
	if err := dst.Chmod(mode); err != nil {
		return err
	}
	return dst.Close()
}

// PlaceInput recreates artifact a at dest like Materialize (copied, never
// linked, re-hashed, read-only), for a dest in a private directory that no
// other process looks into, such as a stage's work directory before the
// stage starts. dest's parent must exist. It skips what only matters to
// onlookers (a temp name and a rename), so a partial copy can be seen at
// dest while it is made. A regular file already at dest (as an earlier
// PlaceInput leaves it: one link, ours) is reused rather than removed and
// made again: kept if it re-hashes to a file artifact's digest, else
// overwritten in place; anything else at dest is removed first. On error
// nothing is left at dest.
func (s *Store) PlaceInput(a Artifact, dest string) error {
	if fi, err := os.Lstat(dest); err == nil {
		if a.Kind == KindFile && s.reuseInput(a, dest, fi) == nil {
			return nil
		}
		if err := removeAllForce(dest); err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
	}
	switch a.Kind {
	case KindFile:
		f, err := os.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		if err := s.copyOut(a.Digest, f, 0o444, false); err != nil {
			os.Remove(dest)
			return fmt.Errorf("materialize %s at %s: %w", a, dest, err)
		}
		return nil
	case KindTree:
		t, err := s.ReadTree(a.Digest)
		if err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		if err := os.Mkdir(dest, 0o755); err != nil {
			return fmt.Errorf("materialize %s: %w", a, err)
		}
		if err := s.fillTree(t, dest); err != nil {
			removeAllForce(dest)
			return fmt.Errorf("materialize %s at %s: %w", a, dest, err)
		}
		return nil
	}
	return fmt.Errorf("materialize %s: unknown artifact kind %q", a.Digest.Short(), a.Kind)
}

var errNotReusable = errors.New("not reusable")

// reuseInput makes the regular file at dest (fi) a read-only copy of file
// artifact a without a new inode: kept as it is if it already hashes to a,
// else truncated and copied over (re-hashed as Materialize does). A file
// with other links, or not ours, is not reused.
func (s *Store) reuseInput(a Artifact, dest string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok || st.Nlink != 1 || int(st.Uid) != os.Getuid() {
		return errNotReusable
	}
	if fi.Size() == a.Size {
		if d, _, err := hashFile(dest); err == nil && d == a.Digest {
			if fi.Mode().Perm() == 0o444 {
				return nil
			}
			return os.Chmod(dest, 0o444)
		}
	}
	if err := os.Chmod(dest, 0o600); err != nil {
		return err
	}
	// Written over from the start, then cut to size: truncating to zero
	// first would free the file's blocks (and, on ext4, make close flush
	// the file).
	f, err := os.OpenFile(dest, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return s.copyOut(a.Digest, f, 0o444, true)
}
