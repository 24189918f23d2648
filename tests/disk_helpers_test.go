package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// tmpfsDisk is a small tmpfs mounted on a node's data directory, which a
// test fills up to below the node's free-space floor.
type tmpfsDisk struct {
	node *cluster.Node
	dir  string
}

// mountTmpfs mounts a tmpfs of size bytes on n's data directory (before n
// starts) and unmounts it when the test ends. It needs root.
func mountTmpfs(t *testing.T, n *cluster.Node, size int64) (tmpfsDisk, error) {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", n.DataDir).CombinedOutput()
	if err != nil {
		return tmpfsDisk{}, fmt.Errorf("mount tmpfs: %v %s", err, bytes.TrimSpace(out))
	}
	// Lazily: the node may still hold files there when this runs.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", n.DataDir).Run() })
	return tmpfsDisk{node: n, dir: n.DataDir}, nil
}

// fill takes the free space of d down to leave bytes with a file, and
// returns what removes it.
func (d tmpfsDisk) fill(leave int64) (undo func(), err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return nil, err
	}
	n := int64(st.Bavail)*st.Bsize - leave
	path := filepath.Join(d.dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if n > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
			os.Remove(path)
			return nil, err
		}
	}
	return func() { _ = os.Remove(path) }, nil
}
