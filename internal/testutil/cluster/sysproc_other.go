//go:build !linux

package cluster

import "syscall"

// sysProcAttr returns nil: only Linux can kill a child when its parent dies.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// stopped reports true: without /proc, Pause cannot tell when the process
// has stopped and returns as soon as SIGSTOP is sent.
func stopped(pid int) (bool, error) { return true, nil }
