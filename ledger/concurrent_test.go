package ledger

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestConcurrentReaderWriter runs a writer (as apply would) and a reader
// (as plan or show would), each with its own *Ledger on the same file, and
// a second writer for another pipeline, and requires that nobody sees an
// error ("database is locked" above all).
func TestConcurrentReaderWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".llmlab", FileName)

	// Open the fresh file from three Ledgers at once: the migrations must
	// run exactly once and nobody may fail.
	ledgers := make([]*Ledger, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range ledgers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Open(path)
			if err != nil {
				errs <- fmt.Errorf("open %d: %w", i, err)
				return
			}
			ledgers[i] = l
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, l := range ledgers {
		defer l.Close()
	}
	writerA, writerB, reader := ledgers[0], ledgers[1], ledgers[2]

	const runs, stages, steps = 15, 4, 25
	errs = make(chan error, 100)
	done := make(chan struct{})
	write := func(l *Ledger, pipeline string) {
		defer wg.Done()
		for r := 0; r < runs; r++ {
			id, err := l.BeginRun(pipeline, "d", "apply", t0.Add(time.Duration(r)*time.Minute))
			if err != nil {
				errs <- err
				return
			}
			for s := 0; s < stages; s++ {
				addr := fmt.Sprintf("pretrain.s%d", s)
				pts := make([]MetricPoint, steps)
				for i := range pts {
					pts[i] = MetricPoint{Name: "loss", Step: i, Value: float64(r)}
				}
				if err := l.RecordMetrics(id, addr, pts); err != nil {
					errs <- err
					return
				}
				if err := l.RecordStage(StageExecution{RunID: id, Address: addr, Kind: "pretrain", Key: fmt.Sprintf("k%d", r),
					Action: ActionRun, Status: StageSucceeded, Settings: json.RawMessage(fmt.Sprintf(`{"run":%d}`, r)),
					Metrics: map[string]float64{"loss": float64(r)}}); err != nil {
					errs <- err
					return
				}
			}
			if err := l.FinishRun(id, RunSucceeded, t0.Add(time.Duration(r)*time.Minute+time.Second)); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(2)
	go write(writerA, pipeA)
	go write(writerB, pipeB)
	reads := 0
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			reads++
			if _, _, err := reader.LastRun(pipeA); err != nil && err != ErrNoRuns {
				errs <- fmt.Errorf("LastRun: %w", err)
				return
			}
			if _, _, _, _, err := reader.LastSettings(pipeA, "pretrain.s1"); err != nil {
				errs <- fmt.Errorf("LastSettings: %w", err)
				return
			}
			h, err := reader.MetricHistory(pipeB, "pretrain.s2", "loss")
			if err != nil {
				errs <- fmt.Errorf("MetricHistory: %w", err)
				return
			}
			// A batch is one transaction: a reader sees all of it or none.
			if len(h) != 0 && len(h) != steps {
				errs <- fmt.Errorf("MetricHistory saw %d of a %d-point batch", len(h), steps)
				return
			}
			if _, err := reader.LatestRuns(); err != nil {
				errs <- fmt.Errorf("LatestRuns: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads == 0 {
		t.Error("the reader never ran")
	}

	for _, p := range []string{pipeA, pipeB} {
		all, err := reader.Runs(p)
		if err != nil || len(all) != runs {
			t.Fatalf("%s: %d runs (%v), want %d", p, len(all), err, runs)
		}
		s, key, _, ok, err := reader.LastSettings(p, "pretrain.s3")
		want := fmt.Sprintf(`{"run":%d}`, runs-1)
		if err != nil || !ok || string(s) != want || key != fmt.Sprintf("k%d", runs-1) {
			t.Errorf("%s: LastSettings = %s, %q, %v, %v; want %s", p, s, key, ok, err, want)
		}
	}
	var version string
	if err := reader.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != "3" {
		t.Errorf("user_version = %s (%v)", version, err)
	}
	t.Logf("%d read rounds during %d writes", reads, 2*runs*(2*stages+2))
}
