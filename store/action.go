package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ActionEntry is the action cache's record of one successful stage run:
// what its cache key produced. It is written last, after every object it
// names, so a crash leaves either no entry or a complete one.
type ActionEntry struct {
	Key       ActionKey           `json:"key"`
	Address   string              `json:"address"` // e.g. stage.train, for `store ls`
	Kind      string              `json:"kind"`    // stage kind
	Outputs   map[string]Artifact `json:"outputs"`
	Metrics   map[string]float64  `json:"metrics,omitempty"` // NaN and ±Inf allowed
	LogDigest Digest              `json:"log_digest,omitzero"`
	Started   time.Time           `json:"started"`
	Finished  time.Time           `json:"finished"`
}

// actionHeader starts every action file; the hex SHA-256 of the JSON body
// follows it on the first line, so truncation or bit rot is detected.
const actionHeader = "llmlab-action/1 "

// CorruptActionError reports an action entry that is truncated, damaged
// or does not belong to its key. It matches ErrNotFound under errors.Is:
// the entry is treated as absent and the stage runs again.
type CorruptActionError struct {
	Key    ActionKey
	Path   string
	Reason string
}

func (e *CorruptActionError) Error() string {
	return fmt.Sprintf("action cache entry %s is damaged (%s): %s; it is ignored, so the stage will run again", e.Key, e.Path, e.Reason)
}

// Is makes a damaged entry a cache miss for errors.Is(err, ErrNotFound).
func (e *CorruptActionError) Is(target error) bool { return target == ErrNotFound }

// metric is a float64 that survives JSON when it is NaN or infinite.
type metric float64

func (m metric) MarshalJSON() ([]byte, error) {
	f := float64(m)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (m *metric) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("metric %q: %v", s, err)
		}
		*m = metric(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = metric(f)
	return nil
}

type actionJSON struct {
	ActionEntry
	Metrics map[string]metric `json:"metrics,omitempty"`
}

func encodeAction(e *ActionEntry) ([]byte, error) {
	j := actionJSON{ActionEntry: *e}
	if e.Metrics != nil {
		j.Metrics = make(map[string]metric, len(e.Metrics))
		for k, v := range e.Metrics {
			j.Metrics[k] = metric(v)
		}
	}
	body, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode action entry %s: %w", e.Key.Short(), err)
	}
	body = append(body, '\n')
	var buf bytes.Buffer
	buf.WriteString(actionHeader)
	buf.WriteString(DigestOf(body).String())
	buf.WriteByte('\n')
	buf.Write(body)
	return buf.Bytes(), nil
}

func decodeAction(b []byte) (*ActionEntry, string) {
	line, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(actionHeader)) {
		return nil, "missing header (truncated or not an action entry)"
	}
	want, err := ParseDigest(string(line[len(actionHeader):]))
	if err != nil {
		return nil, "bad header checksum"
	}
	if got := DigestOf(body); got != want {
		return nil, fmt.Sprintf("content hashes to %s, header says %s (truncated or damaged)", got.Short(), want.Short())
	}
	var j actionJSON
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, "invalid JSON: " + err.Error()
	}
	e := j.ActionEntry
	e.Metrics = nil
	if j.Metrics != nil {
		e.Metrics = make(map[string]float64, len(j.Metrics))
		for k, v := range j.Metrics {
			e.Metrics[k] = float64(v)
		}
	}
	return &e, ""
}

// PutAction records e atomically. Every output (and the log, if any) must
// already be in the store; otherwise PutAction fails and writes nothing,
// keeping the invariant that an entry never names a missing object. It
// first makes those objects durable, then writes the entry (fsynced before
// its rename); the entry itself is durable after the next Sync.
func (s *Store) PutAction(e *ActionEntry) error {
	if e.Key.IsZero() {
		return errors.New("put action entry: zero action key")
	}
	for name, a := range e.Outputs {
		if !s.Has(a) {
			return fmt.Errorf("put action entry %s (%s): output %q (%s) is not in the store; store outputs before the entry", e.Key.Short(), e.Address, name, a)
		}
	}
	if !e.LogDigest.IsZero() {
		if _, err := os.Stat(s.objectPath(e.LogDigest)); err != nil {
			return fmt.Errorf("put action entry %s (%s): log %s is not in the store", e.Key.Short(), e.Address, e.LogDigest.Short())
		}
	}
	b, err := encodeAction(e)
	if err != nil {
		return err
	}
	// The entry's temp file is written and fsynced while the objects'
	// directories are: nothing is visible until the rename below.
	type written struct {
		tmp string
		err error
	}
	temp := make(chan written, 1)
	go func() {
		tmp, err := s.writeTemp(func(f *os.File) error {
			_, err := f.Write(b)
			return err
		})
		temp <- written{tmp, err}
	}()
	// The objects' renames must be durable before the entry's can be: a
	// crash must never keep an entry and lose what it names.
	var syncErr error
	for _, a := range e.Outputs {
		if syncErr = s.syncDirty(filepath.Dir(s.objectPath(a.Digest))); syncErr != nil {
			break
		}
	}
	if syncErr == nil && !e.LogDigest.IsZero() {
		syncErr = s.syncDirty(filepath.Dir(s.objectPath(e.LogDigest)))
	}
	w := <-temp
	if syncErr != nil {
		if w.err == nil {
			os.Remove(w.tmp)
		}
		return fmt.Errorf("put action entry %s (%s): %w", e.Key.Short(), e.Address, syncErr)
	}
	if w.err != nil {
		return w.err
	}
	return s.publish(w.tmp, s.actionPath(e.Key))
}

// GetAction returns the entry for k. An absent entry is an ErrNotFound
// error; a damaged one is a *CorruptActionError, which also matches
// ErrNotFound. GetAction does not check the outputs; use Has or
// VerifyArtifact on them.
func (s *Store) GetAction(k ActionKey) (*ActionEntry, error) {
	p := s.actionPath(k)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("action cache entry %s: %w", k, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("action cache entry %s: %w", k, err)
	}
	e, reason := decodeAction(b)
	if reason == "" && e.Key != k {
		reason = "it belongs to key " + e.Key.String()
	}
	if reason != "" {
		return nil, &CorruptActionError{Key: k, Path: p, Reason: reason}
	}
	return e, nil
}
