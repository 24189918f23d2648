package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// sysProcAttr asks Linux to SIGKILL a node when the test binary dies without
// running its cleanups (a panic, or go test -timeout). The signal is tied to
// the OS thread that started the node, which lives as long as the test binary
// unless a goroutine exits while locked to it with runtime.LockOSThread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// stopped reports whether every thread of process pid is stopped by a signal
// (state T in /proc/PID/task/TID/stat). SIGSTOP returns before the threads
// stop, so Pause polls this.
func stopped(pid int) (bool, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("cluster: threads of pid %d: not found", pid)
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, fmt.Errorf("cluster: thread state: %w", err)
		}
		// The state follows the command name, which is in parentheses and
		// may itself hold ") ".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			return false, fmt.Errorf("cluster: thread state: cannot parse %s: %q", path, s)
		}
		if s[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}
