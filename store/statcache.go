package store

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// statCache remembers the digest of input files keyed by what stat(2)
// says about them, so that large unchanged inputs are not re-hashed. An
// entry is trusted only if path, size, mtime, ctime, inode, device and
// mode all match and the file's ctime was at least racyWindow older than
// the moment hashing began: a file changed in the same timestamp tick as
// it was hashed (the "racy git" problem) is hashed again. ctime cannot be
// set from user space, so restoring an mtime (touch -d) does not hide a
// change.
type statCache struct {
	file       string
	racyWindow time.Duration

	mu      sync.Mutex
	loaded  bool
	entries map[string]statEntry
	dirty   map[string]bool
}

type statEntry struct {
	Size     int64  `json:"size"`
	Mtime    int64  `json:"mtime_ns"`
	Ctime    int64  `json:"ctime_ns"`
	Ino      uint64 `json:"ino"`
	Dev      uint64 `json:"dev"`
	Mode     uint32 `json:"mode"`
	Digest   Digest `json:"digest"`
	HashedAt int64  `json:"hashed_at_ns"` // wall clock when reading began
}

const statCacheVersion = 1

type statCacheFile struct {
	Version int                  `json:"version"`
	Entries map[string]statEntry `json:"entries"`
}

// statCacheMax bounds the persisted cache; the least recently hashed
// entries are dropped beyond it.
const statCacheMax = 200000

func newStatCache(file string) *statCache {
	return &statCache{file: file, racyWindow: 2 * time.Second, dirty: map[string]bool{}}
}

func readStatCacheFile(file string) map[string]statEntry {
	b, err := os.ReadFile(file)
	if err != nil {
		return map[string]statEntry{}
	}
	var f statCacheFile
	if json.Unmarshal(b, &f) != nil || f.Version != statCacheVersion || f.Entries == nil {
		return map[string]statEntry{} // a damaged cache only costs re-hashing
	}
	return f.Entries
}

func statKey(info fs.FileInfo) (statEntry, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return statEntry{}, false
	}
	return statEntry{
		Size:  info.Size(),
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev),
		Mode:  uint32(st.Mode),
	}, true
}

func (c *statCache) lookup(abs string, info fs.FileInfo) (Digest, bool) {
	k, ok := statKey(info)
	if !ok {
		return Digest{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		c.entries = readStatCacheFile(c.file)
		c.loaded = true
	}
	e, ok := c.entries[abs]
	if !ok {
		return Digest{}, false
	}
	d, hashedAt := e.Digest, e.HashedAt
	e.Digest, e.HashedAt = Digest{}, 0
	if e != k || k.Ctime+int64(c.racyWindow) >= hashedAt {
		return Digest{}, false
	}
	return d, true
}

func (c *statCache) record(abs string, info fs.FileInfo, d Digest, hashedAt time.Time) {
	k, ok := statKey(info)
	if !ok {
		return
	}
	k.Digest, k.HashedAt = d, hashedAt.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		c.entries = readStatCacheFile(c.file)
		c.loaded = true
	}
	c.entries[abs] = k
	c.dirty[abs] = true
}

// save merges this process's new entries into the file on disk (other
// processes may have added theirs) and replaces it atomically.
func (c *statCache) save(s *Store) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) == 0 {
		return nil
	}
	disk := readStatCacheFile(c.file)
	for p := range c.dirty {
		disk[p] = c.entries[p]
	}
	if len(disk) > statCacheMax {
		paths := make([]string, 0, len(disk))
		for p := range disk {
			paths = append(paths, p)
		}
		sort.Slice(paths, func(i, j int) bool { return disk[paths[i]].HashedAt > disk[paths[j]].HashedAt })
		for _, p := range paths[statCacheMax:] {
			delete(disk, p)
		}
	}
	b, err := json.Marshal(statCacheFile{Version: statCacheVersion, Entries: disk})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmp, "tmp-statcache-")
	if err != nil {
		return fmt.Errorf("store: digest cache: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.file)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store: digest cache: %w", err)
	}
	c.entries = disk
	c.dirty = map[string]bool{}
	return nil
}

// digestInput returns the digest of a user's input file through the
// digest cache.
func (s *Store) digestInput(abs string, info fs.FileInfo) (Digest, int64, error) {
	if d, ok := s.stat.lookup(abs, info); ok {
		return d, info.Size(), nil
	}
	start := time.Now()
	f, err := os.Open(abs)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("input %s: %w", abs, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return Digest{}, 0, fmt.Errorf("input %s: %w", abs, err)
	}
	d, n, err := hashReader(f)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("input %s: %w", abs, err)
	}
	s.filesHashed.Add(1)
	after, err := f.Stat()
	if err != nil {
		return Digest{}, 0, fmt.Errorf("input %s: %w", abs, err)
	}
	kb, _ := statKey(before)
	ka, _ := statKey(after)
	if kb == ka && n == after.Size() {
		s.stat.record(abs, after, d, start)
	}
	return d, n, nil
}

// HashPath returns the artifact a user's input file or directory would
// become, without storing it. File digests come from the stat-keyed digest
// cache (persisted under the store) when the file is unchanged. A symlink
// given as path is followed; symlinks inside a directory must stay inside.
func (s *Store) HashPath(p string) (Artifact, error) {
	return s.addInput(p, false)
}

// AddPath copies a user's input file or directory into the store (inputs
// are never moved) and returns its artifact, using the digest cache to skip
// re-hashing and skipping the copy of files already stored.
func (s *Store) AddPath(p string) (Artifact, error) {
	return s.addInput(p, true)
}

func (s *Store) addInput(p string, store bool) (Artifact, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Artifact{}, fmt.Errorf("input %s: %w", p, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return Artifact{}, fmt.Errorf("input: %w", err)
	}
	fileFn := func(abs string, info fs.FileInfo) (Digest, int64, error) {
		d, n, err := s.digestInput(abs, info)
		if err != nil || !store {
			return d, n, err
		}
		if st, err := os.Stat(s.objectPath(d)); err == nil && st.Size() == n {
			return d, n, nil
		}
		return d, n, s.copyIn(abs, d)
	}
	var a Artifact
	switch {
	case info.Mode().IsRegular():
		d, n, err := fileFn(abs, info)
		if err != nil {
			return Artifact{}, err
		}
		a = Artifact{Kind: KindFile, Digest: d, Size: n}
	case info.IsDir():
		entries, total, err := buildTree(abs, func(e *scanned) (Digest, int64, error) {
			return fileFn(e.abs, e.info)
		})
		if err != nil {
			return Artifact{}, err
		}
		m := encodeTree(entries)
		d := DigestOf(m)
		if store {
			if d, err = s.PutBytes(m); err != nil {
				return Artifact{}, err
			}
		}
		a = Artifact{Kind: KindTree, Digest: d, Size: total}
	default:
		return Artifact{}, fmt.Errorf("input %s: a %s is not a file or directory", p, typeName(info.Mode()))
	}
	if err := s.stat.save(s); err != nil {
		return Artifact{}, err
	}
	return a, nil
}
