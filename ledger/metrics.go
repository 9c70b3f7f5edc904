package ledger

import (
	"context"
	"database/sql"
	"fmt"
)

// RecordMetrics records per-step metric values of the stage at address in
// run runID, all in one transaction. Recording a (name, step) again for the
// same run and stage replaces the earlier value, so a retried attempt that
// replays its steps leaves the last attempt's history. NaN and ±Inf are kept.
func (l *Ledger) RecordMetrics(runID int64, address string, points []MetricPoint) error {
	if address == "" {
		return fmt.Errorf("ledger: record metrics of run %d: empty stage address", runID)
	}
	for _, p := range points {
		if p.Name == "" {
			return fmt.Errorf("ledger: record metrics of %s: a point at step %d has no metric name", address, p.Step)
		}
	}
	ctx := context.Background()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: record metrics of %s: %w", address, err)
	}
	defer tx.Rollback()
	if err := requireRun(ctx, tx, runID); err != nil {
		return fmt.Errorf("ledger: record metrics of %s: %w", address, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO metric_points (run_id, address, name, step, value) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("ledger: record metrics of %s: %w", address, err)
	}
	defer stmt.Close()
	for _, p := range points {
		if _, err := stmt.ExecContext(ctx, runID, address, p.Name, p.Step, realValue(p.Value)); err != nil {
			return fmt.Errorf("ledger: record metric %q of %s at step %d: %w", p.Name, address, p.Step, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: record metrics of %s: %w", address, err)
	}
	return nil
}

// MetricHistory returns the per-step history of metric name of the stage at
// address, ordered by step, from the latest run of the pipeline that
// recorded any of it. It is empty (and not an error) if no run has.
func (l *Ledger) MetricHistory(pipeline, address, name string) ([]MetricPoint, error) {
	rows, err := l.db.Query(`SELECT step, value FROM metric_points
		WHERE address = ? AND name = ? AND run_id = (
			SELECT MAX(m.run_id) FROM metric_points m JOIN runs r ON r.id = m.run_id
			WHERE r.pipeline = ? AND m.address = ? AND m.name = ?)
		ORDER BY step`, address, name, pipeline, address, name)
	if err != nil {
		return nil, fmt.Errorf("ledger: history of %s %s: %w", address, name, err)
	}
	defer rows.Close()
	var out []MetricPoint
	for rows.Next() {
		p := MetricPoint{Name: name}
		var v sql.NullFloat64
		if err := rows.Scan(&p.Step, &v); err != nil {
			return nil, fmt.Errorf("ledger: history of %s %s: %w", address, name, err)
		}
		p.Value = metricValue(v)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: history of %s %s: %w", address, name, err)
	}
	return out, nil
}
