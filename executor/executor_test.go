package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/stages"
	_ "github.com/llmlab/llmlab/stages/exec"
	"github.com/llmlab/llmlab/store"
)

// sleeper is a test kind that records when each stage ran.
type sleeper struct {
	stages.Static
	mu    sync.Mutex
	spans map[string][2]time.Time
}

func (k *sleeper) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	start := time.Now()
	select {
	case <-time.After(150 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := os.WriteFile(filepath.Join(job.WorkDir, "out"), []byte(job.Address), 0o644); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.spans[job.Address] = [2]time.Time{start, time.Now()}
	k.mu.Unlock()
	return &stages.Result{Outputs: map[string]string{"out": "out"}, Metrics: map[string]float64{"threads": float64(job.Threads)}}, nil
}

var testSleeper = &sleeper{Static: stages.Static{KindName: "test_sleep", KindVersion: 1, KindSchema: &stages.Schema{}, OutputNames: []string{"out"}}, spans: map[string][2]time.Time{}}

func init() {
	stages.Register(testSleeper)
	stages.Register(&stages.Static{KindName: "test_norun", KindVersion: 1, KindSchema: &stages.Schema{}, OutputNames: []string{"out"}})
}

func key(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func stage(addr, kind string, settings map[string]any, deps ...string) *planner.StagePlan {
	outs := []string{"out"}
	if kind == "exec" {
		outs = nil
		for n := range settings["outputs"].(map[string]any) {
			outs = append(outs, n)
		}
	}
	return &planner.StagePlan{Address: addr, Kind: kind, Key: key(addr + kind), Action: planner.ActionRun, Cache: true,
		Settings: settings, DependsOn: deps, Outputs: outs, KeySettings: map[string]any{}, KeyInputs: map[string]string{}}
}

func newStore(t *testing.T) *store.Store {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func overlap(a, b [2]time.Time) bool { return a[0].Before(b[1]) && b[0].Before(a[1]) }

func TestCPUTokens(t *testing.T) {
	for _, tc := range []struct {
		cpus    int
		overlap bool
	}{{1, true}, {2, false}, {8, false}} {
		st := newStore(t)
		a := stage("stage.a", "test_sleep", map[string]any{})
		b := stage("stage.b", "test_sleep", map[string]any{})
		a.Key, b.Key = key(t.Name()+"a"+string(rune(tc.cpus))), key(t.Name()+"b"+string(rune(tc.cpus)))
		a.Resources.CPUs, b.Resources.CPUs = tc.cpus, tc.cpus
		sum, err := New(st, nil, Options{Parallelism: 2}).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{a, b}})
		if err != nil || !sum.OK() || sum.Ran != 2 {
			t.Fatalf("cpus=%d: %v %+v", tc.cpus, err, sum)
		}
		testSleeper.mu.Lock()
		got := overlap(testSleeper.spans["stage.a"], testSleeper.spans["stage.b"])
		testSleeper.mu.Unlock()
		if got != tc.overlap {
			t.Errorf("cpus=%d with 2 tokens: stages overlapped = %v, want %v", tc.cpus, got, tc.overlap)
		}
		if want := float64(min(tc.cpus, 2)); sum.Stages[0].Metrics["threads"] != want {
			t.Errorf("cpus=%d: job got %v threads, want %v", tc.cpus, sum.Stages[0].Metrics["threads"], want)
		}
	}
}

func TestKindThatCannotRun(t *testing.T) {
	st := newStore(t)
	s := stage("stage.x", "test_norun", map[string]any{})
	d := stage("stage.y", "test_sleep", map[string]any{}, "stage.x")
	sum, err := New(st, nil, Options{}).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{s, d}})
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Stages[0]; r.Status != StatusFailed || r.Err == nil || r.Err.Error() != "stage kind test_norun cannot run yet in this build" {
		t.Fatalf("got %+v", r)
	}
	if r := sum.Stages[1]; r.Status != StatusSkipped || !strings.Contains(r.Err.Error(), "depends on stage.x") {
		t.Fatalf("dependant: got %+v", r)
	}
}

func execStage(addr, script string) *planner.StagePlan {
	return stage(addr, "exec", map[string]any{
		"command": []any{"sh", "-c", script},
		"outputs": map[string]any{"o": "o"},
		"env":     map[string]any{},
	})
}

// TestCancel: a cancelled run stops the command (SIGTERM to its group, or
// SIGKILL after the grace period if it ignores SIGTERM), records the stage
// interrupted and commits nothing.
func TestCancel(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"term", "sleep 20; touch o"},
		{"ignores-term", "trap '' TERM; sleep 20; touch o"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			dir := t.TempDir()
			s := execStage("stage.s", "touch "+filepath.Join(dir, "started")+"; "+tc.script)
			after := execStage("stage.after", "touch o")
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				for {
					if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
						cancel()
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			start := time.Now()
			sum, err := New(st, nil, Options{Grace: 300 * time.Millisecond, Parallelism: 1}).Run(ctx, &planner.Plan{Stages: []*planner.StagePlan{s, after}})
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("cancel took %s", el)
			}
			if sum.Interrupted != 1 || sum.Stages[0].Status != StatusInterrupted || sum.Stages[1].Status != StatusSkipped {
				t.Fatalf("got %+v", sum)
			}
			k, _ := store.ParseActionKey(s.Key)
			if _, err := st.GetAction(k); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("an interrupted stage left an action entry: %v", err)
			}
		})
	}
}

func TestExecEnvironment(t *testing.T) {
	st := newStore(t)
	t.Setenv("LLMLAB_TEST_LEAK", "leaked")
	s := execStage("stage.e", "env | sort > o")
	s.Settings["env"] = map[string]any{"MINE": "yes"}
	var log strings.Builder
	sum, err := New(st, nil, Options{Output: &syncWriter{w: &log}}).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{s}})
	if err != nil || !sum.OK() {
		t.Fatalf("%v %+v", err, sum)
	}
	b := outputOf(t, st, s, "o")
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n, _, _ := strings.Cut(l, "=")
		names = append(names, n)
	}
	got := strings.Join(names, " ")
	// sh itself may add PWD, SHLVL and _.
	for _, want := range []string{"MINE", "PATH", "TMPDIR"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("environment %q lacks %s", got, want)
		}
	}
	if strings.Contains(string(b), "LLMLAB_TEST_LEAK") {
		t.Errorf("llmlab's environment leaked into the stage: %s", got)
	}
}

func TestExitErrorTail(t *testing.T) {
	st := newStore(t)
	s := execStage("stage.f", "seq 1 30; exit 7")
	sum, _ := New(st, nil, Options{}).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{s}})
	r := sum.Stages[0]
	if r.Status != StatusFailed || r.Exit != 7 {
		t.Fatalf("got %+v", r)
	}
	lines := strings.Split(r.Tail, "\n")
	if len(lines) != 20 || lines[0] != "11" || lines[19] != "30" {
		t.Errorf("tail = %q, want lines 11..30", r.Tail)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestDiamond runs a -> (b, c) -> d in parallel with a user file input, then
// runs the same plan again: every stage is now served from the cache, even
// though the plan says run (another apply completed them since planning).
func TestDiamond(t *testing.T) {
	st := newStore(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(data, []byte("D\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dg, err := st.HashPath(data)
	if err != nil {
		t.Fatal(err)
	}
	a := execStage("stage.a", "cat inputs/data > o; echo A >> o")
	a.Inputs = []planner.Input{{Name: "inputs.data", Path: data, Digest: "sha256:" + dg.Digest.String()}}
	mk := func(addr, script string, ups ...string) *planner.StagePlan {
		s := execStage(addr, script)
		s.DependsOn = ups
		for _, u := range ups {
			s.Inputs = append(s.Inputs, planner.Input{Name: "inputs." + strings.TrimPrefix(u, "stage."), Stage: u, Output: "o"})
		}
		return s
	}
	b := mk("stage.b", "cat inputs/a > o; echo B >> o", "stage.a")
	c := mk("stage.c", "cat inputs/a > o; echo C >> o", "stage.a")
	d := mk("stage.d", "cat inputs/b inputs/c > o", "stage.b", "stage.c")
	plan := &planner.Plan{Stages: []*planner.StagePlan{a, b, c, d}}
	var events []string
	opts := Options{Parallelism: 4, Events: func(ev Event) { events = append(events, string(ev.Kind)+" "+ev.Address) }}
	sum, err := New(st, nil, opts).Run(context.Background(), plan)
	if err != nil || !sum.OK() || sum.Ran != 4 {
		t.Fatalf("%v %+v", err, sum)
	}
	k, _ := store.ParseActionKey(d.Key)
	e, err := st.GetAction(k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.ReadBlob(e.Outputs["o"].Digest)
	if want := "D\nA\nB\nD\nA\nC\n"; string(got) != want {
		t.Errorf("stage.d output = %q, want %q", got, want)
	}
	sum, err = New(st, nil, opts).Run(context.Background(), plan)
	if err != nil || sum.Cached != 4 {
		t.Fatalf("second run: %v %+v", err, sum)
	}
	// A changed user file is refused, not silently used.
	if err := os.WriteFile(data, []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Key = key("other")
	sum, _ = New(st, nil, opts).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{a}})
	if r := sum.Stages[0]; r.Status != StatusFailed || !strings.Contains(r.Err.Error(), "changed since it was planned") {
		t.Errorf("changed input: got %+v", r)
	}
}

// Options.Entries hands over the action entries read while planning: a
// cached stage is served from them without reading its entry file again,
// but its outputs are still re-hashed, and an entry for another key is
// never used.
func TestEntriesFromPlanning(t *testing.T) {
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, st *store.Store, e *store.ActionEntry) // after planning
		otherKey   bool
		wantStatus string
	}{
		{name: "served from the planning read", damage: func(t *testing.T, st *store.Store, e *store.ActionEntry) {
			// The file is gone, yet the entry read at plan time serves.
			p := filepath.Join(st.Root(), "store", "actions", e.Key.String()[:2], e.Key.String())
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, wantStatus: StatusCached},
		{name: "damaged output is re-hashed and runs again", damage: func(t *testing.T, st *store.Store, e *store.ActionEntry) {
			d := e.Outputs["out"].Digest.String()
			p := filepath.Join(st.Root(), "store", "objects", d[:2], d)
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("bit rot"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantStatus: StatusSucceeded},
		{name: "entry of another key is not used", otherKey: true, wantStatus: StatusSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			s := stage("stage.e", "test_sleep", map[string]any{})
			s.Key = key(t.Name())
			if sum, err := New(st, nil, Options{}).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{s}}); err != nil || sum.Ran != 1 {
				t.Fatalf("first run: %v %+v", err, sum)
			}
			k, _ := store.ParseActionKey(s.Key)
			planned, err := st.GetAction(k) // what planning read
			if err != nil {
				t.Fatal(err)
			}
			if tc.otherKey {
				// An entry naming another key, handed over for s.Key, with
				// the real entry removed: s must run.
				other := *planned
				other.Key, _ = store.ParseActionKey(key("other"))
				planned = &other
				p := filepath.Join(st.Root(), "store", "actions", s.Key[:2], s.Key)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			if tc.damage != nil {
				tc.damage(t, st, planned)
			}
			s.Action = planner.ActionCached
			asked := 0
			opts := Options{Entries: func(key string) *store.ActionEntry {
				asked++
				if key == s.Key {
					return planned
				}
				return nil
			}}
			sum, err := New(st, nil, opts).Run(context.Background(), &planner.Plan{Stages: []*planner.StagePlan{s}})
			if err != nil {
				t.Fatal(err)
			}
			if asked == 0 {
				t.Errorf("Entries was not consulted")
			}
			if got := sum.Stages[0].Status; got != tc.wantStatus {
				t.Errorf("status %s, want %s (%v)", got, tc.wantStatus, sum.Stages[0].Err)
			}
		})
	}
}

// outputOf reads output name of stage s from the action cache.
func outputOf(t *testing.T, st *store.Store, s *planner.StagePlan, name string) []byte {
	t.Helper()
	k, err := store.ParseActionKey(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.GetAction(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.ReadBlob(e.Outputs[name].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
