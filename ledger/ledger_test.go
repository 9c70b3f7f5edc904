package ledger

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	pipeA = "/home/u/exp/a/pipeline.hcl"
	pipeB = "/home/u/exp/b/pipeline.hcl"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) *Ledger {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), ".llmlab", FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustBegin(t *testing.T, l *Ledger, pipeline string, started time.Time) int64 {
	t.Helper()
	id, err := l.BeginRun(pipeline, "sha256:pipe", "apply", started)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustRecord(t *testing.T, l *Ledger, e StageExecution) {
	t.Helper()
	if err := l.RecordStage(e); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func pragma(t *testing.T, l *Ledger, name string) string {
	t.Helper()
	var v string
	if err := l.db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpen(t *testing.T) {
	// A directory name with URI syntax in it must not be taken for URI syntax.
	dir := filepath.Join(t.TempDir(), "odd dir?x=1#frag%20", ".llmlab")
	path := PathIn(dir)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("ledger file not created at %s: %v", path, err)
	}
	for name, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "10000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL: see the package doc
		"user_version": "3",
	} {
		if got := pragma(t, l, name); got != want {
			t.Errorf("PRAGMA %s = %q, want %q", name, got, want)
		}
	}
	if l.Path() != path {
		t.Errorf("Path() = %q, want %q", l.Path(), path)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(dir)
		wantErr(t, err, "it is a directory, not a ledger file")
	})
	t.Run("newer schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.db.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		l.Close()
		_, err = Open(path)
		wantErr(t, err, "the ledger has schema version 99 but this llmlab knows only up to 3; upgrade llmlab")
	})
}

func TestBeginRun(t *testing.T) {
	l := openTemp(t)
	host, _ := os.Hostname()
	tests := []struct {
		name     string
		pipeline string
		started  time.Time
		err      string
	}{
		{"ok", pipeA, t0, ""},
		{"relative path", "exp/pipeline.hcl", t0, `pipeline path "exp/pipeline.hcl" is not absolute`},
		{"no start", pipeA, time.Time{}, "has no start time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := l.BeginRun(tc.pipeline, "sha256:d", "apply -parallelism 2", tc.started)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Run(id)
			if err != nil {
				t.Fatal(err)
			}
			want := Run{ID: id, Pipeline: tc.pipeline, PipelineDigest: "sha256:d", Command: "apply -parallelism 2",
				Status: RunRunning, PID: os.Getpid(), Host: host}
			got := *r
			if !got.Started.Equal(tc.started) {
				t.Errorf("Started = %v, want %v", got.Started, tc.started)
			}
			got.Started = time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("run = %+v\nwant  %+v", got, want)
			}
		})
	}
}

func TestFinishRun(t *testing.T) {
	l := openTemp(t)
	id := mustBegin(t, l, pipeA, t0)
	tests := []struct {
		name   string
		id     int64
		status RunStatus
		at     time.Time
		err    string
	}{
		{"running is not final", id, RunRunning, t0.Add(time.Minute), `status "running" is not a final run status`},
		{"unknown status", id, "done", t0.Add(time.Minute), `status "done" is not a final run status`},
		{"no time", id, RunSucceeded, time.Time{}, "no finish time"},
		{"no such run", id + 100, RunSucceeded, t0.Add(time.Minute), "no such run"},
		{"failed", id, RunFailed, t0.Add(time.Minute), ""},
		{"succeeded", id, RunSucceeded, t0.Add(2 * time.Minute), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := l.FinishRun(tc.id, tc.status, tc.at)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Run(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || !r.Finished.Equal(tc.at) {
				t.Errorf("run = %s at %v, want %s at %v", r.Status, r.Finished, tc.status, tc.at)
			}
		})
	}
	_, err := l.Run(12345)
	wantErr(t, err, "no run with ID 12345")
}

func TestRecordStage(t *testing.T) {
	l := openTemp(t)
	run := mustBegin(t, l, pipeA, t0)
	full := StageExecution{
		RunID: run, Address: "pretrain.small", Kind: "pretrain", Key: "ab12", Action: ActionRun,
		Status: StageSucceeded, ExitStatus: 0, Attempts: 2, Started: t0.Add(time.Second),
		Duration: 1500 * time.Millisecond, LogDigest: "sha256:log",
		Settings: json.RawMessage(`{ "lr": 0.001,
			"model": {"layers": 4} }`),
		Metrics: map[string]float64{"loss": 1.25, "nan": math.NaN(), "inf": math.Inf(1), "ninf": math.Inf(-1)},
	}
	failed := StageExecution{RunID: run, Address: "exec.fetch", Kind: "exec", Key: "cd34", Action: ActionRun,
		Status: StageFailed, ExitStatus: 3, Attempts: 1, Error: "exit status 3"}
	tests := []struct {
		name string
		e    StageExecution
		err  string
	}{
		{"full", full, ""},
		{"failed without settings", failed, ""},
		{"no address", StageExecution{RunID: run, Action: ActionRun, Status: StageSucceeded}, "empty stage address"},
		{"bad action", StageExecution{RunID: run, Address: "x.y", Action: "build", Status: StageSucceeded}, `action "build" is not "run" or "cached"`},
		{"bad status", StageExecution{RunID: run, Address: "x.y", Action: ActionRun, Status: "ok"}, `status "ok" is not one of succeeded`},
		{"bad settings", StageExecution{RunID: run, Address: "x.y", Action: ActionRun, Status: StageSucceeded, Settings: json.RawMessage(`{"lr":`)}, "settings are not valid JSON"},
		{"no run", StageExecution{RunID: run + 9, Address: "x.y", Action: ActionRun, Status: StageSucceeded}, "no run with ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := l.RecordStage(tc.e)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}

	_, got, err := l.LastRun(pipeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d stage executions, want 2 (the invalid ones must not be stored)", len(got))
	}
	g := got[0]
	if !g.Started.Equal(full.Started) {
		t.Errorf("Started = %v, want %v", g.Started, full.Started)
	}
	if string(g.Settings) != `{"lr":0.001,"model":{"layers":4}}` {
		t.Errorf("Settings = %s, want the compacted input", g.Settings)
	}
	if g.Metrics["loss"] != 1.25 || !math.IsNaN(g.Metrics["nan"]) || !math.IsInf(g.Metrics["inf"], 1) || !math.IsInf(g.Metrics["ninf"], -1) || len(g.Metrics) != 4 {
		t.Errorf("Metrics = %v, want loss 1.25, NaN, +Inf, -Inf", g.Metrics)
	}
	g.Started, g.Settings, g.Metrics = time.Time{}, nil, nil
	w := full
	w.Started, w.Settings, w.Metrics = time.Time{}, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("stage = %+v\nwant    %+v", g, w)
	}
	if !reflect.DeepEqual(got[1], failed) {
		t.Errorf("stage = %+v\nwant    %+v", got[1], failed)
	}
}

func TestLastSettings(t *testing.T) {
	l := openTemp(t)
	r1 := mustBegin(t, l, pipeA, t0)
	r2 := mustBegin(t, l, pipeA, t0.Add(time.Hour))
	r3 := mustBegin(t, l, pipeA, t0.Add(2*time.Hour))
	rb := mustBegin(t, l, pipeB, t0.Add(3*time.Hour))
	st := func(run int64, addr, status, action, key, settings string, start time.Time) StageExecution {
		return StageExecution{RunID: run, Address: addr, Kind: "pretrain", Key: key, Action: action, Status: status,
			Started: start, Duration: time.Minute, Settings: json.RawMessage(settings)}
	}
	mustRecord(t, l, st(r1, "pretrain.p", StageSucceeded, ActionRun, "k1", `{"lr":1}`, t0))
	mustRecord(t, l, st(r2, "pretrain.p", StageCached, ActionCached, "k2", `{"lr":2}`, t0.Add(time.Hour)))
	mustRecord(t, l, st(r3, "pretrain.p", StageFailed, ActionRun, "k3", `{"lr":3}`, t0.Add(2*time.Hour)))
	mustRecord(t, l, st(r3, "eval.e", StageSkipped, ActionRun, "k4", `{"tasks":["x"]}`, time.Time{}))
	mustRecord(t, l, st(rb, "pretrain.p", StageSucceeded, ActionRun, "kb", `{"lr":9}`, t0.Add(3*time.Hour)))
	mustRecord(t, l, st(r3, "finetune.f", StageSucceeded, ActionRun, "k5", ``, t0.Add(2*time.Hour)))

	tests := []struct {
		name, pipeline, address string
		settings, key           string
		at                      time.Time
		ok                      bool
	}{
		{"latest succeeded or cached; failed ignored", pipeA, "pretrain.p", `{"lr":2}`, "k2", t0.Add(time.Hour + time.Minute), true},
		{"other pipeline", pipeB, "pretrain.p", `{"lr":9}`, "kb", t0.Add(3*time.Hour + time.Minute), true},
		{"only skipped", pipeA, "eval.e", "", "", time.Time{}, false},
		{"never ran", pipeA, "dpo.d", "", "", time.Time{}, false},
		{"unknown pipeline", "/nope.hcl", "pretrain.p", "", "", time.Time{}, false},
		{"no settings recorded", pipeA, "finetune.f", "", "k5", t0.Add(2*time.Hour + time.Minute), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, key, at, ok, err := l.LastSettings(tc.pipeline, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			if string(s) != tc.settings || key != tc.key || !at.Equal(tc.at) || ok != tc.ok {
				t.Errorf("got (%s, %q, %v, %v), want (%s, %q, %v, %v)", s, key, at, ok, tc.settings, tc.key, tc.at, tc.ok)
			}
			if tc.settings == "" && s != nil {
				t.Errorf("settings = %q, want nil", s)
			}
		})
	}

	// A later success replaces the cached one.
	r4 := mustBegin(t, l, pipeA, t0.Add(4*time.Hour))
	mustRecord(t, l, st(r4, "pretrain.p", StageSucceeded, ActionRun, "k6", `{"lr":6}`, t0.Add(4*time.Hour)))
	s, key, _, _, err := l.LastSettings(pipeA, "pretrain.p")
	if err != nil || string(s) != `{"lr":6}` || key != "k6" {
		t.Errorf("after a new run: got (%s, %q, %v), want ({\"lr\":6}, k6, nil)", s, key, err)
	}
}

func TestLastRun(t *testing.T) {
	l := openTemp(t)
	tests := []struct {
		name   string
		setup  func() int64 // returns the expected run ID, 0 for none
		stages []string
	}{
		{"none", func() int64 { return 0 }, nil},
		{"one run", func() int64 {
			id := mustBegin(t, l, pipeA, t0)
			mustRecord(t, l, StageExecution{RunID: id, Address: "b.b", Action: ActionRun, Status: StageSucceeded})
			mustRecord(t, l, StageExecution{RunID: id, Address: "a.a", Action: ActionRun, Status: StageSucceeded})
			return id
		}, []string{"b.b", "a.a"}},
		{"latest of several; other pipeline ignored", func() int64 {
			id := mustBegin(t, l, pipeA, t0.Add(time.Hour))
			mustRecord(t, l, StageExecution{RunID: id, Address: "c.c", Action: ActionCached, Status: StageCached})
			mustBegin(t, l, pipeB, t0.Add(2*time.Hour))
			return id
		}, []string{"c.c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.setup()
			r, stages, err := l.LastRun(pipeA)
			if want == 0 {
				if !errors.Is(err, ErrNoRuns) {
					t.Fatalf("err = %v, want ErrNoRuns", err)
				}
				wantErr(t, err, "no runs recorded for this pipeline")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != want || r.Pipeline != pipeA {
				t.Errorf("run %d of %s, want %d of %s", r.ID, r.Pipeline, want, pipeA)
			}
			var addrs []string
			for _, s := range stages {
				addrs = append(addrs, s.Address)
			}
			if !reflect.DeepEqual(addrs, tc.stages) {
				t.Errorf("stages %v, want %v (in recording order)", addrs, tc.stages)
			}
		})
	}
}

func TestLatestRuns(t *testing.T) {
	l := openTemp(t)
	if runs, err := l.LatestRuns(); err != nil || len(runs) != 0 {
		t.Fatalf("empty ledger: %v, %v", runs, err)
	}
	b1 := mustBegin(t, l, pipeB, t0)
	a1 := mustBegin(t, l, pipeA, t0.Add(time.Minute))
	b2 := mustBegin(t, l, pipeB, t0.Add(2*time.Minute))
	if err := l.FinishRun(b1, RunFailed, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := l.FinishRun(a1, RunSucceeded, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	runs, err := l.LatestRuns()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Pipeline+"#"+string(r.Status))
		if r.Pipeline == pipeB && r.ID != b2 || r.Pipeline == pipeA && r.ID != a1 {
			t.Errorf("run %d for %s is not the latest", r.ID, r.Pipeline)
		}
	}
	want := []string{pipeA + "#succeeded", pipeB + "#running"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LatestRuns = %v, want %v", got, want)
	}
	all, err := l.Runs(pipeB)
	if err != nil || len(all) != 2 || all[0].ID != b2 || all[1].ID != b1 {
		t.Errorf("Runs(%s) = %v, %v; want runs %d then %d", pipeB, all, err, b2, b1)
	}
}

func TestRunKeys(t *testing.T) {
	l := openTemp(t)
	r1 := mustBegin(t, l, pipeA, t0)
	r2 := mustBegin(t, l, pipeA, t0)
	for _, e := range []StageExecution{
		{RunID: r1, Address: "a.z", Key: "zz", Action: ActionRun, Status: StageSucceeded},
		{RunID: r1, Address: "a.c", Key: "cc", Action: ActionCached, Status: StageCached},
		{RunID: r1, Address: "a.f", Key: "ff", Action: ActionRun, Status: StageFailed},
		{RunID: r1, Address: "a.s", Key: "ss", Action: ActionRun, Status: StageSkipped},
		{RunID: r1, Address: "a.i", Key: "ii", Action: ActionRun, Status: StageInterrupted},
		{RunID: r1, Address: "a.dup", Key: "zz", Action: ActionCached, Status: StageCached},
		{RunID: r1, Address: "a.nokey", Key: "", Action: ActionRun, Status: StageSucceeded},
		{RunID: r2, Address: "a.z", Key: "yy", Action: ActionRun, Status: StageSucceeded},
	} {
		mustRecord(t, l, e)
	}
	tests := []struct {
		run  int64
		want []string
	}{
		{r1, []string{"cc", "zz"}},
		{r2, []string{"yy"}},
		{r2 + 1, nil},
	}
	for _, tc := range tests {
		got, err := l.RunKeys(tc.run)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RunKeys(%d) = %v, want %v", tc.run, got, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	l := openTemp(t)
	r1 := mustBegin(t, l, pipeA, t0)
	r2 := mustBegin(t, l, pipeA, t0.Add(time.Hour))
	r3 := mustBegin(t, l, pipeA, t0.Add(2*time.Hour))
	rb := mustBegin(t, l, pipeB, t0.Add(3*time.Hour))
	rec := func(run int64, addr string, pts ...MetricPoint) {
		t.Helper()
		if err := l.RecordMetrics(run, addr, pts); err != nil {
			t.Fatal(err)
		}
	}
	loss := func(step int, v float64) MetricPoint { return MetricPoint{Name: "loss", Step: step, Value: v} }
	rec(r1, "pretrain.p", loss(0, 9), loss(1, 8))
	// Out of order, with a replaced step and a NaN.
	rec(r2, "pretrain.p", loss(20, 2), loss(0, 4), loss(10, 3), MetricPoint{Name: "kl", Step: 0, Value: 0.5})
	rec(r2, "pretrain.p", loss(10, 2.5), loss(30, math.NaN()))
	// A later run without loss for this stage must not hide r2's history.
	rec(r3, "pretrain.p", MetricPoint{Name: "kl", Step: 5, Value: 0.1})
	rec(r3, "eval.e", loss(0, 7))
	rec(rb, "pretrain.p", loss(0, 100))

	tests := []struct {
		name, pipeline, address, metric string
		want                            []MetricPoint
	}{
		{"latest run having it, by step", pipeA, "pretrain.p", "loss",
			[]MetricPoint{loss(0, 4), loss(10, 2.5), loss(20, 2), loss(30, math.NaN())}},
		{"latest run overall", pipeA, "pretrain.p", "kl", []MetricPoint{{Name: "kl", Step: 5, Value: 0.1}}},
		{"other stage", pipeA, "eval.e", "loss", []MetricPoint{loss(0, 7)}},
		{"other pipeline", pipeB, "pretrain.p", "loss", []MetricPoint{loss(0, 100)}},
		{"unknown metric", pipeA, "pretrain.p", "reward", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.MetricHistory(tc.pipeline, tc.address, tc.metric)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Name != w.Name || g.Step != w.Step || !(g.Value == w.Value || math.IsNaN(g.Value) && math.IsNaN(w.Value)) {
					t.Errorf("point %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}

	errTests := []struct {
		name string
		run  int64
		addr string
		pts  []MetricPoint
		err  string
	}{
		{"no run", rb + 10, "pretrain.p", []MetricPoint{loss(0, 1)}, "no run with ID"},
		{"no name", r1, "pretrain.p", []MetricPoint{loss(0, 1), {Step: 3, Value: 1}}, "a point at step 3 has no metric name"},
		{"no address", r1, "", []MetricPoint{loss(0, 1)}, "empty stage address"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, l.RecordMetrics(tc.run, tc.addr, tc.pts), tc.err)
		})
	}
	// The failed batch with a nameless point wrote nothing.
	got, err := l.MetricHistory(pipeA, "pretrain.p", "loss")
	if err != nil || len(got) != 4 {
		t.Errorf("after a rejected batch: %v, %v; want the 4 points of run %d", got, err, r2)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.Pid()
}

func TestMarkStaleRuns(t *testing.T) {
	l := openTemp(t)
	host, _ := os.Hostname()
	dead := deadPID(t)
	begin := func(pid int, h string) int64 {
		t.Helper()
		id, err := l.BeginRunAs(Run{Pipeline: pipeA, Command: "apply", Started: t0, PID: pid, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	deadRun := begin(dead, host)
	mustRecord(t, l, StageExecution{RunID: deadRun, Address: "a.a", Action: ActionRun, Status: StageSucceeded,
		Started: t0.Add(time.Minute), Duration: 30 * time.Second})
	mustRecord(t, l, StageExecution{RunID: deadRun, Address: "a.b", Action: ActionRun, Status: StageSucceeded,
		Started: t0.Add(2 * time.Minute), Duration: 10 * time.Second})
	deadNoStages := begin(dead, host)
	alive := begin(os.Getpid(), host)
	otherHost := begin(dead, host+"-elsewhere")
	unknownPID := begin(0, host)
	reused := begin(os.Getpid(), host)
	finished := begin(dead, host)
	if err := l.FinishRun(finished, RunSucceeded, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A pid that a new process took over after the writer died: same pid,
	// different process identity.
	if _, err := l.db.Exec(`UPDATE runs SET proc_start = 'some-other-boot:1' WHERE id = ?`, reused); err != nil {
		t.Fatal(err)
	}

	wantStatus := map[int64]RunStatus{
		deadRun: RunInterrupted, deadNoStages: RunInterrupted, alive: RunRunning,
		otherHost: RunRunning, unknownPID: RunRunning, reused: RunInterrupted, finished: RunSucceeded,
	}
	check := func(when string) {
		t.Helper()
		for id, want := range wantStatus {
			r, err := l.Run(id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != want {
				t.Errorf("%s: run %d status %s, want %s", when, id, r.Status, want)
			}
		}
	}
	check("before marking (readers report stale runs as interrupted)")

	ids, err := l.MarkStaleRuns()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{deadRun, deadNoStages, reused}; !reflect.DeepEqual(ids, want) {
		t.Errorf("MarkStaleRuns = %v, want %v", ids, want)
	}
	check("after marking")
	var stored string
	if err := l.db.QueryRow(`SELECT status FROM runs WHERE id = ?`, deadRun).Scan(&stored); err != nil || stored != "interrupted" {
		t.Errorf("stored status %q (%v), want interrupted", stored, err)
	}
	for id, want := range map[int64]time.Time{deadRun: t0.Add(2*time.Minute + 10*time.Second), deadNoStages: t0} {
		r, _ := l.Run(id)
		if !r.Finished.Equal(want) {
			t.Errorf("run %d finished %v, want the end of its last stage %v", id, r.Finished, want)
		}
	}
	if ids, err := l.MarkStaleRuns(); err != nil || len(ids) != 0 {
		t.Errorf("second MarkStaleRuns = %v, %v; want nothing", ids, err)
	}
}
