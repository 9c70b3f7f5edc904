package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// schemaV1 is the schema as version 1 shipped it, frozen here on purpose:
// it is what files in the wild look like, whatever migrations[0] says today.
var schemaV1 = []string{
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
	`CREATE TABLE stage_metrics (
		execution_id INTEGER NOT NULL REFERENCES stage_executions (id) ON DELETE CASCADE,
		name         TEXT    NOT NULL,
		value        REAL,
		PRIMARY KEY (execution_id, name)
	) WITHOUT ROWID`,
	`PRAGMA user_version = 1`,
}

// writeV1 creates a version-1 ledger file with a finished run, a run left
// running, stage executions with settings and final metrics, without going
// through this package.
func writeV1(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append([]string{}, schemaV1...)
	stmts = append(stmts,
		`INSERT INTO runs VALUES (1, '/p/pipeline.hcl', 'sha256:old', 'apply', 'succeeded', 1000, 5000)`,
		`INSERT INTO runs VALUES (2, '/p/pipeline.hcl', 'sha256:old', 'apply', 'running', 6000, NULL)`,
		`INSERT INTO stage_executions VALUES (1, 1, 'pretrain.p', 'pretrain', 'k1', 'run', 'succeeded', 0, 1, 1000, 2000, 'sha256:log', '{"lr":0.001}', '')`,
		`INSERT INTO stage_executions VALUES (2, 2, 'pretrain.p', 'pretrain', 'k2', 'run', 'failed', 1, 1, 6000, 10, '', '{"lr":0.01}', 'diverged')`,
		`INSERT INTO stage_metrics VALUES (1, 'loss', 1.5)`,
	)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func schemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT type || ' ' || name || ': ' || sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(strings.Fields(s), " ")) // indentation is not schema
	}
	return out
}

// TestMigration1IsFrozen fails if someone edits migration 1 after it
// shipped: files already at version 1 would never see the change.
func TestMigration1IsFrozen(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "fixture.db")
	writeV1(t, fixture)
	fdb, err := sql.Open("sqlite", fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()

	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, "v1.db")))
	if err != nil {
		t.Fatal(err)
	}
	l := &Ledger{db: db}
	defer l.Close()
	if err := migrateTo(context.Background(), l, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := schemaOf(t, db), schemaOf(t, fdb); !reflect.DeepEqual(got, want) {
		t.Errorf("migration 1 creates\n%q\nbut version 1 shipped as\n%q", got, want)
	}
	if v := pragma(t, l, "user_version"); v != "1" {
		t.Errorf("user_version = %s, want 1", v)
	}
}

func TestMigrateFromEmpty(t *testing.T) {
	l := openTemp(t)
	if v := pragma(t, l, "user_version"); v != "3" || SchemaVersion() != 3 {
		t.Fatalf("user_version = %s, SchemaVersion() = %d; want 3", v, SchemaVersion())
	}
	var n int
	if err := l.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN
		('runs', 'stage_executions', 'stage_metrics', 'metric_points')`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("found %d of the 4 tables (%v)", n, err)
	}
	// Reopening an up-to-date file changes nothing.
	before := schemaOf(t, l.db)
	path := l.Path()
	l.Close()
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if after := schemaOf(t, l2.db); !reflect.DeepEqual(before, after) {
		t.Errorf("reopening changed the schema:\n%q\n%q", before, after)
	}
}

func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeV1(t, path)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := pragma(t, l, "user_version"); v != "3" {
		t.Fatalf("user_version = %s after migration, want 3", v)
	}
	if v := pragma(t, l, "journal_mode"); v != "wal" {
		t.Errorf("journal_mode = %s, want wal", v)
	}

	// Old data reads back through the current API.
	r, stages, err := l.LastRun("/p/pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 kept no pid: the running run cannot be judged stale.
	if r.ID != 2 || r.Status != RunRunning || r.PID != 0 || r.Host != "" || !r.Started.Equal(time.Unix(0, 6000)) {
		t.Errorf("last run = %+v, want run 2, running, no pid or host", r)
	}
	if len(stages) != 1 || stages[0].Error != "diverged" || stages[0].ExitStatus != 1 {
		t.Errorf("stages = %+v", stages)
	}
	s, key, at, ok, err := l.LastSettings("/p/pipeline.hcl", "pretrain.p")
	if err != nil || !ok || string(s) != `{"lr":0.001}` || key != "k1" || !at.Equal(time.Unix(0, 3000)) {
		t.Errorf("LastSettings = %s, %q, %v, %v, %v; want the v1 run's settings", s, key, at, ok, err)
	}
	old, err := l.Stages(1)
	if err != nil || len(old) != 1 || old[0].Metrics["loss"] != 1.5 {
		t.Errorf("stages of run 1 = %+v, %v; want loss 1.5", old, err)
	}
	if ids, err := l.MarkStaleRuns(); err != nil || len(ids) != 0 {
		t.Errorf("MarkStaleRuns on v1 runs = %v, %v; want none", ids, err)
	}

	// The new parts work on old runs and new ones.
	if err := l.RecordMetrics(2, "pretrain.p", []MetricPoint{{Name: "loss", Step: 1, Value: 3}}); err != nil {
		t.Fatal(err)
	}
	if h, err := l.MetricHistory("/p/pipeline.hcl", "pretrain.p", "loss"); err != nil || len(h) != 1 || h[0].Value != 3 {
		t.Errorf("MetricHistory = %v, %v", h, err)
	}
	id, err := l.BeginRun("/p/pipeline.hcl", "sha256:new", "apply", time.Unix(0, 9000))
	if err != nil || id != 3 {
		t.Fatalf("BeginRun after migration = %d, %v; want 3", id, err)
	}
	if err := l.RecordStage(StageExecution{RunID: id, Address: "pretrain.p", Action: ActionCached, Status: StageCached,
		Key: "k1", Settings: json.RawMessage(`{"lr":0.001}`)}); err != nil {
		t.Fatal(err)
	}
	if keys, err := l.RunKeys(id); err != nil || !reflect.DeepEqual(keys, []string{"k1"}) {
		t.Errorf("RunKeys = %v, %v", keys, err)
	}
}
