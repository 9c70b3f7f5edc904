package executor

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/store"
)

// Per-stage directories and commits. A stage runs in a work directory with
// a private TMPDIR next to it. Both are emptied after the stage (off its
// critical path, by Run's trash goroutine) and reused by later stages of
// the same Run rather than removed and made again: a directory that is
// empty is as good as a fresh one, and each reuse spares an inode
// allocation and a deletion (on ext4 without a journal every allocation
// scans past the inodes deleted in the last seconds, so churn costs
// grow with the run). A work directory keeps its inputs/ and the input
// files in it for the next stage that has inputs: store.PlaceInput
// re-hashes a kept file and keeps it if it holds the wanted input, or
// copies the input over it; files the next stage does not want are
// removed. (The exec kind kills what a command leaves running, so nothing
// writes into a directory after its stage.) What is left over when Run
// ends is removed.

// maxFree bounds how many clean directories of each sort Run keeps.
func (e *Executor) maxFree() int { return e.Opts.Parallelism + 2 }

// scratchDir is a clean work directory.
type scratchDir struct {
	path   string
	inputs bool     // it holds a writable inputs/
	files  []string // the regular files left in inputs/
}

// trashItem is what a finished attempt hands back.
type trashItem struct {
	work, tmp string
}

// workDir returns an empty work directory for sp: a reused one if there is
// one. It holds inputs/ (writable) exactly when sp has inputs, and in it
// at most files that sp's inputs will be placed over.
func (e *Executor) workDir(sp *planner.StagePlan) (string, error) {
	e.scratchMu.Lock()
	var d scratchDir
	ok := len(e.freeWork) > 0
	if ok {
		d = e.freeWork[len(e.freeWork)-1]
		e.freeWork = e.freeWork[:len(e.freeWork)-1]
	}
	e.scratchMu.Unlock()
	if !ok {
		p, err := e.Store.NewWorkDir(sp.Address)
		if err != nil {
			return "", err
		}
		d = scratchDir{path: p}
	}
	in := filepath.Join(d.path, "inputs")
	switch want := len(sp.Inputs) > 0; {
	case want && !d.inputs:
		if err := os.Mkdir(in, 0o755); err != nil {
			e.trash <- trashItem{work: d.path}
			return "", err
		}
	case !want && d.inputs:
		for _, f := range d.files {
			os.Remove(filepath.Join(in, f))
		}
		if err := os.Remove(in); err != nil {
			e.trash <- trashItem{work: d.path}
			return "", err
		}
	case want && len(d.files) > 0:
		wanted := make(map[string]bool, len(sp.Inputs))
		for _, i := range sp.Inputs {
			wanted[strings.TrimPrefix(i.Name, "inputs.")] = true
		}
		for _, f := range d.files {
			if !wanted[f] {
				if err := os.Remove(filepath.Join(in, f)); err != nil {
					e.trash <- trashItem{work: d.path}
					return "", err
				}
			}
		}
	}
	return d.path, nil
}

// tempDir returns an empty private directory for a stage's temporary
// files, next to its work directory.
func (e *Executor) tempDir(work string) (string, error) {
	e.scratchMu.Lock()
	n := len(e.freeTmp)
	if n > 0 {
		d := e.freeTmp[n-1]
		e.freeTmp = e.freeTmp[:n-1]
		e.scratchMu.Unlock()
		return d, nil
	}
	e.scratchMu.Unlock()
	return os.MkdirTemp(filepath.Dir(work), "tmp-")
}

// recycle empties the directories of a finished attempt and keeps them for
// reuse, or removes them. It runs on the trash goroutine.
func (e *Executor) recycle(it trashItem) {
	if it.work != "" {
		kept, files, err := e.Store.EmptyWorkDir(it.work, "inputs")
		e.scratchMu.Lock()
		if err == nil && len(e.freeWork) < e.maxFree() {
			e.freeWork = append(e.freeWork, scratchDir{path: it.work, inputs: kept, files: files})
			it.work = ""
		}
		e.scratchMu.Unlock()
		if it.work != "" {
			e.Store.RemoveWorkDir(it.work)
		}
	}
	if it.tmp != "" {
		_, _, err := e.Store.EmptyWorkDir(it.tmp, "")
		e.scratchMu.Lock()
		if err == nil && len(e.freeTmp) < e.maxFree() {
			e.freeTmp = append(e.freeTmp, it.tmp)
			it.tmp = ""
		}
		e.scratchMu.Unlock()
		if it.tmp != "" {
			e.Store.RemoveWorkDir(it.tmp)
		}
	}
}

// dropScratch removes the clean directories kept for reuse.
func (e *Executor) dropScratch() {
	e.scratchMu.Lock()
	work, tmp := e.freeWork, e.freeTmp
	e.freeWork, e.freeTmp = nil, nil
	e.scratchMu.Unlock()
	for _, d := range work {
		e.Store.RemoveWorkDir(d.path)
	}
	for _, d := range tmp {
		e.Store.RemoveWorkDir(d)
	}
}

// A stage's action entry is written (store.PutAction: its objects made
// durable, then the entry, fsynced and renamed) on a goroutine of its own,
// so that the stages that depend on it can set up meanwhile; each of them
// waits for the entries of its dependencies before its command starts
// (waitCommits). So a stage that has started never has a dependency
// whose result is not committed, and Run waits for every commit before
// Sync. A commit that fails is reported as a notice: the stage's outputs
// are in the store and serve this run, but it will run again next time.
type pendingCommit struct {
	done chan struct{}
}

// commitAsync writes entry (the result of sp) and then removes stateDir.
func (e *Executor) commitAsync(sp *planner.StagePlan, entry *store.ActionEntry, stateDir string) {
	c := &pendingCommit{done: make(chan struct{})}
	e.commitMu.Lock()
	e.commits[sp.Key] = c
	e.commitMu.Unlock()
	e.commitWG.Add(1)
	go func() {
		defer e.commitWG.Done()
		defer close(c.done)
		if err := e.Store.PutAction(entry); err != nil {
			e.emit(Event{Kind: EventNotice, Address: sp.Address,
				Message: "could not record the result in the action cache (" + err.Error() + "); its outputs serve this run, but it will run again next time"})
			return
		}
		_ = os.RemoveAll(stateDir) // checkpoints are not needed once the result is committed
	}()
}

// waitCommits waits until the entries of sp's dependencies that this Run
// produced have been written.
func (e *Executor) waitCommits(plan *planner.Plan, sp *planner.StagePlan) {
	for _, addr := range sp.DependsOn {
		up := e.stage(plan, addr)
		if up == nil {
			continue
		}
		e.commitMu.Lock()
		c := e.commits[up.Key]
		e.commitMu.Unlock()
		if c != nil {
			<-c.done
		}
	}
}

// stage returns the stage of plan at addr.
func (e *Executor) stage(plan *planner.Plan, addr string) *planner.StagePlan {
	if s, ok := e.stageOf[addr]; ok {
		return s
	}
	return plan.Stage(addr)
}
