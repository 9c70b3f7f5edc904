package exec

import "syscall"

// sysProcAttr puts the command in its own process group (so signals reach
// its children) and has the kernel kill it if llmlab dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
