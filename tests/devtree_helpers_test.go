package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// devTree is an `argent dev` process on free ports: a root, a replica and a
// data center (a second replica, a relay, four proxies), with the demo data.
type devTree struct {
	Bin     string
	Root    string // host:port of each node
	Replica string
	Proxy   string    // the first proxy
	DC      [5]string // the DC's second replica, its relay and proxies 2-4
	RESP    string    // the first proxy's Redis-protocol address
	Dir     string    // a scratch directory, the commands' working directory

	mu  sync.Mutex
	out bytes.Buffer // the process's output
}

// defaultAddrs are the addresses `argent dev` listens on by default, which
// the docs' examples name; Replace maps them onto the tree's.
var defaultAddrs = []string{
	"127.0.0.1:7400", "127.0.0.1:7401", "127.0.0.1:7402",
	"127.0.0.1:7410", "127.0.0.1:7411", "127.0.0.1:7412", "127.0.0.1:7413", "127.0.0.1:7414",
}

// startDevTree starts `argent dev` on free loopback ports with a fresh data
// directory and waits until it says it is running (the demo data loaded and
// every node caught up). The process gets SIGINT at t.Cleanup, and SIGKILL
// if it has not stopped 10 s later.
func startDevTree(t *testing.T) *devTree {
	t.Helper()
	d := &devTree{
		Bin:     cluster.BuildBinary(t),
		Root:    cluster.FreeAddr(t),
		Replica: cluster.FreeAddr(t),
		Proxy:   cluster.FreeAddr(t),
		RESP:    cluster.FreeAddr(t),
		Dir:     t.TempDir(),
	}
	base := freeRun(t, len(d.DC))
	for i := range d.DC {
		d.DC[i] = fmt.Sprintf("127.0.0.1:%d", base+i)
	}
	cmd := exec.Command(d.Bin, "dev", "--data", filepath.Join(d.Dir, "argent-dev"),
		"--root-listen", d.Root, "--replica-listen", d.Replica, "--proxy-listen", d.Proxy,
		"--dc-listen", d.DC[0], "--resp-listen", d.RESP)
	cmd.Dir = d.Dir
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start argent dev: %v", err)
	}
	pw.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("argent dev output:\n%s", d.output())
		}
	})
	ready := make(chan struct{})
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			d.mu.Lock()
			d.out.Write(sc.Bytes())
			d.out.WriteByte('\n')
			d.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("argent dev exited before it was ready: %v\n%s", err, d.output())
	case <-time.After(90 * time.Second):
		t.Fatalf("argent dev not ready after 90 s:\n%s", d.output())
	}
	return d
}

func (d *devTree) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// Replace rewrites a line of the docs for this tree: the default addresses
// and the RESP port become the tree's, and `go run ./cmd/argent` and
// `bin/argent` the binary under test.
func (d *devTree) Replace(s string) string {
	addrs := append([]string{d.Root, d.Replica, d.Proxy}, d.DC[:]...)
	pairs := []string{"go run ./cmd/argent", d.Bin, "bin/argent", d.Bin}
	for i, a := range defaultAddrs {
		pairs = append(pairs, a, addrs[i])
	}
	_, respPort, _ := net.SplitHostPort(d.RESP)
	pairs = append(pairs, "-p 7379", "-p "+respPort, "127.0.0.1:7379", d.RESP)
	return strings.NewReplacer(pairs...).Replace(s)
}

// freeRun returns a port p such that p..p+n-1 on 127.0.0.1 were free a
// moment ago.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		p, _ := strconv.Atoi(strings.TrimPrefix(cluster.FreeAddr(t), "127.0.0.1:"))
		ok := p+n <= 65536
		for i := 1; i < n && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// runShell runs line with sh -c in dir, with ARGENT_SERVER set to server,
// for at most timeout, and returns its combined output and exit error.
func runShell(ctx context.Context, dir, server, line string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ARGENT_SERVER="+server)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("did not finish in %s: %w", timeout, ctx.Err())
	}
	return string(out), err
}
