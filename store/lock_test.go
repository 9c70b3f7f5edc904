package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHelperProcess is not a test: the tests below re-execute the test
// binary to run it as a separate process that they then kill with SIGKILL.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("LLMLAB_STORE_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	s, err := Open(os.Getenv("LLMLAB_STORE_ROOT"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	switch mode {
	case "lock":
		if _, err := s.Lock(context.Background(), CurrentOwner("llmlab apply helper"), time.Second, nil); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
	case "put":
		size, _ := strconv.Atoi(os.Getenv("LLMLAB_STORE_SIZE"))
		for i := uint64(0); ; i++ {
			work, err := s.NewWorkDir("crash")
			if err != nil {
				panic(err)
			}
			big := filepath.Join(work, "out", "model.bin")
			os.MkdirAll(filepath.Dir(big), 0o755)
			writeSynced(big, randomBytes(i, size))
			writeSynced(filepath.Join(work, "out", "config.json"), []byte(fmt.Sprint(i)))
			in := filepath.Join(work, "input.bin")
			writeSynced(in, randomBytes(i+1000, size/4))
			if i == 0 {
				fmt.Println("putting")
			}
			a, err := s.PutArtifact(filepath.Join(work, "out"))
			if err != nil {
				panic(err)
			}
			b, err := s.AddPath(in)
			if err != nil {
				panic(err)
			}
			if err := s.PutAction(&ActionEntry{Key: ActionKey(DigestOf([]byte(fmt.Sprint(i)))), Address: "stage.crash",
				Outputs: map[string]Artifact{"model": a, "input": b}}); err != nil {
				panic(err)
			}
			s.RemoveWorkDir(work)
		}
	}
}

// writeSynced writes a file and flushes it, as a stage's output would be
// long before it is stored; this keeps the kill from waiting on writeback.
func writeSynced(p string, b []byte) {
	f, err := os.Create(p)
	if err != nil {
		panic(err)
	}
	f.Write(b)
	f.Sync()
	f.Close()
}

// startHelper runs TestHelperProcess in mode and waits until it prints want.
func startHelper(t *testing.T, root, mode, want string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), append(env, "LLMLAB_STORE_HELPER="+mode, "LLMLAB_STORE_ROOT="+root)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("helper said %q (%v), want %q", line, err, want)
	}
	go io.Copy(io.Discard, out)
	return cmd
}

func TestLockSameProcess(t *testing.T) {
	s := openTemp(t)
	o1 := Owner{PID: 123, Host: "x", Started: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC), Command: "llmlab apply one"}
	l1, err := s.Lock(context.Background(), o1, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []Owner
	_, err = s.Lock(context.Background(), CurrentOwner("two"), 120*time.Millisecond, func(h Owner) { seen = append(seen, h) })
	var le *LockedError
	if !errors.As(err, &le) || le.Holder != o1 {
		t.Fatalf("second Lock: %v", err)
	}
	if len(seen) != 1 || seen[0] != o1 {
		t.Fatalf("waiting called with %v", seen)
	}
	mustContain(t, err.Error(), "store "+s.Root()+" is locked by pid 123 on host x since 2026-05-06T07:08:09Z (llmlab apply one); gave up after ", "the lock is released as soon as the process exits")
	if le.Waited < 120*time.Millisecond {
		t.Fatalf("gave up after %v", le.Waited)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = s.Lock(ctx, CurrentOwner("three"), time.Minute, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock: %v", err)
	}
	mustContain(t, err.Error(), "pid 123", "stopped waiting after", "context canceled")

	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := s.Lock(context.Background(), CurrentOwner("two"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Stale != nil {
		t.Fatalf("clean unlock reported as stale: %+v", l2.Stale)
	}
	l2.Unlock()
}

func TestLockOfKilledProcessIsReleased(t *testing.T) {
	root := filepath.Join(t.TempDir(), ".llmlab")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startHelper(t, root, "lock", "locked")
	pid := cmd.Process.Pid
	_, err = s.Lock(context.Background(), CurrentOwner("test"), 50*time.Millisecond, nil)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != pid {
		t.Fatalf("Lock while helper holds it: %v", err)
	}
	mustContain(t, err.Error(), fmt.Sprintf("locked by pid %d on host ", pid), "(llmlab apply helper)")

	cmd.Process.Kill() // SIGKILL: no chance to unlock
	cmd.Wait()
	l, err := s.Lock(context.Background(), CurrentOwner("test"), 2*time.Second, nil)
	if err != nil {
		t.Fatalf("lock of a killed process not released: %v", err)
	}
	defer l.Unlock()
	if l.Stale == nil || l.Stale.PID != pid || l.Stale.Command != "llmlab apply helper" {
		t.Fatalf("stale owner %+v, want pid %d", l.Stale, pid)
	}
}

func TestKillDuringPutLeavesConsistentStore(t *testing.T) {
	size := 32 << 20
	delays := []time.Duration{0, 15 * time.Millisecond, 40 * time.Millisecond, 90 * time.Millisecond, 200 * time.Millisecond}
	if testing.Short() {
		size = 8 << 20
		delays = delays[:3]
	}
	root := filepath.Join(t.TempDir(), ".llmlab")
	for _, d := range delays {
		cmd := startHelper(t, root, "put", "putting", fmt.Sprintf("LLMLAB_STORE_SIZE=%d", size))
		time.Sleep(d)
		cmd.Process.Kill()
		cmd.Wait()

		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Verify()
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("after kill -9 at +%v: %+v", d, r)
		}
		l, err := s.Actions()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l {
			for name, a := range e.Outputs {
				if err := s.VerifyArtifact(a); err != nil {
					t.Fatalf("after kill at +%v: action %s output %s: %v", d, e.Key.Short(), name, err)
				}
			}
		}
		t.Logf("kill at +%v: %d objects, %d actions, store clean", d, r.Objects, r.Actions)
	}
}
