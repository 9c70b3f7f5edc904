package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Cache is what the planner needs to know about past runs. The store and
// the ledger implement it; tests use MemCache. Action is called from
// several goroutines at once.
type Cache interface {
	// Action reports whether a complete action exists for key, when it was
	// made, and whether all its outputs are present.
	Action(key string) (status ActionStatus, err error)
	// Previous returns what the last successful run of an address used.
	Previous(address string) (*Previous, error)
	// Digest hashes a user's file or directory by content.
	Digest(path string) (string, error)
	// Salt is mixed into the hashes of sensitive values.
	Salt() []byte
}

// ActionStatus is the state of one cache entry.
type ActionStatus struct {
	Found         bool
	OutputsIntact bool
	Created       time.Time
	Metrics       map[string]float64
}

// Previous is what an address last ran with.
type Previous struct {
	Key         string            `json:"key"`
	KindVersion int               `json:"kind_version"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Settings    map[string]any    `json:"settings"`
	Inputs      map[string]string `json:"inputs"`
	At          time.Time         `json:"at"`
}

// MemCache is an in-memory Cache for tests and dry runs.
type MemCache struct {
	mu       sync.Mutex
	Actions  map[string]ActionStatus
	Prev     map[string]*Previous
	SaltVal  []byte
	hashOnly bool
}

// NewMemCache returns an empty in-memory cache.
func NewMemCache() *MemCache {
	return &MemCache{Actions: map[string]ActionStatus{}, Prev: map[string]*Previous{}, SaltVal: []byte("test-salt")}
}

func (m *MemCache) Action(key string) (ActionStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Actions[key], nil
}

func (m *MemCache) Previous(address string) (*Previous, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Prev[address], nil
}

func (m *MemCache) Salt() []byte { return m.SaltVal }

// Digest hashes a file, or a directory as a sorted list of relative names
// and file digests.
func (m *MemCache) Digest(path string) (string, error) { return DigestPath(path) }

// Record marks a plan's stages as successfully run: what apply would do.
func (m *MemCache) Record(p *Plan, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range p.Stages {
		m.Actions[s.Key] = ActionStatus{Found: true, OutputsIntact: true, Created: at}
		m.Prev[s.Address] = &Previous{Key: s.Key, KindVersion: s.KindVersion, Fingerprint: s.Fingerprint,
			Settings: normalizeJSON(s.KeySettings).(map[string]any), Inputs: s.KeyInputs, At: at}
	}
}

// DigestPath is a simple content digest of a file or directory without any
// stat cache: "sha256:<hex>".
func DigestPath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if !st.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		h.Write(b)
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	var names []string
	err = filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			rel, _ := filepath.Rel(path, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		d, err := DigestPath(filepath.Join(path, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", d, n)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// encodePrevious is the ledger's stored form of a stage's settings.
func EncodePrevious(s *StagePlan) json.RawMessage {
	return canonicalJSON(map[string]any{
		"kind_version": s.KindVersion,
		"fingerprint":  s.Fingerprint,
		"settings":     s.KeySettings,
		"inputs":       s.KeyInputs,
	})
}

// DecodePrevious reads what EncodePrevious wrote.
func DecodePrevious(b json.RawMessage, key string, at time.Time) (*Previous, error) {
	p := &Previous{Key: key, At: at}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}
