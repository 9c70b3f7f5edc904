//go:build unix && !linux

package ledger

import (
	"errors"
	"syscall"
)

func procIdentity(pid int) string { return "" }

// processAlive reports whether a process with that pid exists. Without
// /proc the pid alone is checked, so a reused pid keeps a run alive.
func processAlive(pid int, _ string) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
