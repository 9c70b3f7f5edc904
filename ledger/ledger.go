// Package ledger owns llmlab's run history: every run of a pipeline, every
// stage execution in it (address, action key, action, status, exit status,
// duration, log digest), each stage's resolved settings, its final metrics
// and the per-step metric history. It lives in one SQLite file,
// `<.llmlab>/ledger.db`, through the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with a busy timeout, so one writer (apply)
// and any number of readers (plan, show, compare), each in its own process
// with its own *Ledger, work on the same file at once. Writes are serialised
// by SQLite (every write transaction starts IMMEDIATE, so a writer waits for
// the lock instead of failing half-way with "database is locked").
//
// Durability: the database runs with synchronous=NORMAL, so a commit is
// not fsynced; it becomes durable at the next WAL checkpoint. A process
// crash loses nothing committed, but a power failure or OS crash may lose
// the last transactions. That is by design: the store, not the ledger, is
// the source of truth for what is cached (an action entry is written and
// synced after its outputs), so a lost ledger row costs at most a plan
// diff ("no previous settings") or history, never a wrong cache hit.
// Writers with many rows (a fully cached rerun) use RecordStages to commit
// them in one transaction.
//
// The ledger never decides what is secret: callers redact sensitive values
// before handing settings over (see StageExecution.Settings).
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the ledger's file name inside a `.llmlab` directory.
const FileName = "ledger.db"

// PathIn returns the ledger file's path inside the `.llmlab` directory dir.
func PathIn(dir string) string { return filepath.Join(dir, FileName) }

// busyTimeout is how long a connection waits for another process's lock
// before giving up with SQLITE_BUSY. A writer holds the lock only for the
// length of one small transaction, so this is generous.
const busyTimeout = 10 * time.Second

// ErrNoRuns is returned by LastRun when the pipeline has never been run.
var ErrNoRuns = errors.New("ledger: no runs recorded for this pipeline")

// Ledger is an open run history. It is safe for concurrent use by multiple
// goroutines; several Ledgers (in one process or many) may share one file.
type Ledger struct {
	db   *sql.DB
	path string
}

// Open opens the ledger at path, creating the file (and its parent
// directory) if needed, and brings its schema up to date by applying the
// pending migrations in order. A file written by a newer llmlab, with a
// schema version this one does not know, is refused rather than guessed at.
func Open(path string) (*Ledger, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("ledger: open %s: it is a directory, not a ledger file; remove it or point LLMLAB_HOME elsewhere", path)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	l := &Ledger{db: db, path: abs}
	if err := l.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	return l, nil
}

// dsn builds a modernc.org/sqlite data source name for the file at abs. The
// path goes in as a file: URI so that '?', '#' and '%' in directory names
// are escaped rather than taken for URI syntax.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

// Path returns the absolute path of the ledger file.
func (l *Ledger) Path() string { return l.path }

// Close closes the ledger. Runs still "running" stay so; see MarkStaleRuns.
func (l *Ledger) Close() error { return l.db.Close() }

// RunStatus is the state of a run.
type RunStatus string

// Run statuses.
const (
	RunRunning     RunStatus = "running"
	RunSucceeded   RunStatus = "succeeded"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted"
)

func (s RunStatus) valid() bool {
	switch s {
	case RunRunning, RunSucceeded, RunFailed, RunInterrupted:
		return true
	}
	return false
}

// Run is one invocation of a command (apply, usually) on one pipeline.
type Run struct {
	ID int64
	// Pipeline is the absolute path of the pipeline file; it is how runs of
	// the same pipeline are found again.
	Pipeline       string
	PipelineDigest string
	Command        string
	// Status as read: a run recorded as "running" whose process is gone
	// (see MarkStaleRuns for the rule) is reported as "interrupted" even
	// before anyone has marked it so in the file.
	Status RunStatus
	// Finished is zero while the run is running.
	Started, Finished time.Time
	// PID and Host identify the process that wrote the run. PID is 0 for
	// runs recorded before the ledger kept it (schema version 1).
	PID  int
	Host string
}

// Stage execution actions.
const (
	ActionRun    = "run"
	ActionCached = "cached"
)

// Stage execution statuses.
const (
	StageSucceeded   = "succeeded"
	StageFailed      = "failed"
	StageCached      = "cached"
	StageSkipped     = "skipped"
	StageInterrupted = "interrupted"
)

// StageExecution is what happened to one stage in one run.
type StageExecution struct {
	RunID   int64
	Address string // the stage address, e.g. "pretrain.small"
	Kind    string
	Key     string // the action (cache) key, hex
	Action  string // ActionRun or ActionCached
	Status  string // one of the Stage* statuses
	// ExitStatus is the exit status of the stage's process (0 for built-in
	// kinds that succeeded).
	ExitStatus int
	Attempts   int
	Started    time.Time
	Duration   time.Duration
	LogDigest  string
	// Settings is the stage's resolved settings as a JSON document, stored
	// as given (compacted) and handed back by LastSettings so that plan can
	// say which setting changed from what to what.
	//
	// Contract: Settings must already be redacted. The ledger cannot tell a
	// secret from any other string and writes whatever it receives to disk
	// in clear; the caller replaces every sensitive value (a sensitive
	// variable, or anything derived from one) with a placeholder or digest
	// before calling RecordStage. The same holds for Error.
	Settings json.RawMessage
	// Metrics are the stage's final metrics. NaN and ±Inf are kept.
	Metrics map[string]float64
	Error   string
}

// MetricPoint is one value of a metric at one step of a stage's work.
type MetricPoint struct {
	Name  string
	Step  int
	Value float64
}
