package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

func validStageAction(a string) bool { return a == ActionRun || a == ActionCached }

func validStageStatus(s string) bool {
	switch s {
	case StageSucceeded, StageFailed, StageCached, StageSkipped, StageInterrupted:
		return true
	}
	return false
}

// RecordStage records one stage execution of a run, with its settings and
// final metrics, in one transaction. e.Settings must already be redacted
// (see StageExecution).
func (l *Ledger) RecordStage(e StageExecution) error {
	if e.Address == "" {
		return fmt.Errorf("ledger: record stage of run %d: empty stage address", e.RunID)
	}
	if !validStageAction(e.Action) {
		return fmt.Errorf("ledger: record stage %s: action %q is not %q or %q", e.Address, e.Action, ActionRun, ActionCached)
	}
	if !validStageStatus(e.Status) {
		return fmt.Errorf("ledger: record stage %s: status %q is not one of succeeded, failed, cached, skipped, interrupted", e.Address, e.Status)
	}
	var settings any // NULL when there are none
	if len(bytes.TrimSpace(e.Settings)) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Settings); err != nil {
			return fmt.Errorf("ledger: record stage %s: settings are not valid JSON: %w", e.Address, err)
		}
		settings = buf.String()
	}
	var started any
	if !e.Started.IsZero() {
		started = e.Started.UnixNano()
	}

	ctx := context.Background()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
	}
	defer tx.Rollback()
	if err := requireRun(ctx, tx, e.RunID); err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO stage_executions
		(run_id, address, kind, action_key, action, status, exit_status, attempts, started_ns, duration_ns, log_digest, settings, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.RunID, e.Address, e.Kind, e.Key, e.Action, e.Status, e.ExitStatus, e.Attempts, started, int64(e.Duration), e.LogDigest, settings, e.Error)
	if err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
	}
	execID, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
	}
	if len(e.Metrics) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO stage_metrics (execution_id, name, value) VALUES (?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("ledger: record stage %s metrics: %w", e.Address, err)
		}
		defer stmt.Close()
		for name, v := range e.Metrics {
			if _, err := stmt.ExecContext(ctx, execID, name, realValue(v)); err != nil {
				return fmt.Errorf("ledger: record stage %s metric %q: %w", e.Address, name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
	}
	return nil
}

// requireRun fails with a readable error if run id does not exist.
func requireRun(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no run with ID %d", id)
	}
	return err
}

// realValue maps NaN to NULL explicitly (SQLite would do so anyway);
// metricValue maps it back.
func realValue(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

func metricValue(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

// Stages returns the stage executions of a run in the order they were
// recorded, each with its settings and final metrics.
func (l *Ledger) Stages(runID int64) ([]StageExecution, error) {
	rows, err := l.db.Query(`SELECT id, run_id, address, kind, action_key, action, status, exit_status, attempts,
			started_ns, duration_ns, log_digest, settings, error
		FROM stage_executions WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("ledger: stages of run %d: %w", runID, err)
	}
	defer rows.Close()
	var (
		out   []StageExecution
		index = map[int64]int{}
	)
	for rows.Next() {
		var (
			e        StageExecution
			id       int64
			started  sql.NullInt64
			duration int64
			settings sql.NullString
		)
		if err := rows.Scan(&id, &e.RunID, &e.Address, &e.Kind, &e.Key, &e.Action, &e.Status, &e.ExitStatus, &e.Attempts,
			&started, &duration, &e.LogDigest, &settings, &e.Error); err != nil {
			return nil, fmt.Errorf("ledger: stages of run %d: %w", runID, err)
		}
		if started.Valid {
			e.Started = time.Unix(0, started.Int64)
		}
		e.Duration = time.Duration(duration)
		if settings.Valid {
			e.Settings = json.RawMessage(settings.String)
		}
		index[id] = len(out)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: stages of run %d: %w", runID, err)
	}
	rows.Close()

	mrows, err := l.db.Query(`SELECT m.execution_id, m.name, m.value
		FROM stage_metrics m JOIN stage_executions e ON e.id = m.execution_id
		WHERE e.run_id = ?`, runID)
	if err != nil {
		return nil, fmt.Errorf("ledger: stage metrics of run %d: %w", runID, err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var (
			id   int64
			name string
			v    sql.NullFloat64
		)
		if err := mrows.Scan(&id, &name, &v); err != nil {
			return nil, fmt.Errorf("ledger: stage metrics of run %d: %w", runID, err)
		}
		i, ok := index[id]
		if !ok {
			continue // recorded after the first query; not part of this answer
		}
		if out[i].Metrics == nil {
			out[i].Metrics = map[string]float64{}
		}
		out[i].Metrics[name] = metricValue(v)
	}
	if err := mrows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: stage metrics of run %d: %w", runID, err)
	}
	return out, nil
}

// LastSettings returns the settings and action key of the latest execution
// of the stage at address in the pipeline (by absolute path) that succeeded
// or was cached, and when that execution ended. ok is false if there is none.
// Failed, skipped and interrupted executions never count: their settings
// did not produce the result the store holds. settings is nil if that
// execution recorded none.
func (l *Ledger) LastSettings(pipeline, address string) (settings json.RawMessage, key string, at time.Time, ok bool, err error) {
	var (
		s        sql.NullString
		started  sql.NullInt64
		duration int64
	)
	err = l.db.QueryRow(`SELECT e.settings, e.action_key, e.started_ns, e.duration_ns
		FROM stage_executions e JOIN runs r ON r.id = e.run_id
		WHERE r.pipeline = ? AND e.address = ? AND e.status IN (?, ?)
		ORDER BY e.id DESC LIMIT 1`, pipeline, address, StageSucceeded, StageCached).Scan(&s, &key, &started, &duration)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", time.Time{}, false, nil
	}
	if err != nil {
		return nil, "", time.Time{}, false, fmt.Errorf("ledger: last settings of %s in %s: %w", address, pipeline, err)
	}
	if s.Valid {
		settings = json.RawMessage(s.String)
	}
	if started.Valid {
		at = time.Unix(0, started.Int64+duration)
	}
	return settings, key, at, true, nil
}
