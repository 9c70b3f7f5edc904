//go:build !linux

package exec

import "syscall"

// sysProcAttr puts the command in its own process group so that signals
// reach its children.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
