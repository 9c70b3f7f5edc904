// Package executor runs a Plan: it schedules stages in dependency order
// with bounded parallelism and CPU tokens, runs each in a fresh work
// directory with its inputs materialized read-only, commits outputs to the
// store (action entry last) and records every stage in the ledger. The
// local backend runs stages as goroutines of this process.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llmlab/llmlab/ledger"
	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/stages"
	execkind "github.com/llmlab/llmlab/stages/exec"
	"github.com/llmlab/llmlab/store"
)

// Options control one execution.
type Options struct {
	// Parallelism is the number of CPU tokens; default runtime.NumCPU().
	// A stage takes min(resources.cpus, Parallelism) tokens (1 by default).
	Parallelism int
	// KeepGoing runs every stage that does not depend on a failed one.
	// Without it no new stage starts after a failure.
	KeepGoing bool
	// Grace is how long a cancelled command gets between SIGTERM and
	// SIGKILL (default 5s).
	Grace time.Duration
	// RunID is the ledger run the stages are recorded under; with a nil
	// Ledger nothing is recorded.
	RunID int64
	// Events receives progress; calls are serialized.
	Events func(Event)
	// Output receives stage logs live, each line prefixed with
	// "[address] ". May be nil.
	Output io.Writer
	// Entries, if set, returns the action entry of a key as it was read
	// (and its checksum checked) while planning this run under the store
	// lock, or nil; a cached stage is then served from it instead of
	// reading its entry file again. Its outputs are re-hashed all the same.
	// Entries the executor writes in the run take precedence.
	Entries func(key string) *store.ActionEntry
}

// EventKind says what happened to a stage.
type EventKind string

// Event kinds.
const (
	EventStarted     EventKind = "started"
	EventRetrying    EventKind = "retrying"
	EventSucceeded   EventKind = "succeeded"
	EventCached      EventKind = "cached"
	EventFailed      EventKind = "failed"
	EventSkipped     EventKind = "skipped"
	EventInterrupted EventKind = "interrupted"
	EventProgress    EventKind = "progress"
	// EventNotice is a message about a stage, such as a damaged cached
	// result that makes it run again.
	EventNotice EventKind = "notice"
)

// Event is one report of the executor.
type Event struct {
	Kind     EventKind
	Address  string
	Attempt  int           // 1-based, for started/retrying/failed
	Duration time.Duration // for finished events
	Err      error         // for failed/retrying/interrupted
	Message  string
	Progress *stages.Progress
}

// Stage statuses in a Summary (the ledger's names).
const (
	StatusSucceeded   = ledger.StageSucceeded
	StatusCached      = ledger.StageCached
	StatusFailed      = ledger.StageFailed
	StatusSkipped     = ledger.StageSkipped
	StatusInterrupted = ledger.StageInterrupted
)

// StageResult is what happened to one stage.
type StageResult struct {
	Address  string
	Kind     string
	Key      string
	Status   string
	Attempts int
	Duration time.Duration
	Metrics  map[string]float64
	Err      error  // failure, skip or interruption reason
	Tail     string // last lines of the log of a failed command
	Exit     int    // exit status of a failed command
}

// Summary is the outcome of a run.
type Summary struct {
	Ran, Cached, Failed, Skipped, Interrupted int
	Duration                                  time.Duration
	Stages                                    []StageResult // in plan order
}

// OK reports whether every stage succeeded or was cached.
func (s *Summary) OK() bool { return s.Failed == 0 && s.Skipped == 0 && s.Interrupted == 0 }

// Executor is the local backend.
type Executor struct {
	Store  *store.Store
	Ledger *ledger.Ledger // may be nil
	Opts   Options

	evMu  sync.Mutex
	outMu sync.Mutex
	rec   *recorder      // the ledger writer of the current Run, if any
	trash chan trashItem // directories of finished attempts, during Run

	// Clean directories for reuse and pending commits (scratch.go).
	scratchMu sync.Mutex
	freeWork  []scratchDir
	freeTmp   []string
	commitMu  sync.Mutex
	commits   map[string]*pendingCommit
	commitWG  sync.WaitGroup
	stageOf   map[string]*planner.StagePlan // by address, during Run

	// entries are the action entries this Run served or wrote, by key:
	// downstream stages find their inputs there without re-reading them.
	entriesMu sync.Mutex
	entries   map[string]*store.ActionEntry
}

// New returns a local executor.
func New(st *store.Store, led *ledger.Ledger, opts Options) *Executor {
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.NumCPU()
	}
	if opts.Grace <= 0 {
		opts.Grace = execkind.DefaultGrace
	}
	return &Executor{Store: st, Ledger: led, Opts: opts}
}

func (e *Executor) emit(ev Event) {
	if e.Opts.Events == nil {
		return
	}
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.Opts.Events(ev)
}

type state int

const (
	pending state = iota
	running
	done // succeeded or cached
	failed
	skipped
	interrupted
)

type finish struct {
	idx int
	res StageResult
}

// Run executes the plan. It returns when every started stage has ended.
// The error is for the executor itself (a plan that cannot be scheduled);
// stage failures are in the summary. After ctx ends, running stages are
// stopped and recorded "interrupted", and nothing else starts.
func (e *Executor) Run(ctx context.Context, plan *planner.Plan) (*Summary, error) {
	start := time.Now()
	n := len(plan.Stages)
	index := map[string]int{}
	for i, s := range plan.Stages {
		index[s.Address] = i
	}
	deps := make([][]int, n)
	for i, s := range plan.Stages {
		for _, d := range s.DependsOn {
			j, ok := index[d]
			if !ok {
				return nil, fmt.Errorf("plan is inconsistent: %s depends on %s, which is not in the plan", s.Address, d)
			}
			if j >= i {
				return nil, fmt.Errorf("plan is inconsistent: %s comes before its dependency %s", s.Address, d)
			}
			deps[i] = append(deps[i], j)
		}
	}
	if e.Ledger != nil && e.Opts.RunID != 0 {
		e.rec = newRecorder(e.Ledger, func(address, msg string) {
			e.emit(Event{Kind: EventNotice, Address: address, Message: msg})
		})
		defer func() { e.rec.close(); e.rec = nil }()
	}
	e.trash = make(chan trashItem, 64)
	trashDone := make(chan struct{})
	go func() {
		// Work directories are emptied for reuse, or removed, off the
		// stages' critical path.
		for it := range e.trash {
			e.recycle(it)
		}
		close(trashDone)
	}()
	defer func() {
		close(e.trash)
		<-trashDone
		e.trash = nil
		e.dropScratch()
	}()
	e.commitMu.Lock()
	e.commits = map[string]*pendingCommit{}
	e.commitMu.Unlock()
	e.stageOf = make(map[string]*planner.StagePlan, n)
	for _, s := range plan.Stages {
		e.stageOf[s.Address] = s
	}
	e.entriesMu.Lock()
	e.entries = map[string]*store.ActionEntry{}
	e.entriesMu.Unlock()
	results := make([]StageResult, n)
	st := make([]state, n)
	free := e.Opts.Parallelism
	finished := make(chan finish)
	active := 0
	stopNew := false
	var firstFailure string

	tokens := func(s *planner.StagePlan) int {
		t := max(s.Resources.CPUs, 1)
		return min(t, e.Opts.Parallelism)
	}
	skip := func(i int, why error) {
		s := plan.Stages[i]
		st[i] = skipped
		results[i] = StageResult{Address: s.Address, Kind: s.Kind, Key: s.Key, Status: StatusSkipped, Err: why}
		e.record(plan.Stages[i], results[i], time.Time{}, "")
		e.emit(Event{Kind: EventSkipped, Address: s.Address, Err: why})
	}

	for {
		if ctx.Err() != nil {
			stopNew = true
		}
		// Start what can start, in plan order.
		for i := 0; i < n; i++ {
			if st[i] != pending {
				continue
			}
			ready, blocked := true, ""
			for _, j := range deps[i] {
				switch st[j] {
				case done:
				case failed, skipped, interrupted:
					blocked = plan.Stages[j].Address
				default:
					ready = false
				}
			}
			if blocked != "" {
				skip(i, fmt.Errorf("not run: it depends on %s, which did not complete", blocked))
				continue
			}
			if !ready || stopNew {
				continue
			}
			t := tokens(plan.Stages[i])
			if t > free {
				break // keep plan order: wait for tokens
			}
			free -= t
			st[i] = running
			active++
			go func(i, t int) {
				res := e.runStage(ctx, plan, i, t)
				finished <- finish{i, res}
			}(i, t)
		}
		if active == 0 {
			break
		}
		f := <-finished
		active--
		free += tokens(plan.Stages[f.idx])
		results[f.idx] = f.res
		switch f.res.Status {
		case StatusSucceeded, StatusCached:
			st[f.idx] = done
		case StatusInterrupted:
			st[f.idx] = interrupted
			stopNew = true
		default:
			st[f.idx] = failed
			if firstFailure == "" {
				firstFailure = plan.Stages[f.idx].Address
			}
			if !e.Opts.KeepGoing {
				stopNew = true
			}
		}
	}
	// Whatever never started.
	for i := 0; i < n; i++ {
		if st[i] != pending {
			continue
		}
		var why error
		switch {
		case ctx.Err() != nil:
			why = errors.New("not run: the run was interrupted")
		case firstFailure != "":
			why = fmt.Errorf("not run: %s failed (use -keep-going to run stages that do not depend on it)", firstFailure)
		default:
			why = errors.New("not run")
		}
		skip(i, why)
	}
	// Make the committed action entries durable (see store.Sync) before
	// the run is reported, and recorded, as finished.
	e.commitWG.Wait()
	if err := e.Store.Sync(); err != nil {
		e.notice(fmt.Sprintf("could not make the store's new entries durable: %s", err))
	}
	sum := &Summary{Duration: time.Since(start), Stages: results}
	for _, r := range results {
		switch r.Status {
		case StatusSucceeded:
			sum.Ran++
		case StatusCached:
			sum.Cached++
		case StatusFailed:
			sum.Failed++
		case StatusSkipped:
			sum.Skipped++
		case StatusInterrupted:
			sum.Interrupted++
		}
	}
	return sum, nil
}

// record queues one stage execution (and its metric history) for the
// ledger. Settings are the planner's redacted form; clear secrets never
// reach the ledger.
func (e *Executor) record(sp *planner.StagePlan, r StageResult, started time.Time, logDigest string, history ...stages.MetricPoint) {
	if e.rec == nil {
		return
	}
	action := ledger.ActionRun
	if r.Status == StatusCached {
		action = ledger.ActionCached
	}
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	rec := record{ex: ledger.StageExecution{
		RunID:      e.Opts.RunID,
		Address:    sp.Address,
		Kind:       sp.Kind,
		Key:        sp.Key,
		Action:     action,
		Status:     r.Status,
		ExitStatus: r.Exit,
		Attempts:   r.Attempts,
		Started:    started,
		Duration:   r.Duration,
		LogDigest:  logDigest,
		Settings:   planner.EncodePrevious(sp),
		Metrics:    r.Metrics,
		Error:      msg,
	}}
	if len(history) > 0 {
		rec.history = make([]ledger.MetricPoint, len(history))
		for k, h := range history {
			rec.history[k] = ledger.MetricPoint{Name: h.Name, Step: h.Step, Value: h.Value}
		}
	}
	e.rec.add(rec)
}

// prefixWriter writes complete lines to out with a prefix, under a shared
// mutex, so that parallel stages' logs do not interleave within a line.
type prefixWriter struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix string
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.mu.Lock()
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf[:i])
		w.mu.Unlock()
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *prefixWriter) flush() {
	if len(w.buf) > 0 {
		w.mu.Lock()
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf)
		w.mu.Unlock()
		w.buf = nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Apply runs a plan as one ledger run: stale runs of dead processes are
// marked interrupted first, the run is begun, the plan executed, and the
// run finished as succeeded, failed or interrupted. Warnings that do not
// stop the run go to Options.Events as notices.
func (e *Executor) Apply(ctx context.Context, plan *planner.Plan, command string) (*Summary, ledger.RunStatus, error) {
	if _, err := e.Ledger.MarkStaleRuns(); err != nil {
		e.notice(fmt.Sprintf("could not mark stale runs: %s", err))
	}
	runID, err := e.Ledger.BeginRun(plan.Pipeline, plan.PipelineDigest, command, time.Now())
	if err != nil {
		return nil, ledger.RunFailed, err
	}
	e.Opts.RunID = runID
	sum, err := e.Run(ctx, plan)
	if err != nil {
		_ = e.Ledger.FinishRun(runID, ledger.RunFailed, time.Now())
		return nil, ledger.RunFailed, err
	}
	status := ledger.RunSucceeded
	switch {
	case sum.Interrupted > 0 || ctx.Err() != nil:
		status = ledger.RunInterrupted
	case !sum.OK():
		status = ledger.RunFailed
	}
	if err := e.Ledger.FinishRun(runID, status, time.Now()); err != nil {
		e.notice(fmt.Sprintf("could not record the run's end: %s", err))
	}
	return sum, status, nil
}

// entry returns the action entry of key that this Run served or wrote,
// or nil.
func (e *Executor) entry(key string) *store.ActionEntry {
	e.entriesMu.Lock()
	defer e.entriesMu.Unlock()
	return e.entries[key]
}

// remember notes the action entry of key that this Run served or wrote.
func (e *Executor) remember(key string, entry *store.ActionEntry) {
	e.entriesMu.Lock()
	if e.entries != nil {
		e.entries[key] = entry
	}
	e.entriesMu.Unlock()
}

func (e *Executor) notice(msg string) {
	e.emit(Event{Kind: EventNotice, Address: "llmlab", Message: msg})
}
