package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// fileRef is one file found under store/objects or store/actions.
type fileRef struct {
	id   [32]byte
	path string
	size int64
}

// listFanout lists dir/<2hex>/<64hex> files. Anything else is returned as
// stray (it should not exist: the store never writes temp files there).
func listFanout(dir string) (refs []fileRef, stray []string, err error) {
	subs, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, sub := range subs {
		sp := filepath.Join(dir, sub.Name())
		if !sub.IsDir() || len(sub.Name()) != 2 {
			stray = append(stray, sp)
			continue
		}
		ents, err := os.ReadDir(sp)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			p := filepath.Join(sp, e.Name())
			id, perr := parseHex32("name", e.Name())
			info, ierr := e.Info()
			if perr != nil || ierr != nil || !info.Mode().IsRegular() || !strings.HasPrefix(e.Name(), sub.Name()) {
				stray = append(stray, p)
				continue
			}
			refs = append(refs, fileRef{id: id, path: p, size: info.Size()})
		}
	}
	return refs, stray, nil
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Objects    int             // objects re-hashed
	Bytes      int64           // bytes re-hashed
	Corrupt    []*CorruptError // objects whose content does not match their name
	Stray      []string        // files under store/objects that are not objects
	Actions    int             // action entries read
	BadActions []ActionProblem // damaged entries and entries naming missing or corrupt objects
}

// ActionProblem is one action entry that cannot be served.
type ActionProblem struct {
	Key     ActionKey
	Address string // empty if the entry itself is damaged
	Problem string
}

func (p ActionProblem) String() string {
	if p.Address == "" {
		return fmt.Sprintf("action %s: %s", p.Key.Short(), p.Problem)
	}
	return fmt.Sprintf("action %s (%s): %s", p.Key.Short(), p.Address, p.Problem)
}

// OK reports whether the store is free of problems.
func (r VerifyReport) OK() bool {
	return len(r.Corrupt) == 0 && len(r.Stray) == 0 && len(r.BadActions) == 0
}

// Verify re-hashes every object and checks every action entry: that it is
// intact and that everything it names is present and intact. It only
// reads; Repair removes what Verify found.
func (s *Store) Verify() (VerifyReport, error) {
	var r VerifyReport
	refs, stray, err := listFanout(s.objects)
	if err != nil {
		return r, fmt.Errorf("store verify: %w", err)
	}
	r.Stray = stray
	present := make(map[Digest]bool, len(refs))
	corrupt := map[Digest]bool{}
	var mu sync.Mutex
	var firstErr error
	work := make(chan fileRef)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range work {
				d := Digest(ref.id)
				got, n, err := hashFile(ref.path)
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = fmt.Errorf("store verify: %w", err)
					}
				case got != d:
					corrupt[d] = true
					r.Corrupt = append(r.Corrupt, &CorruptError{Digest: d, Path: ref.path, Got: got})
				}
				r.Objects++
				r.Bytes += n
				mu.Unlock()
			}
		}()
	}
	for _, ref := range refs {
		present[Digest(ref.id)] = true
		work <- ref
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return r, firstErr
	}
	sort.Slice(r.Corrupt, func(i, j int) bool { return r.Corrupt[i].Path < r.Corrupt[j].Path })

	state := func(d Digest) string {
		switch {
		case !present[d]:
			return "missing"
		case corrupt[d]:
			return "corrupt"
		}
		return ""
	}
	arefs, astray, err := listFanout(s.actions)
	if err != nil {
		return r, fmt.Errorf("store verify: %w", err)
	}
	r.Stray = append(r.Stray, astray...)
	for _, ref := range arefs {
		k := ActionKey(ref.id)
		r.Actions++
		e, err := s.GetAction(k)
		var cae *CorruptActionError
		if errors.As(err, &cae) {
			r.BadActions = append(r.BadActions, ActionProblem{Key: k, Problem: cae.Error()})
			continue
		}
		if err != nil {
			return r, fmt.Errorf("store verify: %w", err)
		}
		var problems []string
		check := func(what string, d Digest) {
			if st := state(d); st != "" {
				problems = append(problems, fmt.Sprintf("%s object %s is %s", what, d.Short(), st))
			}
		}
		for _, name := range sortedNames(e.Outputs) {
			a := e.Outputs[name]
			what := fmt.Sprintf("output %q", name)
			check(what, a.Digest)
			if a.Kind != KindTree || state(a.Digest) != "" {
				continue
			}
			t, err := s.ReadTree(a.Digest)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", what, err))
				continue
			}
			for _, te := range t.Entries {
				if te.Mode == ModeFile || te.Mode == ModeExec {
					check(fmt.Sprintf("%s entry %s", what, te.Path), te.Digest)
				}
			}
		}
		if !e.LogDigest.IsZero() {
			check("log", e.LogDigest)
		}
		for _, p := range problems {
			r.BadActions = append(r.BadActions, ActionProblem{Key: k, Address: e.Address, Problem: p})
		}
	}
	return r, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Repair removes the corrupt objects and the action entries with problems
// that r lists, so that the stages concerned run again. It needs the store
// lock. It returns how many files it removed.
func (s *Store) Repair(r VerifyReport) (int, error) {
	if s.locksHeld.Load() == 0 {
		return 0, errors.New("store repair: the store lock is not held; take it with Lock first")
	}
	n := 0
	seen := map[ActionKey]bool{}
	for _, p := range r.BadActions {
		if seen[p.Key] {
			continue
		}
		seen[p.Key] = true
		if err := os.Remove(s.actionPath(p.Key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("store repair: %w", err)
		}
		n++
	}
	for _, c := range r.Corrupt {
		if err := os.Remove(s.objectPath(c.Digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("store repair: %w", err)
		}
		n++
	}
	return n, nil
}

// GCReport is the result of GC.
type GCReport struct {
	DryRun         bool
	ActionsKept    int
	ActionsRemoved []ActionKey // sorted
	ObjectsKept    int
	ObjectsRemoved int
	BytesFreed     int64 // objects and action entries removed (or that would be)
	TempRemoved    int   // leftover temp files and work dirs removed
}

// gcTempAge is how long a temp file or work dir must have been untouched
// before GC removes it.
const gcTempAge = time.Hour

// GC deletes every action entry whose key is not in keep, then every
// object not reachable from the kept entries (their outputs, tree entries
// and logs), then stale temp files and work dirs. With dryRun it only
// reports. GC needs the store lock (Lock), so that no apply is adding
// objects that are not referenced yet. A crash midway leaves a consistent
// store: entries go before the objects they name.
func (s *Store) GC(keep []ActionKey, dryRun bool) (GCReport, error) {
	r := GCReport{DryRun: dryRun}
	if s.locksHeld.Load() == 0 {
		return r, errors.New("store gc: the store lock is not held; take it with Lock first")
	}
	keepSet := make(map[ActionKey]bool, len(keep))
	for _, k := range keep {
		keepSet[k] = true
	}
	arefs, _, err := listFanout(s.actions)
	if err != nil {
		return r, fmt.Errorf("store gc: %w", err)
	}
	reachable := map[Digest]bool{}
	var drop []fileRef
	for _, ref := range arefs {
		k := ActionKey(ref.id)
		var e *ActionEntry
		if keepSet[k] {
			e, err = s.GetAction(k)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return r, fmt.Errorf("store gc: %w", err)
			}
		}
		if e == nil { // not kept, or damaged (a damaged entry is already a miss)
			drop = append(drop, ref)
			continue
		}
		r.ActionsKept++
		for _, a := range e.Outputs {
			reachable[a.Digest] = true
			if a.Kind == KindTree {
				if t, err := s.ReadTree(a.Digest); err == nil {
					for _, te := range t.Entries {
						if !te.Digest.IsZero() {
							reachable[te.Digest] = true
						}
					}
				}
			}
		}
		if !e.LogDigest.IsZero() {
			reachable[e.LogDigest] = true
		}
	}
	sort.Slice(drop, func(i, j int) bool { return drop[i].path < drop[j].path })
	for _, ref := range drop {
		r.ActionsRemoved = append(r.ActionsRemoved, ActionKey(ref.id))
		r.BytesFreed += ref.size
		if !dryRun {
			if err := os.Remove(ref.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return r, fmt.Errorf("store gc: %w", err)
			}
		}
	}
	orefs, _, err := listFanout(s.objects)
	if err != nil {
		return r, fmt.Errorf("store gc: %w", err)
	}
	for _, ref := range orefs {
		if reachable[Digest(ref.id)] {
			r.ObjectsKept++
			continue
		}
		r.ObjectsRemoved++
		r.BytesFreed += ref.size
		if !dryRun {
			if err := os.Remove(ref.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return r, fmt.Errorf("store gc: %w", err)
			}
		}
	}
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return r, fmt.Errorf("store gc: %w", err)
	}
	cutoff := time.Now().Add(-gcTempAge)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		r.TempRemoved++
		if !dryRun {
			if err := removeAllForce(filepath.Join(s.tmp, e.Name())); err != nil {
				return r, fmt.Errorf("store gc: %w", err)
			}
		}
	}
	return r, nil
}

// removeAllForce is os.RemoveAll that first makes directories writable
// (stage outputs or materialized inputs may contain read-only ones).
func removeAllForce(p string) error {
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// RemoveWorkDir removes a work directory made by NewWorkDir, including
// read-only parts.
func (s *Store) RemoveWorkDir(dir string) error { return removeAllForce(dir) }

// EmptyWorkDir empties a work directory made by NewWorkDir so that it can
// serve another stage: everything in it is removed (read-only parts too)
// except the subdirectory keep, if there is one, which is made writable
// (0755) and keeps only its regular files (the inputs an earlier stage
// had, for PlaceInput to reuse or for the caller to remove); dir itself
// gets NewWorkDir's mode (0700) back. It reports whether keep was kept, and
// the files left in it. On error the directory is not fit for reuse:
// remove it with RemoveWorkDir. Reusing a directory, and the inodes in
// it, instead of removing them and making new ones spares the filesystem
// inode allocations and deletions: on ext4 without a journal every
// allocation scans past the inodes deleted in the last seconds.
func (s *Store) EmptyWorkDir(dir, keep string) (kept bool, files []string, err error) {
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, nil, err
	}
	names, err := readNames(dir)
	if err != nil {
		return false, nil, err
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if name == keep && keep != "" {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				if files, err = keepFiles(p); err != nil {
					return false, nil, err
				}
				kept = true
				continue
			}
		}
		if err := removeAllForce(p); err != nil {
			return false, nil, err
		}
	}
	return kept, files, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// keepFiles makes dir 0755 and removes everything in it but regular files,
// whose names it returns.
func keepFiles(dir string) ([]string, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			files = append(files, e.Name())
			continue
		}
		if err := removeAllForce(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Usage is the result of Du.
type Usage struct {
	Objects     int
	ObjectBytes int64
	Actions     int
	ActionBytes int64
	TempBytes   int64 // temp files and work dirs
}

// Du reports how much the store holds.
func (s *Store) Du() (Usage, error) {
	var u Usage
	orefs, _, err := listFanout(s.objects)
	if err != nil {
		return u, fmt.Errorf("store du: %w", err)
	}
	for _, r := range orefs {
		u.Objects++
		u.ObjectBytes += r.size
	}
	arefs, _, err := listFanout(s.actions)
	if err != nil {
		return u, fmt.Errorf("store du: %w", err)
	}
	for _, r := range arefs {
		u.Actions++
		u.ActionBytes += r.size
	}
	filepath.WalkDir(s.tmp, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				u.TempBytes += info.Size()
			}
		}
		return nil
	})
	return u, nil
}

// Actions returns every intact action entry, sorted by address, then
// finish time, then key. Damaged entries are skipped (Verify lists them).
func (s *Store) Actions() ([]*ActionEntry, error) {
	arefs, _, err := listFanout(s.actions)
	if err != nil {
		return nil, fmt.Errorf("store ls: %w", err)
	}
	var out []*ActionEntry
	for _, ref := range arefs {
		e, err := s.GetAction(ActionKey(ref.id))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store ls: %w", err)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		if !a.Finished.Equal(b.Finished) {
			return a.Finished.Before(b.Finished)
		}
		return a.Key.String() < b.Key.String()
	})
	return out, nil
}
