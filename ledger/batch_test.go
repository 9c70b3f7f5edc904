package ledger

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestRecordStages(t *testing.T) {
	l := openTemp(t)
	r1 := mustBegin(t, l, pipeA, t0)
	var batch []StageExecution
	for i := 0; i < 50; i++ {
		batch = append(batch, StageExecution{RunID: r1, Address: fmt.Sprintf("exec.s%02d", i), Kind: "exec", Key: fmt.Sprintf("k%d", i),
			Action: ActionCached, Status: StageCached, Settings: json.RawMessage(fmt.Sprintf(`{ "i": %d }`, i)),
			Metrics: map[string]float64{"m": float64(i)}})
	}
	if err := l.RecordStages(batch); err != nil {
		t.Fatal(err)
	}
	got, err := l.Stages(r1)
	if err != nil || len(got) != 50 {
		t.Fatalf("Stages = %d rows, %v; want 50", len(got), err)
	}
	for i, e := range got {
		if e.Address != batch[i].Address || string(e.Settings) != fmt.Sprintf(`{"i":%d}`, i) || e.Metrics["m"] != float64(i) {
			t.Fatalf("row %d = %+v, want %s in order, compacted settings and metric %d", i, e, batch[i].Address, i)
		}
	}

	// One bad execution fails the whole batch, naming it, and records none.
	bad := []StageExecution{
		{RunID: r1, Address: "exec.ok", Action: ActionRun, Status: StageSucceeded},
		{RunID: r1, Address: "exec.bad", Action: ActionRun, Status: "done"},
	}
	wantErr(t, l.RecordStages(bad), `ledger: record stage exec.bad: status "done" is not one of`)
	wantErr(t, l.RecordStages([]StageExecution{bad[0], {RunID: 999, Address: "exec.x", Action: ActionRun, Status: StageSucceeded}}),
		"ledger: record stage exec.x: no run with ID 999")
	if got, _ := l.Stages(r1); len(got) != 50 {
		t.Errorf("after failed batches: %d rows, want 50", len(got))
	}
	if err := l.RecordStages(nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

// TestLastCompletions checks the one-query form against LastSettings, and
// the trigger-kept table against a direct scan of the history.
func TestLastCompletions(t *testing.T) {
	l := openTemp(t)
	st := func(run int64, addr, status, key string) StageExecution {
		return StageExecution{RunID: run, Address: addr, Kind: "exec", Key: key, Action: ActionRun, Status: status,
			Started: t0, Duration: time.Second, Settings: json.RawMessage(`{"key":"` + key + `"}`)}
	}
	statuses := []string{StageSucceeded, StageCached, StageFailed, StageSkipped, StageInterrupted}
	for r := 0; r < 6; r++ {
		for _, p := range []string{pipeA, pipeB} {
			id := mustBegin(t, l, p, t0.Add(time.Duration(r)*time.Hour))
			var batch []StageExecution
			for a := 0; a < 7; a++ {
				status := statuses[(r*3+a)%len(statuses)]
				batch = append(batch, st(id, fmt.Sprintf("exec.a%d", a), status, fmt.Sprintf("%s-r%d-a%d", p[len(p)-14:len(p)-13], r, a)))
			}
			if err := l.RecordStages(batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{pipeA, pipeB, "/nope.hcl"} {
		m, err := l.LastCompletions(p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for a := 0; a < 8; a++ {
			addr := fmt.Sprintf("exec.a%d", a)
			// The reference: the history scanned directly.
			var wantKey string
			err := l.db.QueryRow(`SELECT e.action_key FROM stage_executions e JOIN runs r ON r.id = e.run_id
				WHERE r.pipeline = ? AND e.address = ? AND e.status IN ('succeeded', 'cached') ORDER BY e.id DESC LIMIT 1`, p, addr).Scan(&wantKey)
			c, ok := m[addr]
			if (err == nil) != ok || c.Key != wantKey {
				t.Errorf("%s %s: LastCompletions = %+v, %v; the history says %q (%v)", p, addr, c, ok, wantKey, err)
			}
			s, key, at, ok2, err2 := l.LastSettings(p, addr)
			if err2 != nil || ok2 != ok || key != c.Key || string(s) != string(c.Settings) || !at.Equal(c.At) {
				t.Errorf("%s %s: LastSettings = %s, %q, %v, %v, %v; LastCompletions = %+v", p, addr, s, key, at, ok2, err2, c)
			}
			if ok {
				n++
			}
		}
		if len(m) != n {
			t.Errorf("%s: %d completions, want %d", p, len(m), n)
		}
	}
}

// TestLatestKeys: a later run of only some stages (apply -target) does not
// hide the other stages' latest results.
func TestLatestKeys(t *testing.T) {
	l := openTemp(t)
	r1 := mustBegin(t, l, pipeA, t0)
	mustRecord(t, l, StageExecution{RunID: r1, Address: "exec.a", Key: "ka1", Action: ActionRun, Status: StageSucceeded})
	mustRecord(t, l, StageExecution{RunID: r1, Address: "exec.b", Key: "kb1", Action: ActionRun, Status: StageSucceeded})
	rb := mustBegin(t, l, pipeB, t0)
	mustRecord(t, l, StageExecution{RunID: rb, Address: "exec.a", Key: "ka1", Action: ActionCached, Status: StageCached})
	mustRecord(t, l, StageExecution{RunID: rb, Address: "exec.c", Key: "kc", Action: ActionRun, Status: StageFailed})
	r2 := mustBegin(t, l, pipeA, t0.Add(time.Hour)) // -target exec.a, changed
	mustRecord(t, l, StageExecution{RunID: r2, Address: "exec.a", Key: "ka2", Action: ActionRun, Status: StageSucceeded})
	r3 := mustBegin(t, l, pipeA, t0.Add(2*time.Hour)) // -target exec.b, failed
	mustRecord(t, l, StageExecution{RunID: r3, Address: "exec.b", Key: "kb2", Action: ActionRun, Status: StageFailed})
	got, err := l.LatestKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{pipeA: {"ka2", "kb1"}, pipeB: {"ka1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LatestKeys = %v, want %v", got, want)
	}
}
