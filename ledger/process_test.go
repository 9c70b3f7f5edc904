package ledger

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHelperProcess is not a test: the tests below start the test binary
// again to act as another llmlab process on the same ledger file.
func TestHelperProcess(t *testing.T) {
	mode, path := os.Getenv("LEDGER_HELPER"), os.Getenv("LEDGER_PATH")
	if mode == "" {
		t.Skip("helper process only")
	}
	l, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	switch mode {
	case "write":
		for r := 0; r < 20; r++ {
			id, err := l.BeginRun(pipeA, "d", "apply", time.Now())
			if err == nil {
				err = l.RecordMetrics(id, "pretrain.p", []MetricPoint{{Name: "loss", Step: 0, Value: 1}, {Name: "loss", Step: 1, Value: 0.5}})
			}
			if err == nil {
				err = l.RecordStage(StageExecution{RunID: id, Address: "pretrain.p", Key: "k" + strconv.Itoa(r), Action: ActionRun, Status: StageSucceeded})
			}
			if err == nil {
				err = l.FinishRun(id, RunSucceeded, time.Now())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	case "hang":
		id, err := l.BeginRun(pipeA, "d", "apply", time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(id)
		time.Sleep(time.Minute) // until killed
		os.Exit(3)
	}
}

func helper(mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "LEDGER_HELPER="+mode, "LEDGER_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestOtherProcessWriter reads while another process writes the same file.
func TestOtherProcessWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	reader, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	cmd := helper("write", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reads := 0
	for done := false; !done; {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("writer process: %v", err)
			}
			done = true
		default:
		}
		reads++
		if _, _, err := reader.LastRun(pipeA); err != nil && err != ErrNoRuns {
			t.Fatalf("LastRun while another process writes: %v", err)
		}
		if h, err := reader.MetricHistory(pipeA, "pretrain.p", "loss"); err != nil || len(h) != 0 && len(h) != 2 {
			t.Fatalf("MetricHistory while another process writes: %v, %v", h, err)
		}
	}
	runs, err := reader.Runs(pipeA)
	if err != nil || len(runs) != 20 {
		t.Fatalf("%d runs (%v), want 20", len(runs), err)
	}
	for _, r := range runs {
		if r.Status != RunSucceeded || r.PID != cmd.Process.Pid {
			t.Errorf("run %d: %s by pid %d, want succeeded by %d", r.ID, r.Status, r.PID, cmd.Process.Pid)
		}
	}
	t.Logf("%d read rounds", reads)
}

// TestKilledWriter: a process killed mid-run leaves its run "running" in
// the file; the run reads as interrupted and MarkStaleRuns records it so.
func TestKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := helper("hang", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper printed no run ID: %v", err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	if r, err := l.Run(id); err != nil || r.Status != RunRunning {
		t.Errorf("while the writer lives: %+v, %v; want running", r, err)
	}
	if ids, err := l.MarkStaleRuns(); err != nil || len(ids) != 0 {
		t.Errorf("MarkStaleRuns while the writer lives = %v, %v; want none", ids, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if r, err := l.Run(id); err != nil || r.Status != RunInterrupted {
		t.Errorf("after the writer was killed: %+v, %v; want interrupted", r, err)
	}
	if ids, err := l.MarkStaleRuns(); err != nil || len(ids) != 1 || ids[0] != id {
		t.Errorf("MarkStaleRuns = %v, %v; want [%d]", ids, err, id)
	}
}
