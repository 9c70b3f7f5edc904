package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/stages"
	"github.com/llmlab/llmlab/store"
)

// TestReusedDirectoriesAreClean: work directories and TMPDIRs are reused
// across the stages of a run, yet every stage sees an empty work directory
// (holding inputs/ exactly when it has inputs, with only its own inputs in
// it) and an empty TMPDIR, whatever the stages before it left behind; and
// nothing is left in store/tmp after the run.
func TestReusedDirectoriesAreClean(t *testing.T) {
	st := newStore(t)
	var plan planner.Plan
	const n = 24
	for i := range n {
		// Each stage lists what it finds, then litters its work directory,
		// its inputs/ (read-only: it may fail) and its TMPDIR, some of it
		// read-only.
		script := `l=$(ls -A; echo --; ls -A inputs 2>/dev/null; echo --; ls -A "$TMPDIR"); echo "$l" > o; ` +
			`mkdir -p junk/ro "$TMPDIR/t/ro"; touch junk/ro/f "$TMPDIR/t/ro/f" "$TMPDIR/f"; chmod 555 junk/ro "$TMPDIR/t/ro" junk; ` +
			`touch inputs/extra 2>/dev/null; true`
		s := execStage(fmt.Sprintf("stage.s%d", i), script)
		if i%3 != 0 { // stages 1, 2, 4, 5, ... read the stage before them
			up := fmt.Sprintf("stage.s%d", i-1)
			s.DependsOn = []string{up}
			s.Inputs = []planner.Input{{Name: "inputs.up", Stage: up, Output: "o"}}
		}
		plan.Stages = append(plan.Stages, s)
	}
	sum, err := New(st, nil, Options{Parallelism: 2}).Run(context.Background(), &plan)
	if err != nil || !sum.OK() {
		t.Fatalf("%v %+v", err, sum)
	}
	for i, s := range plan.Stages {
		b := outputOf(t, st, s, "o")
		want := "--\n--\n"
		if i%3 != 0 {
			want = "inputs\n--\nup\n--\n"
		}
		if string(b) != want {
			t.Errorf("%s found %q, want %q", s.Address, b, want)
		}
	}
	ents, err := os.ReadDir(filepath.Join(st.Root(), "store", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in store/tmp: %s", e.Name())
	}
}

// TestStageLogs: a small log is kept in memory and stored, a large one
// goes through a file and is stored whole, and an empty one is not stored.
func TestStageLogs(t *testing.T) {
	st := newStore(t)
	small := execStage("stage.small", "echo hello; touch o")
	big := execStage("stage.big", fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; touch o", logMemMax+1000))
	quiet := execStage("stage.quiet", "touch o")
	plan := &planner.Plan{Stages: []*planner.StagePlan{small, big, quiet}}
	sum, err := New(st, nil, Options{}).Run(context.Background(), plan)
	if err != nil || !sum.OK() {
		t.Fatalf("%v %+v", err, sum)
	}
	for _, tc := range []struct {
		s    *planner.StagePlan
		want string
	}{
		{small, "hello\n"},
		{big, strings.Repeat("x", logMemMax+1000)},
		{quiet, ""},
	} {
		k, _ := store.ParseActionKey(tc.s.Key)
		e, err := st.GetAction(k)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			if !e.LogDigest.IsZero() {
				t.Errorf("%s: an empty log was stored", tc.s.Address)
			}
			continue
		}
		b, err := st.ReadBlob(e.LogDigest)
		if err != nil {
			t.Fatalf("%s: %v", tc.s.Address, err)
		}
		if string(b) != tc.want {
			t.Errorf("%s: log of %d bytes, want %d", tc.s.Address, len(b), len(tc.want))
		}
	}
}

// entryChecker is a test kind that records, when it runs, whether the
// action entries of the stages it depends on are already in the store.
type entryChecker struct {
	stages.Static
	st      *store.Store
	mu      sync.Mutex
	missing []string
}

func (k *entryChecker) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	ups, _ := job.Settings["ups"].([]any)
	for _, u := range ups {
		key, _ := store.ParseActionKey(u.(string))
		if _, err := k.st.GetAction(key); err != nil {
			k.mu.Lock()
			k.missing = append(k.missing, job.Address+" before "+u.(string))
			k.mu.Unlock()
		}
	}
	if err := os.WriteFile(filepath.Join(job.WorkDir, "out"), []byte(job.Address), 0o644); err != nil {
		return nil, err
	}
	return &stages.Result{Outputs: map[string]string{"out": "out"}}, nil
}

var testEntryChecker = &entryChecker{Static: stages.Static{KindName: "test_entries", KindVersion: 1, KindSchema: &stages.Schema{}, OutputNames: []string{"out"}}}

func init() { stages.Register(testEntryChecker) }

// TestDependenciesCommittedFirst: action entries are written off the
// stages' critical path, but no stage starts before the entries of the
// stages it depends on are in the store (so killing a run never loses a
// result that a running stage already builds on).
func TestDependenciesCommittedFirst(t *testing.T) {
	st := newStore(t)
	testEntryChecker.st = st
	var plan planner.Plan
	for i := range 30 {
		var deps []string
		var ups []any
		for _, j := range []int{i - 1, i - 2, i / 2} {
			if j >= 0 && j < i && !strings.Contains(strings.Join(deps, " ")+" ", fmt.Sprintf("stage.c%d ", j)) {
				deps = append(deps, fmt.Sprintf("stage.c%d", j))
				ups = append(ups, plan.Stages[j].Key)
			}
		}
		plan.Stages = append(plan.Stages, stage(fmt.Sprintf("stage.c%d", i), "test_entries", map[string]any{"ups": ups}, deps...))
	}
	sum, err := New(st, nil, Options{Parallelism: 3}).Run(context.Background(), &plan)
	if err != nil || !sum.OK() {
		t.Fatalf("%v %+v", err, sum)
	}
	if len(testEntryChecker.missing) > 0 {
		t.Errorf("stages started before their dependencies' entries were written: %v", testEntryChecker.missing)
	}
	// Every entry is written by the time Run returns.
	for _, s := range plan.Stages {
		k, _ := store.ParseActionKey(s.Key)
		if _, err := st.GetAction(k); err != nil {
			t.Errorf("%s: %v", s.Address, err)
		}
	}
}

// TestReusedInputs: input files are reused across the stages that share a
// work directory (kept when they hold the wanted input, overwritten when
// not, removed when the next stage does not want them), and every stage
// reads exactly its own inputs.
func TestReusedInputs(t *testing.T) {
	for _, par := range []int{1, 2} {
		t.Run(fmt.Sprint(par), func(t *testing.T) {
			st := newStore(t)
			plan := planner.Plan{Stages: []*planner.StagePlan{execStage("stage.s0", "echo 0 > o")}}
			want := "0\n"
			for i := 1; i <= 20; i++ {
				prev := fmt.Sprintf("stage.s%d", i-1)
				// up is the stage before (a chain), root is stage.s0 (a
				// fan-out); every third stage names its chain input
				// differently, so a kept "up" must go.
				name := "up"
				if i%3 == 0 {
					name = "other"
				}
				script := fmt.Sprintf(`[ "$(ls inputs | tr '\n' ' ')" = "%s" ] || exit 3; { cat inputs/%s; echo %d; } > o; [ "$(cat inputs/root)" = 0 ] || exit 4`,
					map[bool]string{true: "other root ", false: "root up "}[name == "other"], name, i)
				s := execStage(fmt.Sprintf("stage.s%d", i), script)
				s.DependsOn = []string{prev}
				s.Inputs = []planner.Input{{Name: "inputs." + name, Stage: prev, Output: "o"}}
				if i > 1 {
					s.DependsOn = append(s.DependsOn, "stage.s0")
					s.Inputs = append(s.Inputs, planner.Input{Name: "inputs.root", Stage: "stage.s0", Output: "o"})
				} else {
					s.Inputs = append(s.Inputs, planner.Input{Name: "inputs.root", Stage: "stage.s0", Output: "o"})
				}
				plan.Stages = append(plan.Stages, s)
				want += fmt.Sprintf("%d\n", i)
			}
			sum, err := New(st, nil, Options{Parallelism: par}).Run(context.Background(), &plan)
			if err != nil || !sum.OK() {
				for _, r := range sum.Stages {
					if r.Err != nil {
						t.Errorf("%s: %v", r.Address, r.Err)
					}
				}
				t.Fatalf("%v", err)
			}
			last := plan.Stages[len(plan.Stages)-1]
			b := outputOf(t, st, last, "o")
			if string(b) != want {
				t.Errorf("last output %q, want %q", b, want)
			}
		})
	}
}
