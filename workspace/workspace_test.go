package workspace

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmlab/llmlab/ledger"
	"github.com/llmlab/llmlab/store"
)

func TestWorkspaceAnswersThePlannersQuestions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(HomeEnv, "")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	os.WriteFile(pipeline, []byte("llmlab { version = 1 }\n"), 0o644)
	ws, err := Open(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ws.Root != filepath.Join(dir, ".llmlab") {
		t.Errorf("root = %s", ws.Root)
	}

	// The salt is random, 32 bytes, and stable across opens.
	salt := append([]byte(nil), ws.Salt()...)
	ws2, err := Open(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(salt) != 32 || !bytes.Equal(salt, ws2.Salt()) {
		t.Errorf("salt changed between opens or has the wrong size")
	}
	ws2.Close()

	// An unknown key is not found; a stored action with intact outputs is.
	key := "0000000000000000000000000000000000000000000000000000000000000001"
	st, err := ws.Action(key)
	if err != nil || st.Found {
		t.Fatalf("unknown key: %+v, %v", st, err)
	}
	out := filepath.Join(dir, "out.txt")
	os.WriteFile(out, []byte("result"), 0o644)
	a, err := ws.Store.PutArtifact(out)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := store.ParseActionKey(key)
	now := time.Now()
	if err := ws.Store.PutAction(&store.ActionEntry{Key: k, Address: "stage.x", Kind: "exec",
		Outputs: map[string]store.Artifact{"o": a}, Started: now, Finished: now}); err != nil {
		t.Fatal(err)
	}
	if ws.Entry(key) != nil {
		t.Errorf("Entry before Action read the entry: %+v", ws.Entry(key))
	}
	st, err = ws.Action(key)
	if err != nil || !st.Found || !st.OutputsIntact {
		t.Fatalf("stored key: %+v, %v", st, err)
	}
	// The entry Action read is handed to the executor through Entry.
	if e := ws.Entry(key); e == nil || e.Key != k || e.Outputs["o"] != a {
		t.Errorf("Entry after Action = %+v", e)
	}
	if e := ws.Entry("0000000000000000000000000000000000000000000000000000000000000002"); e != nil {
		t.Errorf("Entry of a key never read = %+v", e)
	}

	// Digest is by content: equal files, equal digests; a change changes it.
	f1, f2 := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(f1, []byte("same"), 0o644)
	os.WriteFile(f2, []byte("same"), 0o644)
	d1, _ := ws.Digest(f1)
	d2, _ := ws.Digest(f2)
	if d1 != d2 || len(d1) != len("sha256:")+64 {
		t.Errorf("digests %s %s", d1, d2)
	}
	os.WriteFile(f2, []byte("diff"), 0o644)
	if d3, _ := ws.Digest(f2); d3 == d1 {
		t.Error("digest did not change with content")
	}

	// No previous run of an address: nil, no error.
	if p, err := ws.Previous("stage.x"); p != nil || err != nil {
		t.Errorf("previous = %+v, %v", p, err)
	}

	// Recorded completions are answered from one snapshot, taken at the
	// first call; Refresh takes a new one.
	run, err := ws.Ledger.BeginRun(ws.Pipeline, "d", "apply", now)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(addr, status, key, settings string) {
		t.Helper()
		if err := ws.Ledger.RecordStage(ledger.StageExecution{RunID: run, Address: addr, Kind: "exec", Key: key,
			Action: ledger.ActionRun, Status: status, Started: now, Settings: json.RawMessage(settings)}); err != nil {
			t.Fatal(err)
		}
	}
	rec("stage.x", ledger.StageSucceeded, key, `{"key":"`+key+`","kind_version":1,"settings":{"n":1}}`)
	rec("stage.y", ledger.StageFailed, key, `{"key":"`+key+`","kind_version":1,"settings":{"n":2}}`)
	if p, err := ws.Previous("stage.x"); p != nil || err != nil {
		t.Errorf("before Refresh: previous = %+v, %v; want the snapshot's answer (none)", p, err)
	}
	ws.Refresh()
	if p, err := ws.Previous("stage.x"); err != nil || p == nil || p.Key != key || p.Settings["n"] != float64(1) {
		t.Errorf("previous of stage.x = %+v, %v; want key %s, n = 1", p, err, key)
	}
	if p, err := ws.Previous("stage.y"); p != nil || err != nil {
		t.Errorf("previous of a failed stage = %+v, %v; want none", p, err)
	}
}

func TestHomeOverride(t *testing.T) {
	t.Setenv(HomeEnv, "/somewhere/else")
	if got := Dir("x/pipeline.hcl"); got != "/somewhere/else" {
		t.Errorf("Dir = %s", got)
	}
}
