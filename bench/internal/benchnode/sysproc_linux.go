package benchnode

import "syscall"

// sysProcAttr asks Linux to SIGKILL a node if this benchmark dies without
// stopping it (a panic, or kill -9 of the benchmark).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
