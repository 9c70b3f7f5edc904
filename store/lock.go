package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Owner describes who holds the store lock; it is kept as JSON in the lock
// file so that a waiting process can say whom it waits for.
type Owner struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Command string    `json:"command,omitempty"`
}

// CurrentOwner describes this process, with command as given.
func CurrentOwner(command string) Owner {
	host, _ := os.Hostname()
	return Owner{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second), Command: command}
}

func (o Owner) String() string {
	if o.PID == 0 {
		return "another process (owner not recorded yet)"
	}
	s := fmt.Sprintf("pid %d on host %s since %s", o.PID, o.Host, o.Started.Format(time.RFC3339))
	if o.Command != "" {
		s += fmt.Sprintf(" (%s)", o.Command)
	}
	return s
}

// LockedError is returned when the store lock could not be taken in time.
type LockedError struct {
	Root   string
	Holder Owner
	Waited time.Duration
	Cause  error // context error, if the wait was cancelled
}

func (e *LockedError) Error() string {
	how := fmt.Sprintf("gave up after %s", e.Waited.Round(time.Millisecond))
	if e.Cause != nil {
		how = fmt.Sprintf("stopped waiting after %s: %v", e.Waited.Round(time.Millisecond), e.Cause)
	}
	return fmt.Sprintf("store %s is locked by %s; %s; wait for that run to finish or stop it (the lock is released as soon as the process exits)", e.Root, e.Holder, how)
}

func (e *LockedError) Unwrap() error { return e.Cause }

// Lock is a held store lock.
type Lock struct {
	s     *Store
	f     *os.File
	Owner Owner
	// Stale is the previous owner if it exited without unlocking (killed
	// or crashed): the kernel released its flock, its record remained.
	Stale *Owner
}

// lockPoll is how often a waiting Lock retries.
const lockPoll = 50 * time.Millisecond

// Lock takes the store's exclusive lock, an flock(2) on root/lock, so the
// kernel releases it when the holder dies, even by SIGKILL. While another
// process (or another Lock in this one) holds it, Lock calls waiting with
// the holder each time the holder changes, and retries until timeout or
// ctx ends, then returns a *LockedError naming the holder. timeout <= 0
// tries once.
func (s *Store) Lock(ctx context.Context, o Owner, timeout time.Duration, waiting func(holder Owner)) (*Lock, error) {
	p := filepath.Join(s.root, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store lock: %w", err)
	}
	start := time.Now()
	var reported *Owner
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("store lock %s: %w", p, err)
		}
		holder, _ := readOwner(f)
		if holder.PID == 0 && reported == nil {
			time.Sleep(5 * time.Millisecond) // the holder may be writing its record
			holder, _ = readOwner(f)
		}
		if waiting != nil && (reported == nil || *reported != holder) {
			waiting(holder)
		}
		reported = &holder
		waited := time.Since(start)
		if waited >= timeout {
			f.Close()
			return nil, &LockedError{Root: s.root, Holder: holder, Waited: waited}
		}
		t := time.NewTimer(min(lockPoll, timeout-waited))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, &LockedError{Root: s.root, Holder: holder, Waited: time.Since(start), Cause: ctx.Err()}
		case <-t.C:
		}
	}
	l := &Lock{s: s, f: f, Owner: o}
	if prev, ok := readOwner(f); ok {
		l.Stale = &prev
	}
	b, _ := json.Marshal(o)
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
	}
	if err != nil {
		l.release()
		return nil, fmt.Errorf("store lock %s: write owner: %w", p, err)
	}
	s.locksHeld.Add(1)
	return l, nil
}

func readOwner(f *os.File) (Owner, bool) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	var o Owner
	if err != nil || len(b) == 0 || json.Unmarshal(b, &o) != nil || o.PID == 0 {
		return Owner{}, false
	}
	return o, true
}

func (l *Lock) release() error {
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Unlock clears the owner record and releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.release()
	l.f = nil
	l.s.locksHeld.Add(-1)
	return err
}
