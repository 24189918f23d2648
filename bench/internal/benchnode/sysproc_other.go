//go:build !linux

package benchnode

import "syscall"

// sysProcAttr is nil here: only Linux can kill a node when its benchmark
// dies.
func sysProcAttr() *syscall.SysProcAttr { return nil }
