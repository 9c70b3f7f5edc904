package ledger

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

func benchLedger(b *testing.B) (*Ledger, int64) {
	l, err := Open(filepath.Join(b.TempDir(), FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	id, err := l.BeginRun(pipeA, "d", "apply", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return l, id
}

// BenchmarkRecordMetrics100 records one batch of 100 steps of one metric,
// as an executor flushing a training loop's log would.
func BenchmarkRecordMetrics100(b *testing.B) {
	l, id := benchLedger(b)
	pts := make([]MetricPoint, 100)
	for i := 0; b.Loop(); i++ {
		for j := range pts {
			pts[j] = MetricPoint{Name: "loss", Step: i*100 + j, Value: float64(j)}
		}
		if err := l.RecordMetrics(id, "pretrain.p", pts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordStage(b *testing.B) {
	l, id := benchLedger(b)
	e := StageExecution{RunID: id, Address: "pretrain.p", Kind: "pretrain", Key: "k", Action: ActionRun, Status: StageSucceeded,
		Settings: json.RawMessage(`{"lr":0.001,"model":{"layers":4,"heads":4,"embd":128}}`), Metrics: map[string]float64{"loss": 1, "val_loss": 2}}
	for b.Loop() {
		if err := l.RecordStage(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLastSettings(b *testing.B) {
	l, id := benchLedger(b)
	for i := 0; i < 1000; i++ {
		if err := l.RecordStage(StageExecution{RunID: id, Address: "pretrain.p", Key: "k", Action: ActionRun, Status: StageSucceeded, Settings: json.RawMessage(`{"lr":1}`)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, _, _, ok, err := l.LastSettings(pipeA, "pretrain.p"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
