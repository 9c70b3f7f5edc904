package ledger

import (
	"context"
	"fmt"
)

// migration is one step of the schema's history. Migrations are applied in
// order, each in the same transaction as the bump of PRAGMA user_version to
// its position in the list (1-based), so a file is always at exactly one
// version. Never edit or reorder a migration that has shipped: append a new
// one.
type migration struct {
	name  string
	stmts []string
}

var migrations = []migration{
	{
		name: "runs, stage executions, stage settings and final metrics",
		stmts: []string{
			`CREATE TABLE runs (
				id              INTEGER PRIMARY KEY AUTOINCREMENT,
				pipeline        TEXT    NOT NULL,
				pipeline_digest TEXT    NOT NULL,
				command         TEXT    NOT NULL,
				status          TEXT    NOT NULL,
				started_ns      INTEGER NOT NULL,
				finished_ns     INTEGER
			)`,
			`CREATE INDEX runs_by_pipeline ON runs (pipeline, id)`,
			`CREATE TABLE stage_executions (
				id          INTEGER PRIMARY KEY AUTOINCREMENT,
				run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
				address     TEXT    NOT NULL,
				kind        TEXT    NOT NULL,
				action_key  TEXT    NOT NULL,
				action      TEXT    NOT NULL,
				status      TEXT    NOT NULL,
				exit_status INTEGER NOT NULL,
				attempts    INTEGER NOT NULL,
				started_ns  INTEGER,
				duration_ns INTEGER NOT NULL,
				log_digest  TEXT    NOT NULL,
				settings    TEXT,
				error       TEXT    NOT NULL
			)`,
			`CREATE INDEX stage_executions_by_run ON stage_executions (run_id, id)`,
			`CREATE INDEX stage_executions_by_address ON stage_executions (address, id)`,
			// value is NULL for NaN: SQLite stores a NaN REAL as NULL.
			`CREATE TABLE stage_metrics (
				execution_id INTEGER NOT NULL REFERENCES stage_executions (id) ON DELETE CASCADE,
				name         TEXT    NOT NULL,
				value        REAL,
				PRIMARY KEY (execution_id, name)
			) WITHOUT ROWID`,
		},
	},
	{
		name: "the writing process of a run (pid, host, process identity); per-step metric history",
		stmts: []string{
			`ALTER TABLE runs ADD COLUMN pid INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT ''`,
			// proc_start tells a live writer from a later process that
			// reused its pid (Linux: boot id and start time in ticks).
			`ALTER TABLE runs ADD COLUMN proc_start TEXT NOT NULL DEFAULT ''`,
			`CREATE INDEX runs_by_status ON runs (status)`,
			`CREATE TABLE metric_points (
				run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
				address TEXT    NOT NULL,
				name    TEXT    NOT NULL,
				step    INTEGER NOT NULL,
				value   REAL,
				PRIMARY KEY (run_id, address, name, step)
			) WITHOUT ROWID`,
			`CREATE INDEX metric_points_by_series ON metric_points (address, name, run_id)`,
		},
	},
	{
		name: "the latest succeeded or cached execution of every (pipeline, address), kept by a trigger",
		stmts: []string{
			// stage_latest answers "what did this address last complete
			// with" (plan's diffs, store gc) without scanning the history,
			// which grows by one row per stage per apply.
			`CREATE TABLE stage_latest (
				pipeline     TEXT    NOT NULL,
				address      TEXT    NOT NULL,
				execution_id INTEGER NOT NULL,
				PRIMARY KEY (pipeline, address)
			) WITHOUT ROWID`,
			`INSERT INTO stage_latest (pipeline, address, execution_id)
				SELECT r.pipeline, e.address, MAX(e.id)
				FROM stage_executions e JOIN runs r ON r.id = e.run_id
				WHERE e.status IN ('succeeded', 'cached')
				GROUP BY r.pipeline, e.address`,
			// Stage executions are never updated, so an insert trigger keeps
			// the table exact, in the same transaction as the insert.
			`CREATE TRIGGER stage_latest_insert AFTER INSERT ON stage_executions
				WHEN NEW.status IN ('succeeded', 'cached')
				BEGIN
					INSERT INTO stage_latest (pipeline, address, execution_id)
						SELECT pipeline, NEW.address, NEW.id FROM runs WHERE id = NEW.run_id
						ON CONFLICT (pipeline, address) DO UPDATE SET execution_id = excluded.execution_id
						WHERE excluded.execution_id > stage_latest.execution_id;
				END`,
		},
	},
}

// SchemaVersion is the schema version this package writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the file up to SchemaVersion. It runs in one IMMEDIATE
// transaction, so two processes opening a fresh file at once apply each
// migration exactly once.
func (l *Ledger) migrate(ctx context.Context) error {
	return migrateTo(ctx, l, len(migrations))
}

func migrateTo(ctx context.Context, l *Ledger, target int) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("start schema migration: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("the ledger has schema version %d but this llmlab knows only up to %d; upgrade llmlab to use it", version, len(migrations))
	}
	if version >= target {
		return nil
	}
	for v := version; v < target; v++ {
		m := migrations[v]
		for _, stmt := range m.stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("schema migration %d (%s): %w", v+1, m.name, err)
			}
		}
	}
	// PRAGMA takes no bound parameters; target is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, target)); err != nil {
		return fmt.Errorf("record schema version %d: %w", target, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema migration to version %d: %w", target, err)
	}
	return nil
}
