package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// twoActions stores A (a tree with x,y + a log) and B (a tree with x,w);
// x is shared.
func twoActions(t *testing.T, s *Store) (ka, kb ActionKey, ta, tb Artifact, log Digest) {
	t.Helper()
	da := filepath.Join(t.TempDir(), "a")
	build(t, da, []fsOp{{path: "x", content: "shared"}, {path: "y", content: "only a"}})
	db := filepath.Join(t.TempDir(), "b")
	build(t, db, []fsOp{{path: "x", content: "shared"}, {path: "w", content: "only b"}})
	var err error
	if ta, err = s.PutArtifact(da); err != nil {
		t.Fatal(err)
	}
	if tb, err = s.PutArtifact(db); err != nil {
		t.Fatal(err)
	}
	log = putFileArtifact(t, s, "a's log").Digest
	ka, kb = ActionKey(DigestOf([]byte("A"))), ActionKey(DigestOf([]byte("B")))
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range []*ActionEntry{
		{Key: kb, Address: "stage.b", Outputs: map[string]Artifact{"out": tb}, Finished: t0},
		{Key: ka, Address: "stage.a", Outputs: map[string]Artifact{"out": ta}, LogDigest: log, Finished: t0.Add(time.Hour)},
	} {
		if err := s.PutAction(e); err != nil {
			t.Fatal(err)
		}
	}
	return
}

func lockStore(t *testing.T, s *Store) {
	t.Helper()
	l, err := s.Lock(context.Background(), CurrentOwner("test"), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Unlock() })
}

func TestGC(t *testing.T) {
	s := openTemp(t)
	ka, kb, ta, tb, log := twoActions(t, s)
	_ = putFileArtifact(t, s, "garbage")
	if _, err := s.GC([]ActionKey{ka}, true); err == nil {
		t.Fatal("gc without the lock")
	} else {
		mustContain(t, err.Error(), "store gc: the store lock is not held")
	}
	lockStore(t, s)

	u0, _ := s.Du()
	// objects: x, y, w, tree a, tree b, log, garbage
	if u0.Objects != 7 || u0.Actions != 2 {
		t.Fatalf("Du %+v", u0)
	}
	dry, err := s.GC([]ActionKey{ka}, true)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Du(); u != u0 {
		t.Fatalf("dry run removed something: %+v -> %+v", u0, u)
	}
	if !dry.DryRun || dry.ObjectsRemoved != 3 || dry.ObjectsKept != 4 || len(dry.ActionsRemoved) != 1 || dry.ActionsRemoved[0] != kb {
		t.Fatalf("dry run report %+v", dry)
	}
	r, err := s.GC([]ActionKey{ka}, false)
	if err != nil {
		t.Fatal(err)
	}
	dry.DryRun = false
	if r.ObjectsRemoved != dry.ObjectsRemoved || r.BytesFreed != dry.BytesFreed || r.ActionsKept != 1 {
		t.Fatalf("report %+v differs from dry run %+v", r, dry)
	}
	if !s.Has(ta) || s.Has(tb) {
		t.Fatalf("after gc: Has(a)=%v Has(b)=%v", s.Has(ta), s.Has(tb))
	}
	if _, err := s.ReadBlob(log); err != nil {
		t.Fatal("log of kept action removed")
	}
	if _, err := s.GetAction(kb); !errors.Is(err, ErrNotFound) {
		t.Fatal("action b kept")
	}
	if v, err := s.Verify(); err != nil || !v.OK() || v.Objects != 4 || v.Actions != 1 {
		t.Fatalf("verify after gc: %+v %v", v, err)
	}
	// Keeping nothing empties the store.
	if _, err := s.GC(nil, false); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Du(); u.Objects != 0 || u.Actions != 0 {
		t.Fatalf("Du after gc(nil) %+v", u)
	}
}

func TestVerifyNamesBrokenActions(t *testing.T) {
	s := openTemp(t)
	ka, kb, _, tb, log := twoActions(t, s)
	tree, _ := s.ReadTree(tb.Digest)
	var w Digest
	for _, e := range tree.Entries {
		if e.Path == "w" {
			w = e.Digest
		}
	}
	flipByte(t, s.objectPath(w), 0)
	if err := removeAllForce(s.objectPath(log)); err != nil {
		t.Fatal(err)
	}
	r, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Corrupt) != 1 || r.Corrupt[0].Digest != w || len(r.BadActions) != 2 {
		t.Fatalf("report %+v", r)
	}
	got := map[ActionKey]string{}
	for _, p := range r.BadActions {
		got[p.Key] = p.String()
	}
	mustContain(t, got[ka], "stage.a", "log object "+log.Short()+" is missing")
	mustContain(t, got[kb], "stage.b", `output "out" entry w object `+w.Short()+" is corrupt")

	if _, err := s.Repair(r); err == nil {
		t.Fatal("repair without lock")
	}
	lockStore(t, s)
	if n, err := s.Repair(r); err != nil || n != 3 {
		t.Fatalf("Repair: %d %v", n, err)
	}
	if r, err := s.Verify(); err != nil || !r.OK() {
		t.Fatalf("after repair: %+v %v", r, err)
	}
	if _, err := s.GetAction(ka); !errors.Is(err, ErrNotFound) {
		t.Fatal("broken action survived repair")
	}
}

func TestActionsSorted(t *testing.T) {
	s := openTemp(t)
	twoActions(t, s)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, k := range []string{"c2", "c1"} {
		if err := s.PutAction(&ActionEntry{Key: ActionKey(DigestOf([]byte(k))), Address: "stage.a", Finished: t0.Add(time.Duration(-i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Actions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l {
		got = append(got, e.Address+"@"+e.Finished.Format("15"))
	}
	want := "[stage.a@23 stage.a@00 stage.a@01 stage.b@00]"
	if s := fmtSlice(got); s != want {
		t.Fatalf("Actions order %s, want %s", s, want)
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
