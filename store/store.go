package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned (wrapped) when an object or action entry is not in
// the store. A corrupt action entry is also reported as not found (see
// CorruptActionError), so callers can treat both as a cache miss with
// errors.Is(err, ErrNotFound).
var ErrNotFound = errors.New("not in the store")

// CorruptError reports an object whose content does not hash to its name.
// Such an object is never served.
type CorruptError struct {
	Digest Digest // the object's name: the digest its content should have
	Path   string // the object's file
	Got    Digest // what the content actually hashes to
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store object %s is corrupt (%s): content hashes to %s; run `llmlab store verify` to find every damaged object (removing a damaged object makes the stage that produced it run again)",
		e.Digest, e.Path, e.Got)
}

// tempMaxAge is how old a leftover temp file must be before Open removes
// it. Temp files that are being written have a fresh mtime.
const tempMaxAge = time.Hour

// Store is a content-addressed store rooted at a `.llmlab` directory. It is
// safe for concurrent use by several goroutines and several processes; the
// store lock (Lock) is needed only for operations that delete (GC) and to
// keep two applies from running at once.
type Store struct {
	root    string
	objects string
	actions string
	tmp     string

	dirMu     sync.Mutex
	knownDirs map[string]bool      // object/action subdirectories known to exist
	dirty     map[string]*dirState // fan-out directories with renames not yet fsynced

	stat *statCache

	locksHeld atomic.Int32

	// filesHashed counts files whose content was read to compute a digest
	// by HashPath/AddPath; tests use it to prove the digest cache is used.
	filesHashed atomic.Int64
}

// Open opens (creating if needed) the store under root, the `.llmlab`
// directory, and removes temp files left behind by killed processes.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store root %q: %w", root, err)
	}
	s := &Store{
		root:      abs,
		objects:   filepath.Join(abs, "store", "objects"),
		actions:   filepath.Join(abs, "store", "actions"),
		tmp:       filepath.Join(abs, "store", "tmp"),
		knownDirs: map[string]bool{},
		dirty:     map[string]*dirState{},
	}
	for _, d := range []string{s.objects, s.actions, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create store directory: %w", err)
		}
	}
	if err := s.makeFanout(); err != nil {
		return nil, err
	}
	s.stat = newStatCache(filepath.Join(abs, "store", "statcache.json"))
	s.cleanTemp(tempMaxAge)
	return s, nil
}

// Root returns the absolute path of the `.llmlab` directory.
func (s *Store) Root() string { return s.root }

// cleanTemp removes temp files (not work dirs) older than maxAge.
func (s *Store) cleanTemp(maxAge time.Duration) {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-maxAge)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "tmp-") {
			continue
		}
		info, err := e.Info()
		if err == nil && info.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(s.tmp, e.Name()))
		}
	}
}

// NewWorkDir creates a fresh empty directory under store/tmp, on the same
// filesystem as the objects so that PutArtifact can move outputs in with a
// rename. The caller removes it when done; `store gc` removes leftovers.
func (s *Store) NewWorkDir(prefix string) (string, error) {
	prefix = strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, prefix)
	d, err := os.MkdirTemp(s.tmp, "work-"+prefix+"-")
	if err != nil {
		return "", fmt.Errorf("cannot create work directory: %w", err)
	}
	return d, nil
}

func (s *Store) objectPath(d Digest) string {
	h := d.String()
	return filepath.Join(s.objects, h[:2], h)
}

func (s *Store) actionPath(k ActionKey) string {
	h := k.String()
	return filepath.Join(s.actions, h[:2], h)
}

// makeFanout creates the 256 fan-out directories of objects/ and actions/
// once, when the store is new, so that committing an object never has to
// create (and fsync the parent of) one. Directories are made in order and
// the parents synced last, so an existing ff means all exist; one removed
// by hand is made again by ensureDir.
func (s *Store) makeFanout() error {
	for _, top := range []string{s.objects, s.actions} {
		if fi, err := os.Stat(filepath.Join(top, "ff")); err == nil && fi.IsDir() {
			continue
		}
		for i := 0; i < 256; i++ {
			err := os.Mkdir(filepath.Join(top, fmt.Sprintf("%02x", i)), 0o755)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cannot create store directory: %w", err)
			}
		}
		if err := syncDir(top); err != nil {
			return err
		}
	}
	// All 512 exist now (see above): committing into them needs no mkdir.
	for _, top := range []string{s.objects, s.actions} {
		for i := 0; i < 256; i++ {
			s.knownDirs[filepath.Join(top, fmt.Sprintf("%02x", i))] = true
		}
	}
	return nil
}

// forgetDir makes ensureDir check dir again.
func (s *Store) forgetDir(dir string) {
	s.dirMu.Lock()
	delete(s.knownDirs, dir)
	s.dirMu.Unlock()
}

// dirState counts the renames into one fan-out directory (gen) and how
// many of them an fsync is known to cover (synced).
type dirState struct {
	mu          sync.Mutex // held while syncing
	gen, synced uint64     // guarded by Store.dirMu
}

// markDirty records that an entry was just renamed into dir and is
// visible but not yet durable.
func (s *Store) markDirty(dir string) {
	s.dirMu.Lock()
	d := s.dirty[dir]
	if d == nil {
		d = &dirState{}
		s.dirty[dir] = d
	}
	d.gen++
	s.dirMu.Unlock()
}

// syncDirty fsyncs dir if a rename into it is not yet known to be durable.
// Concurrent callers for one directory share one fsync: each waits for a
// sync that started after the renames it depends on.
func (s *Store) syncDirty(dir string) error {
	s.dirMu.Lock()
	d := s.dirty[dir]
	s.dirMu.Unlock()
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s.dirMu.Lock()
	target, done := d.gen, d.synced
	s.dirMu.Unlock()
	if done >= target {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	s.dirMu.Lock()
	d.synced = max(d.synced, target)
	s.dirMu.Unlock()
	return nil
}

// Sync makes durable every object and action entry this Store has
// committed: it fsyncs each fan-out directory that received one since the
// last Sync. Objects and entries are visible as soon as their Put returns;
// an object is durable at the latest when an action entry naming it is
// written (PutAction syncs its objects first), an entry when Sync returns.
// A crash before then loses the entry (its stage runs again) and never
// leaves an entry whose objects are lost.
func (s *Store) Sync() error {
	s.dirMu.Lock()
	dirs := make([]string, 0, len(s.dirty))
	for dir, d := range s.dirty {
		if d.synced < d.gen {
			dirs = append(dirs, dir)
		}
	}
	s.dirMu.Unlock()
	// Directory fsyncs are independent: run a few at once so the
	// filesystem can commit them together.
	const workers = 8
	errs := make(chan error, len(dirs))
	next := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, len(dirs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dir := range next {
				errs <- s.syncDirty(dir)
			}
		}()
	}
	for _, dir := range dirs {
		next <- dir
	}
	close(next)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// ensureDir creates dir (a 2-hex fan-out directory) if needed, fsyncing its
// parent when it was created so the new entry is durable.
func (s *Store) ensureDir(dir string) error {
	s.dirMu.Lock()
	known := s.knownDirs[dir]
	s.dirMu.Unlock()
	if known {
		return nil
	}
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("cannot create store directory: %w", err)
	}
	s.dirMu.Lock()
	s.knownDirs[dir] = true
	s.dirMu.Unlock()
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// writeAtomic writes final through a temp file in store/tmp: write, fsync,
// chmod 0444, close, rename. The directory is marked dirty, not synced:
// see Sync.
func (s *Store) writeAtomic(final string, write func(f *os.File) error) error {
	tmp, err := s.writeTemp(write)
	if err != nil {
		return err
	}
	return s.publish(tmp, final)
}

// writeTemp writes a temp file in store/tmp: write, fsync, chmod 0444,
// close. On error nothing is left.
func (s *Store) writeTemp(write func(f *os.File) error) (string, error) {
	f, err := os.CreateTemp(s.tmp, "tmp-")
	if err != nil {
		return "", fmt.Errorf("store: create temp file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("store: sync %s: %w", tmp, err)
	}
	if err := f.Chmod(0o444); err != nil {
		return "", fmt.Errorf("store: chmod %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("store: close %s: %w", tmp, err)
	}
	ok = true
	return tmp, nil
}

// publish renames a temp file made by writeTemp to final and marks final's
// directory dirty (see Sync). On error the temp file is removed.
func (s *Store) publish(tmp, final string) error {
	err := s.ensureDir(filepath.Dir(final))
	if err == nil {
		err = os.Rename(tmp, final)
		if errors.Is(err, fs.ErrNotExist) {
			// A fan-out directory removed by hand since it was known.
			s.forgetDir(filepath.Dir(final))
			if err = s.ensureDir(filepath.Dir(final)); err == nil {
				err = os.Rename(tmp, final)
			}
		}
		if err != nil {
			err = fmt.Errorf("store: rename into place: %w", err)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	s.markDirty(filepath.Dir(final))
	return nil
}

// PutBytes stores b as a blob and returns its digest. Storing content that
// is already present and intact writes nothing.
func (s *Store) PutBytes(b []byte) (Digest, error) {
	d := DigestOf(b)
	p := s.objectPath(d)
	if cur, err := os.ReadFile(p); err == nil && DigestOf(cur) == d {
		// Possibly renamed by a process that died before syncing it.
		s.markDirty(filepath.Dir(p))
		return d, nil
	}
	err := s.writeAtomic(p, func(f *os.File) error {
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("store: write object %s: %w", d.Short(), err)
		}
		return nil
	})
	return d, err
}

func (s *Store) notFound(d Digest) error {
	return fmt.Errorf("store object %s: %w (%s)", d, ErrNotFound, s.objectPath(d))
}

// ReadBlob returns the content of object d after checking that it hashes to
// d; a mismatch returns a *CorruptError and no content.
func (s *Store) ReadBlob(d Digest) ([]byte, error) {
	p := s.objectPath(d)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.notFound(d)
	}
	if err != nil {
		return nil, fmt.Errorf("store object %s: %w", d, err)
	}
	if got := DigestOf(b); got != d {
		return nil, &CorruptError{Digest: d, Path: p, Got: got}
	}
	return b, nil
}

// OpenBlob opens object d for streaming. The reader hashes what it returns
// and, instead of io.EOF, returns a *CorruptError if the content did not
// hash to d; consumers must not commit to anything they read before EOF.
func (s *Store) OpenBlob(d Digest) (io.ReadCloser, error) {
	p := s.objectPath(d)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.notFound(d)
	}
	if err != nil {
		return nil, fmt.Errorf("store object %s: %w", d, err)
	}
	return &verifyingReader{f: f, h: sha256.New(), want: d, path: p}, nil
}

type verifyingReader struct {
	f    *os.File
	h    hash.Hash
	want Digest
	path string
	err  error
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		var got Digest
		r.h.Sum(got[:0])
		if got != r.want {
			err = &CorruptError{Digest: r.want, Path: r.path, Got: got}
		}
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

// hashBufSize is the read size used when hashing files.
const hashBufSize = 1 << 20

var hashBufPool = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// hashReader returns the SHA-256 and length of everything r yields.
func hashReader(r io.Reader) (Digest, int64, error) {
	bp := hashBufPool.Get().(*[]byte)
	defer hashBufPool.Put(bp)
	buf := *bp
	h := sha256.New()
	var n int64
	for {
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Digest{}, n, err
		}
	}
	var d Digest
	h.Sum(d[:0])
	return d, n, nil
}

// hashFile returns the digest and size of the file at path.
func hashFile(path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, 0, err
	}
	defer f.Close()
	return hashReader(f)
}

// checkObject re-hashes object d; it returns nil, an ErrNotFound error or a
// *CorruptError.
func (s *Store) checkObject(d Digest) (int64, error) {
	p := s.objectPath(d)
	got, n, err := hashFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, s.notFound(d)
	}
	if err != nil {
		return 0, fmt.Errorf("store object %s: %w", d, err)
	}
	if got != d {
		return n, &CorruptError{Digest: d, Path: p, Got: got}
	}
	return n, nil
}
