package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultReadyTimeout is how long StartRoot and StartReplica wait for
	// /v1/status to answer 200.
	DefaultReadyTimeout = 15 * time.Second
	// DefaultStopTimeout is how long Stop waits after SIGTERM before it
	// sends SIGKILL.
	DefaultStopTimeout = 10 * time.Second

	killTimeout   = 10 * time.Second // bound on a process exiting after SIGKILL
	statusTimeout = 2 * time.Second  // bound on one GET /v1/status
	tailLines     = 100              // log lines shown when a test fails
)

// nodeSeq numbers nodes across the test binary, for names and log files.
var nodeSeq atomic.Int64

// Node is one argent process: its command line, data directory, listen address
// and log file. The exported fields are set by NewNode and may be changed
// before Start (for example Args, to add --peers once every address is
// known). Methods that fail call t.Fatal; call them from the test goroutine.
type Node struct {
	Name        string        // "root-1", "replica-2", ...: unique in the test binary
	Role        string        // the subcommand: root, replica, proxy or relay
	Bin         string        // path of the argent binary
	Args        []string      // arguments after the binary, starting with Role
	DataDir     string        // --data; empty for relays, which keep nothing
	Addr        string        // --listen, "127.0.0.1:PORT"
	LogPath     string        // stdout and stderr of every start, appended
	Env         []string      // extra "KEY=value" entries added to the test's environment
	StopTimeout time.Duration // how long Stop waits after SIGTERM; default DefaultStopTimeout

	t      testing.TB
	client *http.Client

	mu struct {
		sync.Mutex
		proc *process // last started process; nil before the first Start
	}
}

// process is one run of a node.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // result of cmd.Wait; read only after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// NewNode prepares, but does not start, a node that runs
//
//	argent ROLE --data DIR --listen ADDR ARGS...
//
// with a fresh data directory and a free loopback address. Relays get no
// --data. The process is killed at t.Cleanup, and if the test failed the last
// 100 lines of its log are written with t.Log.
func NewNode(t testing.TB, role string, args ...string) *Node {
	t.Helper()
	bin := BuildBinary(t)
	dir := t.TempDir() // its removal is registered before, so runs after, the kill below
	n := &Node{
		Name:        fmt.Sprintf("%s-%d", role, nodeSeq.Add(1)),
		Role:        role,
		Bin:         bin,
		Addr:        FreeAddr(t),
		StopTimeout: DefaultStopTimeout,
		t:           t,
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: statusTimeout}).DialContext,
			MaxIdleConnsPerHost: 2,
		}},
	}
	n.LogPath = filepath.Join(dir, n.Name+".log")
	n.Args = []string{role}
	if role != "relay" {
		n.DataDir = filepath.Join(dir, "data")
		if err := os.Mkdir(n.DataDir, 0o755); err != nil {
			t.Fatalf("cluster: %s: %v", n.Name, err)
		}
		n.Args = append(n.Args, "--data", n.DataDir)
	}
	n.Args = append(n.Args, "--listen", n.Addr)
	n.Args = append(n.Args, args...)
	t.Cleanup(n.cleanup)
	return n
}

// StartRoot starts `argent root --data DIR --listen ADDR extraArgs...` and
// waits up to DefaultReadyTimeout for it to answer /v1/status.
func StartRoot(t testing.TB, extraArgs ...string) *Node {
	t.Helper()
	n := NewNode(t, "root", extraArgs...)
	n.Start()
	n.WaitReady(DefaultReadyTimeout)
	return n
}

// StartReplica starts `argent replica --data DIR --listen ADDR --upstream
// A,B extraArgs...` and waits up to DefaultReadyTimeout for it to answer
// /v1/status. It does not wait for the replica to catch up; see WaitApplied.
func StartReplica(t testing.TB, upstreams []string, extraArgs ...string) *Node {
	t.Helper()
	args := append([]string{"--upstream", strings.Join(upstreams, ",")}, extraArgs...)
	n := NewNode(t, "replica", args...)
	n.Start()
	n.WaitReady(DefaultReadyTimeout)
	return n
}

// URL returns "http://ADDR", the base of the node's HTTP API.
func (n *Node) URL() string { return "http://" + n.Addr }

// Start starts the process with Args, appending its output to LogPath. It
// does not wait for the node to be ready; see WaitReady. It fails the test if
// the node is already running or the process cannot be started.
func (n *Node) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.mu.proc; p != nil && !p.exited() {
		n.t.Fatalf("cluster: %s: start: already running as pid %d", n.Name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatalf("cluster: %s: start: %v", n.Name, err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== cluster: %s: start %s %s\n",
		time.Now().Format(time.RFC3339Nano), n.Bin, strings.Join(n.Args, " "))
	cmd := exec.Command(n.Bin, n.Args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), n.Env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("cluster: %s: start: %v", n.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.mu.proc = p
}

// Kill sends SIGKILL and waits for the process to exit. It does nothing if
// the node is not running.
func (n *Node) Kill() {
	n.t.Helper()
	if err := n.kill(n.current()); err != nil {
		n.t.Fatal(err)
	}
}

// Stop sends SIGTERM (and SIGCONT, in case the node is paused), waits up to
// StopTimeout for the process to exit, then sends SIGKILL. It returns nil if
// the process exited with status 0, the *exec.ExitError if it exited
// otherwise, or an error saying it had to be killed. On a node that is not
// running it returns how the last run ended, or nil if there was none.
func (n *Node) Stop() error {
	n.t.Helper()
	p := n.current()
	if p == nil {
		return nil
	}
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	if waitExit(p, n.StopTimeout) {
		return p.err
	}
	if err := n.kill(p); err != nil {
		n.t.Fatal(err)
	}
	return fmt.Errorf("cluster: %s: pid %d did not exit within %v of SIGTERM; killed",
		n.Name, p.cmd.Process.Pid, n.StopTimeout)
}

// Pause stops the process with SIGSTOP: it keeps its sockets and memory but
// runs no code, like a node stuck in a long GC or a frozen VM. It returns once
// every thread of the process has stopped (on Linux; elsewhere once the
// signal is sent).
func (n *Node) Pause() {
	n.t.Helper()
	n.signal("pause", syscall.SIGSTOP)
	p := n.current()
	deadline := time.Now().Add(killTimeout)
	for {
		ok, err := stopped(p.cmd.Process.Pid)
		if ok {
			return
		}
		if p.exited() {
			n.t.Fatalf("cluster: %s: pause: exited: %v", n.Name, p.err)
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("cluster: %s: pause: pid %d not stopped after %v: %v", n.Name, p.cmd.Process.Pid, killTimeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// Reload sends SIGHUP, which makes a node read its TLS files again.
func (n *Node) Reload() { n.t.Helper(); n.signal("reload", syscall.SIGHUP) }

// SetHTTPClient makes the helpers' own requests to the node (WaitReady,
// Status) with hc: for a node that serves TLS, a client that speaks https
// to the node's http:// URL (see tlsconf.Config.HTTPClient).
func (n *Node) SetHTTPClient(hc *http.Client) { n.client = hc }

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume() { n.t.Helper(); n.signal("resume", syscall.SIGCONT) }

// Restart kills the process with SIGKILL and starts it again with the same
// Args, data directory and address. Like Start, it does not wait for ready.
func (n *Node) Restart() {
	n.t.Helper()
	n.Kill()
	n.Start()
}

// WaitExit waits up to timeout for the process to exit by itself and
// returns how it ended: nil for status 0, else the *exec.ExitError. It fails
// the test if the node was never started or is still running at timeout.
func (n *Node) WaitExit(timeout time.Duration) error {
	n.t.Helper()
	p := n.current()
	if p == nil {
		n.t.Fatalf("cluster: %s: wait exit: never started", n.Name)
	}
	if !waitExit(p, timeout) {
		n.t.Fatalf("cluster: %s: pid %d still running after %v", n.Name, p.cmd.Process.Pid, timeout)
	}
	return p.err
}

// PID returns the process ID of the last run, or 0 before the first Start.
func (n *Node) PID() int {
	if p := n.current(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Running reports whether the node was started and has not exited. A paused
// node is running.
func (n *Node) Running() bool {
	p := n.current()
	return p != nil && !p.exited()
}

// WaitReady polls GET /v1/status until it answers 200 and returns that
// status. It fails the test if the process exits first or timeout passes.
func (n *Node) WaitReady(timeout time.Duration) Status {
	n.t.Helper()
	p := n.current()
	if p == nil {
		n.t.Fatalf("cluster: %s: wait ready: never started", n.Name)
	}
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			n.t.Fatalf("cluster: %s: exited before it was ready: %v", n.Name, p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(),
			min(time.Until(deadline), statusTimeout))
		st, err := n.StatusContext(ctx)
		cancel()
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("cluster: %s: not ready after %v: %v", n.Name, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// WaitFirstState waits until the node has reached its first state: a read
// answers something other than 503 not_ready (a fresh replica or proxy
// answers that until it has synced with an upstream). It fails the test
// after timeout.
func (n *Node) WaitFirstState(timeout time.Duration) {
	n.t.Helper()
	WaitFor(n.t, timeout, func() error {
		resp, err := n.client.Get(n.URL() + "/v1/kv/argent-test-first-state")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return fmt.Errorf("%s: not at its first state yet: %s", n.Name, body)
		}
		return nil
	})
}

// Status is the answer of GET /v1/status (docs/CONTRACT.md section 4).
type Status struct {
	Role         string  `json:"role"`
	NodeID       string  `json:"node_id"`
	DatasetID    string  `json:"dataset_id"`
	AppliedIndex uint64  `json:"applied_index"`
	RootIndex    uint64  `json:"root_index"`
	LagSeconds   float64 `json:"lag_seconds"`
	Upstream     string  `json:"upstream"`
	Children     []any   `json:"children"`
	DiskFull     bool    `json:"disk_full"`
	// Group is a root group member's view of its group; nil for other
	// nodes.
	Group *GroupStatus `json:"group"`

	// Raw holds every field of the answer, including ones not named above.
	Raw map[string]any `json:"-"`
}

// Status returns the node's GET /v1/status, waiting at most 2 s.
func (n *Node) Status() (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	return n.StatusContext(ctx)
}

// StatusContext returns the node's GET /v1/status. It returns an error if the
// request fails, the answer is not 200, or its body is not a status.
func (n *Node) StatusContext(ctx context.Context) (Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/v1/status", nil)
	if err != nil {
		return Status{}, fmt.Errorf("%s: status: %w", n.Name, err)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("%s: status: %w", n.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Status{}, fmt.Errorf("%s: status: %w", n.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("%s: status: %s: %s", n.Name, resp.Status, body)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return Status{}, fmt.Errorf("%s: status: %w: %s", n.Name, err, body)
	}
	if err := json.Unmarshal(body, &st.Raw); err != nil {
		return Status{}, fmt.Errorf("%s: status: %w: %s", n.Name, err, body)
	}
	return st, nil
}

// WaitApplied polls n's /v1/status until applied_index >= index and returns
// that status. It fails t if that does not happen within timeout.
func WaitApplied(t testing.TB, n *Node, index uint64, timeout time.Duration) Status {
	t.Helper()
	var st Status
	WaitFor(t, timeout, func() error {
		s, err := n.Status()
		if err != nil {
			return err
		}
		if s.AppliedIndex < index {
			return fmt.Errorf("%s: applied_index %d, want >= %d", n.Name, s.AppliedIndex, index)
		}
		st = s
		return nil
	})
	return st
}

func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.proc
}

func (n *Node) signal(op string, sig syscall.Signal) {
	n.t.Helper()
	p := n.current()
	if p == nil || p.exited() {
		n.t.Fatalf("cluster: %s: %s: not running", n.Name, op)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("cluster: %s: %s: %v", n.Name, op, err)
	}
}

// kill sends SIGKILL to p, if it still runs, and waits for it to be reaped.
func (n *Node) kill(p *process) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL) // fails only if it has just exited
	if !waitExit(p, killTimeout) {
		return fmt.Errorf("cluster: %s: pid %d did not exit within %v of SIGKILL",
			n.Name, p.cmd.Process.Pid, killTimeout)
	}
	return nil
}

// waitExit reports whether p exits within d.
func waitExit(p *process, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// cleanup kills the node and, if the test failed, logs the tail of its log.
func (n *Node) cleanup() {
	if err := n.kill(n.current()); err != nil {
		n.t.Error(err)
	}
	n.client.CloseIdleConnections()
	if n.t.Failed() && n.current() != nil {
		n.t.Logf("cluster: %s: last %d lines of %s:\n%s", n.Name, tailLines, n.LogPath, tail(n.LogPath, tailLines))
	}
}
