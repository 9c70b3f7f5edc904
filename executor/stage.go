package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/stages"
	execkind "github.com/llmlab/llmlab/stages/exec"
	"github.com/llmlab/llmlab/store"
)

// runStage serves a stage from the cache or runs it, and records it.
func (e *Executor) runStage(ctx context.Context, plan *planner.Plan, i, threads int) StageResult {
	sp := plan.Stages[i]
	started := time.Now()
	res := StageResult{Address: sp.Address, Kind: sp.Kind, Key: sp.Key}

	// A cached stage is served only if its outputs re-hash correctly. A
	// stage planned to run is served from the cache too if another run
	// completed it since planning (unless -replace or cache = false).
	if sp.Action == planner.ActionCached || (sp.Cache && !hasReason(sp, planner.ReasonReplace)) {
		entry, why := e.cached(sp)
		if entry != nil {
			res.Status = StatusCached
			res.Metrics = entry.Metrics
			res.Duration = time.Since(started)
			e.record(sp, res, started, logDigest(entry.LogDigest))
			e.emit(Event{Kind: EventCached, Address: sp.Address, Duration: res.Duration})
			return res
		}
		if sp.Action == planner.ActionCached {
			e.emit(Event{Kind: EventNotice, Address: sp.Address, Message: why + "; running it again"})
		}
	}

	kind, ok := stages.Lookup(sp.Kind)
	var runner stages.Runner
	if ok {
		runner, ok = kind.(stages.Runner)
	}
	if !ok {
		res.Status = StatusFailed
		res.Attempts = 1
		res.Err = fmt.Errorf("stage kind %s cannot run yet in this build", sp.Kind)
		res.Duration = time.Since(started)
		e.record(sp, res, started, "")
		e.emit(Event{Kind: EventFailed, Address: sp.Address, Attempt: 1, Err: res.Err, Duration: res.Duration})
		return res
	}

	var timeout time.Duration
	if sp.Timeout != "" {
		d, err := time.ParseDuration(sp.Timeout)
		if err != nil {
			res.Status, res.Err = StatusFailed, fmt.Errorf("timeout %q is not a duration", sp.Timeout)
			e.record(sp, res, started, "")
			e.emit(Event{Kind: EventFailed, Address: sp.Address, Err: res.Err})
			return res
		}
		timeout = d
	}

	var logD string
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		e.emit(Event{Kind: EventStarted, Address: sp.Address, Attempt: attempt})
		out, hist, ld, err := e.attempt(ctx, plan, sp, runner, threads, timeout)
		logD = ld
		res.Duration = time.Since(started)
		if err == nil {
			res.Status = StatusSucceeded
			res.Metrics = out.Metrics
			res.Err = nil
			res.Exit = 0
			e.record(sp, res, started, logD, hist...)
			e.emit(Event{Kind: EventSucceeded, Address: sp.Address, Attempt: attempt, Duration: res.Duration})
			return res
		}
		res.Err = err
		res.Exit, res.Tail = 0, ""
		var xe *stages.ExitError
		if errors.As(err, &xe) {
			res.Exit, res.Tail = xe.Status, xe.Tail
		}
		if ctx.Err() != nil {
			res.Status = StatusInterrupted
			res.Err = errors.New("interrupted")
			e.record(sp, res, started, logD)
			e.emit(Event{Kind: EventInterrupted, Address: sp.Address, Attempt: attempt, Duration: res.Duration, Err: res.Err})
			return res
		}
		if attempt > sp.Retries {
			break
		}
		e.emit(Event{Kind: EventRetrying, Address: sp.Address, Attempt: attempt, Err: err, Message: fmt.Sprintf("attempt %d of %d failed", attempt, sp.Retries+1)})
	}
	res.Status = StatusFailed
	e.record(sp, res, started, logD)
	e.emit(Event{Kind: EventFailed, Address: sp.Address, Attempt: res.Attempts, Duration: res.Duration, Err: res.Err})
	return res
}

func hasReason(sp *planner.StagePlan, kind string) bool {
	for _, r := range sp.Reasons {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

func logDigest(d store.Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// cached returns the action entry of sp if every output re-hashes to its
// digest, or nil and why not.
func (e *Executor) cached(sp *planner.StagePlan) (*store.ActionEntry, string) {
	k, err := store.ParseActionKey(sp.Key)
	if err != nil {
		return nil, err.Error()
	}
	entry := e.entry(sp.Key)
	if entry == nil && e.Opts.Entries != nil {
		entry = e.Opts.Entries(sp.Key)
	}
	if entry == nil {
		entry, err = e.Store.GetAction(k)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				var ce *store.CorruptActionError
				if errors.As(err, &ce) {
					return nil, ce.Error()
				}
				return nil, "its cache entry is gone"
			}
			return nil, err.Error()
		}
	}
	if entry.Key != k {
		return nil, fmt.Sprintf("its cache entry belongs to key %s", entry.Key)
	}
	for _, name := range sp.Outputs {
		a, ok := entry.Outputs[name]
		if !ok {
			return nil, fmt.Sprintf("its cached result has no output %q", name)
		}
		if err := e.Store.VerifyArtifact(a); err != nil {
			return nil, fmt.Sprintf("cached output %q is damaged in the store (%v)", name, err)
		}
	}
	e.remember(sp.Key, entry)
	return entry, ""
}

// attempt runs the stage once in an empty work directory and commits its
// outputs. Job.StateDir (.llmlab/state/<key>, created by the kind if it
// wants one) survives failed attempts and killed applies so that long
// stages can resume; it is removed after the commit. The action entry is
// written last, after the outputs are in the store, on a goroutine of its
// own (see commitAsync): a crash at any point leaves no entry or a complete
// one, and no stage starts its command before the entries of its
// dependencies are written.
func (e *Executor) attempt(ctx context.Context, plan *planner.Plan, sp *planner.StagePlan, runner stages.Runner, threads int, timeout time.Duration) (*stages.Result, []stages.MetricPoint, string, error) {
	work, err := e.workDir(sp)
	if err != nil {
		return nil, nil, "", err
	}
	tmp, err := e.tempDir(work)
	if err != nil {
		e.trash <- trashItem{work: work}
		return nil, nil, "", fmt.Errorf("creating the stage's temporary directory: %w", err)
	}
	defer func() { e.trash <- trashItem{work: work, tmp: tmp} }()
	// The log is kept in memory, or in a file beside the work directory
	// once it grows, then goes into the store.
	logs := &stageLog{dir: filepath.Dir(work)}
	defer logs.discard()
	var live *prefixWriter
	var logw io.Writer = logs
	if e.Opts.Output != nil {
		live = &prefixWriter{mu: &e.outMu, out: e.Opts.Output, prefix: "[" + sp.Address + "] "}
		logw = io.MultiWriter(logs, live)
	}
	storeLog := func() string {
		if live != nil {
			live.flush()
		}
		return logs.store(e.Store)
	}

	inputs, err := e.placeInputs(plan, sp, work)
	if err != nil {
		storeLog()
		return nil, nil, "", err
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		actx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timed out after %s (timeout = %q)", timeout, sp.Timeout))
	}
	defer cancel()
	actx = execkind.WithGrace(actx, e.Opts.Grace)
	job := &stages.Job{
		Address:  sp.Address,
		WorkDir:  work,
		Settings: sp.ClearSettings(),
		Inputs:   inputs,
		Threads:  threads,
		StateDir: filepath.Join(e.Store.Root(), "state", sp.Key),
		TempDir:  tmp,
		Log:      logw,
		Progress: func(p stages.Progress) {
			e.emit(Event{Kind: EventProgress, Address: sp.Address, Progress: &p})
		},
	}
	if env, ok := job.Settings["env"].(map[string]any); ok {
		job.Env = map[string]string{}
		for k, v := range env {
			if s, ok := v.(string); ok {
				job.Env[k] = s
			}
		}
	}
	e.waitCommits(plan, sp)
	started := time.Now()
	out, err := runner.Run(actx, job)
	if err == nil && actx.Err() != nil && ctx.Err() == nil {
		err = context.Cause(actx)
	}
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			err = context.Cause(actx) // the stage's own timeout
		}
		return nil, nil, storeLog(), err
	}
	if out == nil {
		out = &stages.Result{}
	}
	// Every declared output must exist.
	arts := map[string]store.Artifact{}
	for _, name := range sp.Outputs {
		rel, ok := out.Outputs[name]
		if !ok {
			return nil, nil, storeLog(), fmt.Errorf("declared output %q was not produced", name)
		}
		if _, err := os.Lstat(filepath.Join(work, rel)); err != nil {
			return nil, nil, storeLog(), fmt.Errorf("declared output %q (%s) was not produced", name, rel)
		}
	}
	for _, name := range sp.Outputs {
		a, err := e.Store.PutArtifact(filepath.Join(work, out.Outputs[name]))
		if err != nil {
			return nil, nil, storeLog(), fmt.Errorf("storing output %q: %w", name, err)
		}
		arts[name] = a
	}
	ld := storeLog()
	k, err := store.ParseActionKey(sp.Key)
	if err != nil {
		return nil, nil, ld, err
	}
	entry := &store.ActionEntry{Key: k, Address: sp.Address, Kind: sp.Kind, Outputs: arts, Metrics: out.Metrics,
		Started: started.UTC(), Finished: time.Now().UTC()}
	if ld != "" {
		entry.LogDigest, _ = store.ParseDigest(ld)
	}
	e.remember(sp.Key, entry)
	e.commitAsync(sp, entry, job.StateDir)
	return out, out.History, ld, nil
}

// logMemMax is how much of a stage's log is kept in memory before it goes
// to a file.
const logMemMax = 1 << 20

// stageLog collects a stage's log: in memory up to logMemMax bytes (most
// logs; no file is made for them), then in a temp file in dir.
type stageLog struct {
	dir string

	mu  sync.Mutex
	buf []byte
	f   *os.File
	err error
}

func (l *stageLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if l.f == nil {
		if len(l.buf)+len(p) <= logMemMax {
			l.buf = append(l.buf, p...)
			return len(p), nil
		}
		f, err := os.CreateTemp(l.dir, "log-")
		if err != nil {
			l.err = fmt.Errorf("creating the stage log: %w", err)
			return 0, l.err
		}
		l.f = f
		if _, err := f.Write(l.buf); err != nil {
			l.err = err
			return 0, err
		}
		l.buf = nil
	}
	n, err := l.f.Write(p)
	if err != nil {
		l.err = err
	}
	return n, err
}

// store puts the log into the store and returns its digest, or "" if it
// is empty or could not be stored. Later writes fail.
func (l *stageLog) store(st *store.Store) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = errors.New("the stage's log is closed")
	}
	buf := l.buf
	l.buf = nil
	if l.f != nil {
		name := l.f.Name()
		l.f.Close()
		l.f = nil
		defer os.Remove(name)
		if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
			return ""
		}
		a, err := st.PutArtifact(name)
		if err != nil {
			return ""
		}
		return a.Digest.String()
	}
	if len(buf) == 0 {
		return ""
	}
	d, err := st.PutBytes(buf)
	if err != nil {
		return ""
	}
	return d.String()
}

// discard removes the log's file if store was not called.
func (l *stageLog) discard() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		name := l.f.Name()
		l.f.Close()
		l.f = nil
		os.Remove(name)
	}
}

// placeInputs materializes each input read-only at inputs/<name> in the
// work directory (name: the settings path without a leading "inputs.").
// User files are copied into the store first and checked against the
// digest the plan saw; upstream outputs come from their action entries.
func (e *Executor) placeInputs(plan *planner.Plan, sp *planner.StagePlan, work string) (map[string]string, error) {
	paths := map[string]string{}
	for _, in := range sp.Inputs {
		name := strings.TrimPrefix(in.Name, "inputs.")
		dest := filepath.Join(work, "inputs", name)
		if strings.Contains(name, "/") {
			// A nested input name: its parent directories are made.
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
		}
		var a store.Artifact
		switch {
		case in.Stage != "":
			up := e.stage(plan, in.Stage)
			if up == nil {
				return nil, fmt.Errorf("input %s: stage %s is not in the plan", in.Name, in.Stage)
			}
			k, err := store.ParseActionKey(up.Key)
			if err != nil {
				return nil, err
			}
			// The upstream stage ran or was served in this run (its
			// outputs were hashed then); Materialize re-hashes what it
			// copies.
			entry := e.entry(up.Key)
			if entry == nil {
				if entry, err = e.Store.GetAction(k); err != nil {
					return nil, fmt.Errorf("input %s: the result of %s is not in the store: %w", in.Name, in.Stage, err)
				}
			}
			var ok bool
			if a, ok = entry.Outputs[in.Output]; !ok {
				return nil, fmt.Errorf("input %s: %s has no output %q", in.Name, in.Stage, in.Output)
			}
		case in.Path != "":
			var err error
			a, err = e.Store.AddPath(in.Path)
			if err != nil {
				return nil, fmt.Errorf("input %s (%s): %w", in.Name, in.Ref, err)
			}
			if got := "sha256:" + a.Digest.String(); in.Digest != "" && got != in.Digest {
				return nil, fmt.Errorf("input %s (%s) changed since it was planned; run plan again", in.Name, in.Path)
			}
		default:
			return nil, fmt.Errorf("input %s has neither a stage nor a path", in.Name)
		}
		// The work directory is private: no need for Materialize's temp
		// name and rename. A file left at dest by an earlier stage is
		// reused (see scratch.go).
		if err := e.Store.PlaceInput(a, dest); err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Name, err)
		}
		paths[in.Name] = dest
	}
	if len(sp.Inputs) > 0 {
		// Nothing may be added next to the inputs either.
		_ = os.Chmod(filepath.Join(work, "inputs"), 0o555)
	}
	return paths, nil
}
