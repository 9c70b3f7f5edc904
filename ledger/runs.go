package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// BeginRun records a new run of the pipeline at the absolute path pipeline,
// in status "running", written by this process on this host, and returns
// its ID.
func (l *Ledger) BeginRun(pipeline, pipelineDigest, command string, started time.Time) (int64, error) {
	host, _ := os.Hostname()
	return l.BeginRunAs(Run{
		Pipeline:       pipeline,
		PipelineDigest: pipelineDigest,
		Command:        command,
		Started:        started,
		PID:            os.Getpid(),
		Host:           host,
	})
}

// BeginRunAs is BeginRun for a run written by another process (r.PID on
// r.Host), such as a launcher that records runs on behalf of its children.
// Only Pipeline, PipelineDigest, Command, Started, PID and Host are used.
func (l *Ledger) BeginRunAs(r Run) (int64, error) {
	if !filepath.IsAbs(r.Pipeline) {
		return 0, fmt.Errorf("ledger: pipeline path %q is not absolute; runs are keyed by the pipeline file's absolute path", r.Pipeline)
	}
	if r.Started.IsZero() {
		return 0, fmt.Errorf("ledger: run of %s has no start time", r.Pipeline)
	}
	ident := ""
	if r.Host == currentHost() {
		ident = procIdentity(r.PID)
	}
	res, err := l.db.Exec(`INSERT INTO runs
		(pipeline, pipeline_digest, command, status, started_ns, pid, host, proc_start)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Pipeline, r.PipelineDigest, r.Command, string(RunRunning), r.Started.UnixNano(), r.PID, r.Host, ident)
	if err != nil {
		return 0, fmt.Errorf("ledger: begin run of %s: %w", r.Pipeline, err)
	}
	return res.LastInsertId()
}

// FinishRun records the end of run id with a final status (succeeded,
// failed or interrupted).
func (l *Ledger) FinishRun(id int64, status RunStatus, finished time.Time) error {
	if !status.valid() || status == RunRunning {
		return fmt.Errorf("ledger: finish run %d: status %q is not a final run status (succeeded, failed, interrupted)", id, status)
	}
	if finished.IsZero() {
		return fmt.Errorf("ledger: finish run %d: no finish time", id)
	}
	res, err := l.db.Exec(`UPDATE runs SET status = ?, finished_ns = ? WHERE id = ?`,
		string(status), finished.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("ledger: finish run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("ledger: finish run %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("ledger: finish run %d: no such run", id)
	}
	return nil
}

const runColumns = `id, pipeline, pipeline_digest, command, status, started_ns, finished_ns, pid, host, proc_start`

type rowScanner interface{ Scan(dest ...any) error }

func scanRun(s rowScanner) (Run, error) {
	var (
		r         Run
		status    string
		started   int64
		finished  sql.NullInt64
		procStart string
	)
	if err := s.Scan(&r.ID, &r.Pipeline, &r.PipelineDigest, &r.Command, &status, &started, &finished, &r.PID, &r.Host, &procStart); err != nil {
		return Run{}, err
	}
	r.Status = RunStatus(status)
	r.Started = time.Unix(0, started)
	if finished.Valid {
		r.Finished = time.Unix(0, finished.Int64)
	}
	if r.Status == RunRunning && stale(r.PID, r.Host, procStart) {
		r.Status = RunInterrupted
	}
	return r, nil
}

// LastRun returns the latest run of the pipeline and its stage executions
// in the order they were recorded, or ErrNoRuns.
func (l *Ledger) LastRun(pipeline string) (*Run, []StageExecution, error) {
	row := l.db.QueryRow(`SELECT `+runColumns+` FROM runs WHERE pipeline = ? ORDER BY id DESC LIMIT 1`, pipeline)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNoRuns
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: last run of %s: %w", pipeline, err)
	}
	stages, err := l.Stages(r.ID)
	if err != nil {
		return nil, nil, err
	}
	return &r, stages, nil
}

// Run returns the run with the given ID.
func (l *Ledger) Run(id int64) (*Run, error) {
	r, err := scanRun(l.db.QueryRow(`SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: no run with ID %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: run %d: %w", id, err)
	}
	return &r, nil
}

// LatestRuns returns the latest run of every pipeline the ledger knows,
// ordered by pipeline path.
func (l *Ledger) LatestRuns() ([]Run, error) {
	return l.queryRuns(`SELECT ` + runColumns + ` FROM runs
		WHERE id IN (SELECT MAX(id) FROM runs GROUP BY pipeline)
		ORDER BY pipeline`)
}

// Runs returns every run of the pipeline, newest first.
func (l *Ledger) Runs(pipeline string) ([]Run, error) {
	return l.queryRuns(`SELECT `+runColumns+` FROM runs WHERE pipeline = ? ORDER BY id DESC`, pipeline)
}

func (l *Ledger) queryRuns(query string, args ...any) ([]Run, error) {
	rows, err := l.db.Query(query, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: list runs: %w", err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: list runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: list runs: %w", err)
	}
	return runs, nil
}

// RunKeys returns the action keys of the stages that succeeded or were
// cached in the run, sorted and without duplicates: the keys a store gc
// must keep for that run to stay reproducible.
func (l *Ledger) RunKeys(runID int64) ([]string, error) {
	rows, err := l.db.Query(`SELECT DISTINCT action_key FROM stage_executions
		WHERE run_id = ? AND status IN (?, ?) AND action_key <> ''
		ORDER BY action_key`, runID, StageSucceeded, StageCached)
	if err != nil {
		return nil, fmt.Errorf("ledger: keys of run %d: %w", runID, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("ledger: keys of run %d: %w", runID, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: keys of run %d: %w", runID, err)
	}
	return keys, nil
}

// MarkStaleRuns records as "interrupted" every run left "running" by a
// process that is gone, and returns their IDs in ascending order. Each such
// run's finish time becomes the end of its last recorded stage (or its start
// if it recorded none), the last moment it is known to have been alive.
//
// The rule: a running run is stale when it was written on this host (same
// os.Hostname) and its process no longer exists. On Linux the process is
// identified by pid plus boot id and start time, so a pid reused after the
// writer died (or after a reboot) does not keep the run alive; elsewhere on
// Unix the pid alone is checked. Runs written on another host, or before
// the ledger recorded pids (PID 0), are never judged stale: this host cannot
// tell whether their writer lives.
func (l *Ledger) MarkStaleRuns() ([]int64, error) {
	ctx := context.Background()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ledger: mark stale runs: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, pid, host, proc_start FROM runs WHERE status = ? ORDER BY id`, string(RunRunning))
	if err != nil {
		return nil, fmt.Errorf("ledger: mark stale runs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var (
			id              int64
			pid             int
			host, procStart string
		)
		if err := rows.Scan(&id, &pid, &host, &procStart); err != nil {
			rows.Close()
			return nil, fmt.Errorf("ledger: mark stale runs: %w", err)
		}
		if stale(pid, host, procStart) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: mark stale runs: %w", err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, finished_ns = COALESCE(
				(SELECT MAX(started_ns + duration_ns) FROM stage_executions WHERE run_id = runs.id AND started_ns IS NOT NULL),
				started_ns)
			WHERE id = ? AND status = ?`, string(RunInterrupted), id, string(RunRunning)); err != nil {
			return nil, fmt.Errorf("ledger: mark run %d interrupted: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ledger: mark stale runs: %w", err)
	}
	return ids, nil
}

// stale applies MarkStaleRuns' rule to one running run.
func stale(pid int, host, procStart string) bool {
	if pid <= 0 || host == "" || host != currentHost() {
		return false
	}
	return !processAlive(pid, procStart)
}

func currentHost() string {
	h, _ := os.Hostname()
	return h
}
