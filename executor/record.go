package executor

import (
	"sync"
	"time"

	"github.com/llmlab/llmlab/ledger"
)

// recorder writes stage executions to the ledger from one goroutine, in
// batches (group commit): whatever stages finish while one transaction is
// being committed go into the next, so a rerun where every stage is
// cached costs a few transactions instead of one per stage, and a running
// stage never waits for the ledger. Run closes the recorder, which writes
// everything queued, before it returns; so the ledger holds every stage of
// a run before the run is finished. The store, not the ledger, says what
// is cached, so a crash that loses the last queued rows costs only their
// history (see the ledger package).
type recorder struct {
	led  *ledger.Ledger
	warn func(address, msg string)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []record
	closed bool
	stop   chan struct{} // closed by close
	done   chan struct{}
}

// recordGap is how long the recorder lets rows gather after writing a
// batch. In a full run stages finish every few milliseconds, and one
// transaction per stage or two costs more CPU than the stages' own
// bookkeeping; a rerun that serves everything from the cache queues all its
// rows at once and does not wait. close does not wait for the gap.
const recordGap = 20 * time.Millisecond

// record is one stage execution and its metric history.
type record struct {
	ex      ledger.StageExecution
	history []ledger.MetricPoint
}

func newRecorder(led *ledger.Ledger, warn func(address, msg string)) *recorder {
	r := &recorder{led: led, warn: warn, stop: make(chan struct{}), done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go r.loop()
	return r
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	r.queue = append(r.queue, rec)
	r.mu.Unlock()
	r.cond.Signal()
}

// close writes what is queued and stops the recorder.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	r.cond.Signal()
	<-r.done
}

func (r *recorder) loop() {
	defer close(r.done)
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closed {
			r.cond.Wait()
		}
		batch := r.queue
		r.queue = nil
		closed := r.closed
		r.mu.Unlock()
		if len(batch) > 0 {
			r.write(batch)
		}
		if closed && len(batch) == 0 {
			return
		}
		if !closed {
			t := time.NewTimer(recordGap)
			select {
			case <-t.C:
			case <-r.stop:
				t.Stop()
			}
		}
	}
}

func (r *recorder) write(batch []record) {
	exs := make([]ledger.StageExecution, len(batch))
	for i, rec := range batch {
		exs[i] = rec.ex
	}
	if err := r.led.RecordStages(exs); err != nil {
		// Record one by one so that one bad row loses only itself.
		for _, ex := range exs {
			if err := r.led.RecordStage(ex); err != nil {
				r.warn(ex.Address, "could not record the stage in the ledger: "+err.Error())
			}
		}
	}
	for _, rec := range batch {
		if len(rec.history) == 0 {
			continue
		}
		if err := r.led.RecordMetrics(rec.ex.RunID, rec.ex.Address, rec.history); err != nil {
			r.warn(rec.ex.Address, "could not record metric history: "+err.Error())
		}
	}
}
