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
func (l *Ledger) RecordStage(e StageExecution) error { return l.RecordStages([]StageExecution{e}) }

// prepared is a stage execution checked and converted for the INSERT.
type prepared struct {
	e        *StageExecution
	settings any // NULL when there are none
	started  any // NULL when unknown
}

func prepareStage(e *StageExecution) (prepared, error) {
	p := prepared{e: e}
	if e.Address == "" {
		return p, fmt.Errorf("ledger: record stage of run %d: empty stage address", e.RunID)
	}
	if !validStageAction(e.Action) {
		return p, fmt.Errorf("ledger: record stage %s: action %q is not %q or %q", e.Address, e.Action, ActionRun, ActionCached)
	}
	if !validStageStatus(e.Status) {
		return p, fmt.Errorf("ledger: record stage %s: status %q is not one of succeeded, failed, cached, skipped, interrupted", e.Address, e.Status)
	}
	if len(bytes.TrimSpace(e.Settings)) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Settings); err != nil {
			return p, fmt.Errorf("ledger: record stage %s: settings are not valid JSON: %w", e.Address, err)
		}
		p.settings = buf.String()
	}
	if !e.Started.IsZero() {
		p.started = e.Started.UnixNano()
	}
	return p, nil
}

// RecordStages records several stage executions (of one run or several)
// in one transaction, in order: all of them or, on error, none. Recording
// many stages at once (a rerun where everything is cached) costs one
// commit instead of one per stage. Each e.Settings must already be
// redacted (see StageExecution).
func (l *Ledger) RecordStages(es []StageExecution) error {
	if len(es) == 0 {
		return nil
	}
	ps := make([]prepared, len(es))
	for i := range es {
		p, err := prepareStage(&es[i])
		if err != nil {
			return err
		}
		ps[i] = p
	}
	what := es[0].Address
	if len(es) > 1 {
		what = fmt.Sprintf("%s and %d more", what, len(es)-1)
	}
	ctx := context.Background()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", what, err)
	}
	defer tx.Rollback()
	checked := map[int64]bool{}
	for _, p := range ps {
		if checked[p.e.RunID] {
			continue
		}
		if err := requireRun(ctx, tx, p.e.RunID); err != nil {
			return fmt.Errorf("ledger: record stage %s: %w", p.e.Address, err)
		}
		checked[p.e.RunID] = true
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO stage_executions
		(run_id, address, kind, action_key, action, status, exit_status, attempts, started_ns, duration_ns, log_digest, settings, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", what, err)
	}
	defer ins.Close()
	var met *sql.Stmt
	for _, p := range ps {
		e := p.e
		res, err := ins.ExecContext(ctx, e.RunID, e.Address, e.Kind, e.Key, e.Action, e.Status, e.ExitStatus, e.Attempts,
			p.started, int64(e.Duration), e.LogDigest, p.settings, e.Error)
		if err != nil {
			return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
		}
		if len(e.Metrics) == 0 {
			continue
		}
		execID, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("ledger: record stage %s: %w", e.Address, err)
		}
		if met == nil {
			met, err = tx.PrepareContext(ctx, `INSERT INTO stage_metrics (execution_id, name, value) VALUES (?, ?, ?)`)
			if err != nil {
				return fmt.Errorf("ledger: record stage %s metrics: %w", e.Address, err)
			}
			defer met.Close()
		}
		for name, v := range e.Metrics {
			if _, err := met.ExecContext(ctx, execID, name, realValue(v)); err != nil {
				return fmt.Errorf("ledger: record stage %s metric %q: %w", e.Address, name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: record stage %s: %w", what, err)
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
	rows, err := l.db.Query(`SELECT l.address, e.settings, e.action_key, e.started_ns, e.duration_ns
		FROM stage_latest l JOIN stage_executions e ON e.id = l.execution_id
		WHERE l.pipeline = ? AND l.address = ?`, pipeline, address)
	if err != nil {
		return nil, "", time.Time{}, false, fmt.Errorf("ledger: last settings of %s in %s: %w", address, pipeline, err)
	}
	m, err := scanLatest(rows)
	if err != nil {
		return nil, "", time.Time{}, false, fmt.Errorf("ledger: last settings of %s in %s: %w", address, pipeline, err)
	}
	c, ok := m[address]
	return c.Settings, c.Key, c.At, ok, nil
}

// Completion is the latest execution of one stage address that succeeded
// or was cached (see LastSettings).
type Completion struct {
	Settings json.RawMessage // nil if none were recorded
	Key      string          // the action key, hex
	At       time.Time       // when it ended; zero if unknown
}

// LastCompletions returns, by address, what LastSettings returns for every
// stage address of the pipeline that ever succeeded or was cached, in one
// query (plan asks about every stage of a pipeline).
func (l *Ledger) LastCompletions(pipeline string) (map[string]Completion, error) {
	rows, err := l.db.Query(`SELECT l.address, e.settings, e.action_key, e.started_ns, e.duration_ns
		FROM stage_latest l JOIN stage_executions e ON e.id = l.execution_id
		WHERE l.pipeline = ?`, pipeline)
	if err != nil {
		return nil, fmt.Errorf("ledger: last completions in %s: %w", pipeline, err)
	}
	m, err := scanLatest(rows)
	if err != nil {
		return nil, fmt.Errorf("ledger: last completions in %s: %w", pipeline, err)
	}
	return m, nil
}

func scanLatest(rows *sql.Rows) (map[string]Completion, error) {
	defer rows.Close()
	m := map[string]Completion{}
	for rows.Next() {
		var (
			address  string
			s        sql.NullString
			c        Completion
			started  sql.NullInt64
			duration int64
		)
		if err := rows.Scan(&address, &s, &c.Key, &started, &duration); err != nil {
			return nil, err
		}
		if s.Valid {
			c.Settings = json.RawMessage(s.String)
		}
		if started.Valid {
			c.At = time.Unix(0, started.Int64+duration)
		}
		m[address] = c
	}
	return m, rows.Err()
}

// LatestKeys returns, for every pipeline the ledger knows (by absolute
// path), the action keys of the latest succeeded or cached execution of
// each of its stage addresses, sorted and without duplicates. These are
// the results a later apply of the whole pipeline can reuse, even when the
// latest run only ran some stages (apply -target): what store gc keeps.
func (l *Ledger) LatestKeys() (map[string][]string, error) {
	rows, err := l.db.Query(`SELECT DISTINCT l.pipeline, e.action_key
		FROM stage_latest l JOIN stage_executions e ON e.id = l.execution_id
		WHERE e.action_key <> ''
		ORDER BY l.pipeline, e.action_key`)
	if err != nil {
		return nil, fmt.Errorf("ledger: latest keys: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var p, k string
		if err := rows.Scan(&p, &k); err != nil {
			return nil, fmt.Errorf("ledger: latest keys: %w", err)
		}
		out[p] = append(out[p], k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: latest keys: %w", err)
	}
	return out, nil
}
