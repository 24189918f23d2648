// Package cluster starts real argent processes for multi-process tests: a
// root, replicas that follow it, and helpers to kill, pause and restart them
// and to poll their /v1/status.
//
//	func TestMain(m *testing.M) { cluster.Main(m) } // removes the built binary
//
//	func TestReplica_Follows(t *testing.T) {
//		root := cluster.StartRoot(t)
//		replica := cluster.StartReplica(t, []string{root.Addr})
//		// ... PUT to root.URL() ...
//		cluster.WaitApplied(t, replica, 1, 10*time.Second)
//		replica.Restart()
//		replica.WaitReady(10 * time.Second)
//	}
//
// The binary is built once per test binary from ./cmd/argent, or taken from
// $ARGENT_BIN when that is set. Processes are killed at t.Cleanup, and a failed
// test logs the tail of each node's output. Methods that fail call t.Fatal, so
// call them from the test's goroutine.
package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pollInterval is how often WaitFor and the Wait methods check again.
const pollInterval = 10 * time.Millisecond

// argentPkg is the package BuildBinary builds.
const argentPkg = "github.com/argent-kv/argent/cmd/argent"

var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary; removed by Main
	bin  string
	err  error
}

// BuildBinary returns the path of an argent binary. If $ARGENT_BIN is set it
// returns that; otherwise it builds ./cmd/argent of the module holding the
// working directory, once per test binary, into a temporary directory that
// Main removes. It fails t if the build fails.
func BuildBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("ARGENT_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("cluster: ARGENT_BIN: %v", err)
		}
		return bin
	}
	build.once.Do(func() {
		build.bin, build.err = buildArgent()
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func buildArgent() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "argent-test-bin-")
	if err != nil {
		return "", fmt.Errorf("cluster: build argent: %w", err)
	}
	build.dir = dir
	bin := filepath.Join(dir, "argent")
	cmd := exec.Command("go", "build", "-o", bin, argentPkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cluster: go build %s: %w\n%s", argentPkg, err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory to the first directory
// holding a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cluster: find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cluster: find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Main runs the tests and exits; use it as the body of TestMain in a package
// that calls BuildBinary, so the binary it built is removed afterwards.
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago:
// it listens on port 0 and closes the listener. Another process may take the
// port before it is used, which is rare enough for tests.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cluster: free address: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("cluster: free address: %v", err)
	}
	return addr
}

// WaitFor calls f every 10 ms until it returns nil, and fails t with f's last
// error if that has not happened within timeout. f is always called at least
// once, and should itself return promptly.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster: condition not met after %v: %v", timeout, err)
			return
		}
		time.Sleep(pollInterval)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if last := len(lines) - 1; lines[last] == "" {
		lines = lines[:last]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
