// Package stages defines what a stage kind is: its schema, its named
// outputs, and (for kinds that can run) how it runs. Kinds live in
// sub-packages and register themselves; they know nothing of the graph.
package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Kind is one stage kind (exec, pretrain, ...).
type Kind interface {
	// Name is the kind label used in `stage "<name>" "..."`.
	Name() string
	// Version enters cache keys; bump it when the kind's results change.
	Version() int
	// Schema describes the kind's settings (its block body).
	Schema() *Schema
	// Outputs names the artifacts a stage of this kind gives, given its
	// resolved settings (exec declares them; other kinds have fixed ones).
	Outputs(settings map[string]any) []string
}

// Fingerprinter is implemented by kinds whose results depend on something
// outside their settings and inputs, such as the numeric backend. The
// fingerprint enters the cache key.
type Fingerprinter interface {
	Fingerprint() string
}

// KeyPruner is implemented by kinds some of whose settings do not matter
// for some values of others (finetune's lora block when method = "full").
// PruneKey deletes those from the settings that enter the cache key, so
// that changing them reruns nothing; the stage still sees every setting.
type KeyPruner interface {
	PruneKey(keySettings map[string]any)
}

// Runner is implemented by kinds that can execute.
type Runner interface {
	Run(ctx context.Context, job *Job) (*Result, error)
}

// Job is everything a stage needs to run, with nothing of the graph.
type Job struct {
	Address  string
	WorkDir  string            // fresh, empty; outputs are written here
	Settings map[string]any    // resolved settings (clear values), JSON-shaped
	Inputs   map[string]string // input name (settings path, e.g. "data" or "inputs.base") -> absolute read-only path
	Env      map[string]string // extra environment (exec's declared env)
	Threads  int               // CPUs granted
	// StateDir persists across attempts of the same cache key (and across
	// a killed apply), so long stages can checkpoint and resume. It is
	// removed once the stage's outputs are committed.
	StateDir string
	// TempDir, if set, is an empty private directory for the stage's
	// temporary files (exec's TMPDIR), emptied by the executor afterwards;
	// if "", a kind that needs one makes its own.
	TempDir  string
	Log      io.Writer      // the stage's log (kept in the store)
	Progress func(Progress) // may be nil
}

// Progress is one progress report of a long stage.
type Progress struct {
	Step, Steps int
	Loss        float64
	TokensPerS  float64
	ETA         time.Duration
	Message     string
}

// MetricPoint is one value of a metric at a training step.
type MetricPoint struct {
	Name  string  `json:"name"`
	Step  int     `json:"step"`
	Value float64 `json:"value"`
}

// Result is what a successful run produced.
type Result struct {
	Outputs map[string]string  // output name -> path relative to WorkDir
	Metrics map[string]float64 // final values
	History []MetricPoint      // per-step values
}

// ExitError reports a failed external command with its exit status.
type ExitError struct {
	Status int
	Tail   string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command exited with status %d", e.Status)
}

var (
	mu       sync.RWMutex
	registry = map[string]Kind{}
)

// Register adds a kind; kinds call it from init.
func Register(k Kind) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[k.Name()]; dup {
		panic("stages: kind registered twice: " + k.Name())
	}
	registry[k.Name()] = k
}

// Lookup finds a registered kind.
func Lookup(name string) (Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := registry[name]
	return k, ok
}

// Names lists registered kinds, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DecodeSettings converts a JSON-shaped settings map into a typed struct via
// JSON, the way kinds read their settings.
func DecodeSettings(settings map[string]any, into any) error {
	b, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// Static is a kind described by data alone: a name, a version, a schema and
// fixed outputs. Kinds embed it and add Run.
type Static struct {
	KindName    string
	KindVersion int
	KindSchema  *Schema
	OutputNames []string
}

func (s *Static) Name() string                    { return s.KindName }
func (s *Static) Version() int                    { return s.KindVersion }
func (s *Static) Schema() *Schema                 { return s.KindSchema }
func (s *Static) Outputs(map[string]any) []string { return s.OutputNames }
