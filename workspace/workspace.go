// Package workspace opens the `.llmlab` directory of a pipeline: its store,
// its ledger and its salt, and answers the planner's cache questions from
// them.
package workspace

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/llmlab/llmlab/ledger"
	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/store"
)

// HomeEnv overrides where the `.llmlab` directory is.
const HomeEnv = "LLMLAB_HOME"

// Workspace is an open `.llmlab` directory.
type Workspace struct {
	Root     string // the .llmlab directory
	Pipeline string // absolute path of the pipeline file
	Store    *store.Store
	Ledger   *ledger.Ledger
	salt     []byte

	prevMu sync.Mutex
	prev   map[string]ledger.Completion // snapshot for Previous; nil until first used

	entriesMu sync.Mutex
	entries   map[string]*store.ActionEntry // action entries read by Action, by key
}

// Dir returns the `.llmlab` directory for a pipeline file.
func Dir(pipeline string) string {
	if h := os.Getenv(HomeEnv); h != "" {
		return h
	}
	abs, err := filepath.Abs(pipeline)
	if err != nil {
		abs = pipeline
	}
	return filepath.Join(filepath.Dir(abs), ".llmlab")
}

// Open opens (creating if needed) the workspace of a pipeline file.
func Open(pipeline string) (*Workspace, error) {
	abs, err := filepath.Abs(pipeline)
	if err != nil {
		return nil, err
	}
	root := Dir(pipeline)
	st, err := store.Open(root)
	if err != nil {
		return nil, fmt.Errorf("opening the store in %s: %w", root, err)
	}
	led, err := ledger.Open(ledger.PathIn(root))
	if err != nil {
		return nil, fmt.Errorf("opening the ledger in %s: %w", root, err)
	}
	salt, err := readSalt(filepath.Join(root, "salt"))
	if err != nil {
		led.Close()
		return nil, err
	}
	return &Workspace{Root: root, Pipeline: abs, Store: st, Ledger: led, salt: salt}, nil
}

// Close releases the ledger.
func (w *Workspace) Close() error { return w.Ledger.Close() }

// readSalt returns the workspace's random salt for sensitive-value hashes,
// creating it on first use. It never leaves the machine's .llmlab.
func readSalt(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// Salt implements planner.Cache.
func (w *Workspace) Salt() []byte { return w.salt }

// Action implements planner.Cache: a complete entry whose outputs are all
// present counts as cached. Presence is checked cheaply here; apply
// re-hashes what it serves.
func (w *Workspace) Action(key string) (planner.ActionStatus, error) {
	k, err := store.ParseActionKey(key)
	if err != nil {
		return planner.ActionStatus{}, err
	}
	e, err := w.Store.GetAction(k)
	if errors.Is(err, store.ErrNotFound) {
		return planner.ActionStatus{}, nil
	}
	if err != nil {
		return planner.ActionStatus{}, err
	}
	w.entriesMu.Lock()
	if w.entries == nil {
		w.entries = map[string]*store.ActionEntry{}
	}
	w.entries[key] = e
	w.entriesMu.Unlock()
	st := planner.ActionStatus{Found: true, OutputsIntact: true, Created: e.Finished, Metrics: e.Metrics}
	for _, a := range e.Outputs {
		if !w.Store.Has(a) {
			st.OutputsIntact = false
		}
	}
	return st, nil
}

// Entry returns the action entry that Action read (and checked against its
// checksum) for key, or nil. apply plans under the store lock and hands
// these to the executor (executor.Options.Entries), so that a cached stage
// costs one read of its entry, not two; the executor still re-hashes every
// output it serves.
func (w *Workspace) Entry(key string) *store.ActionEntry {
	w.entriesMu.Lock()
	defer w.entriesMu.Unlock()
	return w.entries[key]
}

// Previous implements planner.Cache from the ledger. The first call reads
// the last completion of every address of the pipeline in one query (plan
// asks about every stage); later calls answer from that snapshot until
// Refresh.
func (w *Workspace) Previous(address string) (*planner.Previous, error) {
	w.prevMu.Lock()
	if w.prev == nil {
		m, err := w.Ledger.LastCompletions(w.Pipeline)
		if err != nil {
			w.prevMu.Unlock()
			return nil, err
		}
		w.prev = m
	}
	c, ok := w.prev[address]
	w.prevMu.Unlock()
	if !ok {
		return nil, nil
	}
	return planner.DecodePrevious(c.Settings, c.Key, c.At)
}

// Refresh drops the ledger snapshot behind Previous, so that the next
// plan sees runs recorded since.
func (w *Workspace) Refresh() {
	w.prevMu.Lock()
	w.prev = nil
	w.prevMu.Unlock()
}

// Digest implements planner.Cache through the store's stat-keyed cache.
func (w *Workspace) Digest(path string) (string, error) {
	a, err := w.Store.HashPath(path)
	if err != nil {
		return "", err
	}
	return "sha256:" + a.Digest.String(), nil
}
