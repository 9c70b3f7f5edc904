//go:build linux

package ledger

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procIdentity returns a string that names the process pid uniquely across
// pid reuse and reboots: the boot id and the process's start time in clock
// ticks since boot. It is "" if the process does not exist or /proc is
// unreadable.
func procIdentity(pid int) string {
	if pid <= 0 {
		return ""
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	start, ok := statStartTime(stat)
	if !ok {
		return ""
	}
	return strings.TrimSpace(string(boot)) + ":" + start
}

// statStartTime extracts field 22 (starttime) of /proc/<pid>/stat. The
// command name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted after the last ')'.
func statStartTime(stat []byte) (string, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3 (state)
	if len(f) < 20 {
		return "", false
	}
	return f[19], true
}

// processAlive reports whether the process recorded as pid, with identity
// ident (from procIdentity at the time; may be ""), still runs.
func processAlive(pid int, ident string) bool {
	if ident != "" {
		if _, err := os.Stat("/proc/self/stat"); err == nil {
			return procIdentity(pid) == ident
		}
	}
	// EPERM means the process exists but belongs to someone else.
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
