package benchnode

// Real argent processes on 127.0.0.1 for a benchmark: free ports, temporary
// data directories, logs, readiness, /v1/status and /metrics, and a stop by
// PID at the end.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/promtext"
)

const (
	readyTimeout = 20 * time.Second // for /v1/status to answer after a start
	stopTimeout  = 10 * time.Second // after SIGTERM, before SIGKILL
	tailBytes    = 4 << 10          // of a node's log, shown when it fails
)

// Proc is one argent process, started by [Cluster.Start].
type Proc struct {
	Name   string         // "root", "r1", ...
	Addr   string         // --listen
	Dir    string         // --data
	Log    string         // stdout and stderr
	Client *client.Client // talks to Addr; nil for a process of StartProcess

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	hc   *http.Client  // Client's; nil for a process of StartProcess
}

// Cluster is the processes of one run, in start order. Set Bin and Dir, then
// call Start for each node and Close at the end.
type Cluster struct {
	Bin   string // the argent binary
	Dir   string // temporary directory: every node's data directory and log
	procs []*Proc
}

// BuildArgent builds ./cmd/argent of the repository (see [RepoRoot]) into
// dir and returns the binary's path.
func BuildArgent(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/argent: %w", err)
	}
	bin, err := filepath.Abs(filepath.Join(dir, "argent"))
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/argent: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/argent")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/argent: %w", err)
	}
	return bin, nil
}

// FreeAddr returns 127.0.0.1:PORT with a port the kernel just handed out
// and that nothing listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// Start runs "argent ROLE --data DIR --listen ADDR args..." as the node
// name, on a free port, with its data directory and log under c.Dir, and
// waits until its /v1/status answers.
func (c *Cluster) Start(ctx context.Context, name, role string, args ...string) (*Proc, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	return c.StartOn(ctx, name, addr, role, args...)
}

// StartOn is Start on the address addr, for nodes whose arguments must name
// each other's addresses before they start (the members of a root group).
func (c *Cluster) StartOn(ctx context.Context, name, addr, role string, args ...string) (*Proc, error) {
	var err error
	p := c.newProc(name, addr)
	p.hc = client.NewHTTPClient()
	if p.Client, err = client.New(addr, client.WithHTTPClient(p.hc)); err != nil {
		return nil, err
	}
	full := append([]string{role, "--data", p.Dir, "--listen", addr}, args...)
	if err := c.launch(p, c.Bin, full); err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, func(ctx context.Context) error {
		_, err := p.Status(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Spec describes a process other than argent (a peer such as etcd or
// Redis) for [Cluster.StartProcess].
type Spec struct {
	Name string   // as for a node: "etcd", "redis", ...
	Bin  string   // the program
	Args []string // its arguments; the data directory is Proc.Dir
	Addr string   // the address it serves, for Proc.Addr and messages
	// Ready is polled every 20 ms after the start, until it returns nil,
	// the process exits, or 20 s pass.
	Ready func(ctx context.Context) error
}

// NewDir returns the data directory the next process named name gets,
// c.Dir/name, and creates it: a Spec's Args usually name it.
func (c *Cluster) NewDir(name string) (string, error) {
	dir := filepath.Join(c.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("data directory of %s: %w", name, err)
	}
	return dir, nil
}

// StartProcess runs spec.Bin with spec.Args as the process spec.Name, with
// its log in c.Dir, and waits until spec.Ready returns nil. It is stopped
// like a node: by PID, by Stop or Close. Its Proc has no Client.
func (c *Cluster) StartProcess(ctx context.Context, spec Spec) (*Proc, error) {
	p, err := c.LaunchProcess(spec)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, spec.Ready); err != nil {
		return nil, err
	}
	return p, nil
}

// LaunchProcess is StartProcess without the wait: for peers that become
// ready only together (the members of an etcd cluster answer once a quorum
// of them runs). Wait for each with [Proc.WaitReady].
func (c *Cluster) LaunchProcess(spec Spec) (*Proc, error) {
	p := c.newProc(spec.Name, spec.Addr)
	if err := c.launch(p, spec.Bin, spec.Args); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *Cluster) newProc(name, addr string) *Proc {
	return &Proc{
		Name: name,
		Addr: addr,
		Dir:  filepath.Join(c.Dir, name),
		Log:  filepath.Join(c.Dir, name+".log"),
		done: make(chan struct{}),
	}
}

// launch starts bin with args as p, its output in p.Log, and records it in
// c so that Close stops it.
func (c *Cluster) launch(p *Proc, bin string, args []string) error {
	logf, err := os.Create(p.Log)
	if err != nil {
		return fmt.Errorf("log of %s: %w", p.Name, err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	c.procs = append(c.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// Procs returns the processes started so far, in start order.
func (c *Cluster) Procs() []*Proc { return c.procs }

// PID is the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr returns the process's exit status once Exited reports true, and
// nil while it runs.
func (p *Proc) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// WaitReady polls ready every 20 ms until it returns nil, the process
// exits, or 20 s pass.
func (p *Proc) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v) before it was ready; log:\n%s", p.Name, p.err, p.Tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s at %s was not ready in %v (%v); log:\n%s", p.Name, p.Addr, readyTimeout, err, p.Tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Status gets /v1/status with a 2 s bound.
func (p *Proc) Status(ctx context.Context) (client.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.Client.Status(ctx)
}

// WaitApplied polls /v1/status until the node's applied index is at least
// idx, for at most timeout.
func (p *Proc) WaitApplied(ctx context.Context, idx argent.Index, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := p.Status(ctx)
		if err == nil && st.AppliedIndex >= idx {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not apply index %d in %v (at %d, %v); log:\n%s", p.Name, idx, timeout, st.AppliedIndex, err, p.Tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metrics scrapes /metrics, with a 5 s bound, and returns the samples
// without labels, by name.
func (p *Proc) Metrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", p.Name, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads a node's /metrics text and returns its samples
// without labels, by name: gauges, unlabelled counters, and a histogram's
// x_sum and x_count.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	samples, err := promtext.Parse(r)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64)
	for _, s := range samples {
		if len(s.Labels) == 0 {
			out[s.Name] = s.Value
		}
	}
	return out, nil
}

// Tail returns the end of the node's log (its last 4 KiB), or why it could
// not be read.
func (p *Proc) Tail() string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop sends SIGTERM to the process by PID, and SIGKILL if it has not ended
// 10 s later, and waits until it has ended.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Close stops every process, the last started first, and removes c.Dir
// unless keep is set (then it says on stderr that it kept it).
func (c *Cluster) Close(keep bool) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop()
		if hc := c.procs[i].hc; hc != nil {
			hc.CloseIdleConnections()
		}
	}
	if keep {
		fmt.Fprintf(os.Stderr, "kept %s\n", c.Dir)
		return
	}
	_ = os.RemoveAll(c.Dir)
}
