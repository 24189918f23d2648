package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// Modes: how a DC's proxies reach the replicas.
const (
	modeV15 = "v1.5" // each proxy follows and asks the replicas itself
	modeV2  = "v2"   // a relay between the DC and the replicas; L2 shards among the proxies
)

// dcName is the --dc of the v2 relay and proxies.
const dcName = "dc1"

// applyTimeout bounds the wait for a node to apply the loaded data.
const applyTimeout = 2 * time.Minute

// errUnavailable marks a mode the argent binary cannot run: a process of
// the mode exited before it answered (an unknown subcommand or flag).
var errUnavailable = errors.New("dc: not available in this build")

// base is the part of the tree both modes share: a root and two replicas
// following it, holding every key.
type base struct {
	root     *benchnode.Proc
	replicas []*benchnode.Proc
	last     argent.Index // the index after the load
}

// startBase starts the root and two replicas in c, loads the keys through
// the root, and waits until the replicas applied them.
func startBase(ctx context.Context, c *benchnode.Cluster, cfg config, log io.Writer) (*base, float64, error) {
	root, err := c.Start(ctx, "root", "root")
	if err != nil {
		return nil, 0, err
	}
	b := &base{root: root}
	for i := range 2 {
		r, err := c.Start(ctx, fmt.Sprintf("replica%d", i+1), "replica", "--upstream", root.Addr)
		if err != nil {
			return nil, 0, err
		}
		b.replicas = append(b.replicas, r)
	}
	fmt.Fprintf(log, "dc: root %s (pid %d), replicas %s (pid %d) and %s (pid %d)\n", root.Addr, root.PID(),
		b.replicas[0].Addr, b.replicas[0].PID(), b.replicas[1].Addr, b.replicas[1].PID())
	start := time.Now()
	if b.last, err = benchnode.Fill(ctx, root, cfg.keys, keyName, cfg.value, cfg.seed); err != nil {
		return nil, 0, fmt.Errorf("load: %w", err)
	}
	for _, r := range b.replicas {
		if err := r.WaitApplied(ctx, b.last, applyTimeout); err != nil {
			return nil, 0, err
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(log, "dc: loaded %s keys x %d B through the root in %.1f s (last index %d); both replicas applied it\n",
		fmtInt(cfg.keys), cfg.value, secs, b.last)
	return b, secs, nil
}

// replicaAddrs is the replicas' addresses, comma-separated.
func (b *base) replicaAddrs() string {
	addrs := make([]string, len(b.replicas))
	for i, r := range b.replicas {
		addrs[i] = r.Addr
	}
	return strings.Join(addrs, ",")
}

// dcNodes is one mode's DC: its proxies, and the relay in v2.
type dcNodes struct {
	proxies []*benchnode.Proc
	relay   *benchnode.Proc // nil in v1.5
}

// proxyArgs returns the arguments of the mode's proxy i, after --data and
// --listen: v1.5 proxies follow the replicas; v2 proxies follow the relay
// and name every proxy of the DC as a peer.
func proxyArgs(mode string, cacheSize int64, windowBytes, replicas, relay string, peers []string) []string {
	args := []string{"--cache-size", strconv.FormatInt(cacheSize, 10), "--window-bytes", windowBytes}
	if mode == modeV15 {
		return append([]string{"--upstream", replicas}, args...)
	}
	return append([]string{"--upstream", relay, "--dc", dcName, "--dc-peers", strings.Join(peers, ",")}, args...)
}

// startDC starts the mode's relay (v2) and proxies in c and waits until
// every proxy applied the loaded data. The error wraps errUnavailable when
// a process exited before it answered.
func startDC(ctx context.Context, c *benchnode.Cluster, cfg config, b *base, mode string, cacheSize int64, hc *http.Client, log io.Writer) (*dcNodes, error) {
	d := &dcNodes{}
	relayAddr := ""
	if mode == modeV2 {
		addr, err := benchnode.FreeAddr()
		if err != nil {
			return nil, err
		}
		d.relay, err = c.StartProcess(ctx, benchnode.Spec{
			Name: "relay", Bin: c.Bin, Addr: addr,
			Args:  []string{"relay", "--listen", addr, "--upstream", b.replicaAddrs(), "--dc", dcName},
			Ready: func(ctx context.Context) error { return statusOK(ctx, hc, addr) },
		})
		if err != nil {
			return nil, startErr(c, err)
		}
		relayAddr = addr
		fmt.Fprintf(log, "dc: %s: relay %s (pid %d)\n", mode, addr, d.relay.PID())
	}
	peers := make([]string, cfg.proxies)
	for i := range peers {
		addr, err := benchnode.FreeAddr()
		if err != nil {
			return nil, err
		}
		peers[i] = addr
	}
	for i, addr := range peers {
		p, err := c.StartOn(ctx, fmt.Sprintf("proxy%d", i+1), addr, "proxy",
			proxyArgs(mode, cacheSize, cfg.windowBytes, b.replicaAddrs(), relayAddr, peers)...)
		if err != nil {
			return nil, startErr(c, err)
		}
		d.proxies = append(d.proxies, p)
	}
	fmt.Fprintf(log, "dc: %s: %d proxies, --cache-size %s each\n", mode, len(d.proxies), fmtBytes(cacheSize))
	for _, p := range d.proxies {
		if err := p.WaitApplied(ctx, b.last, applyTimeout); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// startErr wraps err with errUnavailable when the process last started in
// c has exited: the binary refused its subcommand or flags.
func startErr(c *benchnode.Cluster, err error) error {
	procs := c.Procs()
	if len(procs) == 0 {
		return err
	}
	p := procs[len(procs)-1]
	if !p.Exited() {
		return err
	}
	return fmt.Errorf("%w: %s exited at start: %s", errUnavailable, p.Name, exitReason(p.Tail()))
}

// exitReason picks the line of a node's log that says why it stopped: the
// first line naming an unknown flag, an unexpected argument or an error,
// else the last line.
func exitReason(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for _, l := range lines {
		low := strings.ToLower(l)
		for _, w := range []string{"unknown flag", "unexpected argument", "error"} {
			if strings.Contains(low, w) {
				return strings.TrimSpace(l)
			}
		}
	}
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	return "no output"
}

// statusOK reports whether addr answers GET /v1/status with 200, within 2 s.
func statusOK(ctx context.Context, hc *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /v1/status: %s", addr, resp.Status)
	}
	return nil
}

// scrape returns addr's /metrics samples without labels, or nil when it
// cannot be read (the caller falls back and says so).
func scrape(ctx context.Context, hc *http.Client, addr string) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	m, err := benchnode.ParseMetrics(resp.Body)
	if err != nil {
		return nil
	}
	return m
}
