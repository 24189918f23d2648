package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/demo"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/node"
)

// DevCmd runs a whole tree in one process, with demo data: a root (or a
// root group), a replica, and a data center of proxies behind a relay
// with a second replica, or a single proxy.
type DevCmd struct {
	ConfigFlag
	Data          string   `help:"Data directory (root/, replica/, proxy/ and the DC's nodes below it)." default:"./argent-dev" type:"path"`
	RootListen    string   `help:"Root address (with --roots, the first member's)." default:"127.0.0.1:7400"`
	Roots         int      `help:"Root members: 1 (a single root) or 3 or 5 (a Raft group; the other members listen on the ports after the proxy's)." default:"1"`
	ReplicaListen string   `help:"Replica address." default:"127.0.0.1:7401"`
	ProxyListen   string   `help:"First proxy's address (empty: no proxy)." default:"127.0.0.1:7402"`
	ProxyCache    byteSize `help:"Disk budget of each proxy's cache." default:"4MiB"`
	Proxies       int      `help:"Proxies: 1 (a lone proxy following the replica) or more (a data center: a second replica, a relay and this many proxies sharing L2 shards)." default:"4"`
	DCListen      string   `name:"dc-listen" help:"With --proxies above 1: the second replica's address; the relay and the other proxies take the ports after it." default:"127.0.0.1:7410"`
	WindowBytes   byteSize `help:"Memory for each proxy's sliding window of recent writes (small here, so that reads of older keys show the cache and L2 tiers)." default:"64KiB"`
	RESPListen    string   `name:"resp-listen" help:"Redis-protocol read port of the first proxy (of the replica without a proxy; empty: off)." default:"127.0.0.1:7379"`
	Empty         bool     `help:"Do not load the demo data set."`
	Hosts         int      `help:"Number of demo hosts (egress policies) to load." default:"20000"`
	LogLevel      string   `help:"Log level: debug, info, warn, error." default:"warn" enum:"debug,info,warn,error"`
}

// Run starts the tree and serves until interrupted.
func (c *DevCmd) Run(ctx context.Context) error {
	logger := newLogger(c.LogLevel)
	roots, err := c.startRoots(ctx, logger)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range roots {
			r.Close()
		}
	}()
	rootN := roots[0]
	loaded := ""
	if !c.Empty && rootN.Store().Applied() == 0 {
		start := time.Now()
		n := 0
		for _, b := range demo.Batches(c.Hosts, 1000) {
			if _, err := rootN.Write(ctx, b); err != nil {
				return fmt.Errorf("load demo data: %w", err)
			}
			n += len(b.Ops)
		}
		loaded = fmt.Sprintf("loaded %d demo keys in %s (egress policies under egress/host/)", n, time.Since(start).Round(time.Millisecond))
	} else if rootN.Store().Applied() > 0 {
		loaded = fmt.Sprintf("reopened existing data at index %d", rootN.Store().Applied())
	}
	var rootAddrs []string
	for _, r := range roots {
		rootAddrs = append(rootAddrs, r.Addr())
	}
	replicaRESP := ""
	if c.ProxyListen == "" {
		replicaRESP = c.RESPListen
	}
	replica, err := node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: filepath.Join(c.Data, "replica"), Listen: c.ReplicaListen, RESPListen: replicaRESP, Upstreams: rootAddrs, Logger: logger.With("dev", "replica")})
	if err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	defer replica.Close()
	want := rootN.Store().Applied()
	if _, err := replica.Store().WaitApplied(ctx, 60*time.Second, want); err != nil {
		return fmt.Errorf("replica did not catch up with the root: %w", err)
	}
	var dcNodes, proxies []*node.Node
	defer func() {
		for i := len(dcNodes) - 1; i >= 0; i-- {
			dcNodes[i].Close()
		}
	}()
	if c.ProxyListen != "" {
		if dcNodes, proxies, err = c.startDC(ctx, logger, rootAddrs, replica.Addr(), want); err != nil {
			return err
		}
	}
	host := demo.ExampleHost()
	fmt.Printf("argent dev is running (data in %s)\n", c.Data)
	if len(roots) == 1 {
		fmt.Printf("  root     http://%s   takes writes\n", rootN.Addr())
	} else {
		for i, r := range roots {
			fmt.Printf("  root     http://%s   member %d of %d of the root's Raft group; any member takes writes\n", r.Addr(), i+1, len(roots))
		}
	}
	fmt.Printf("  replica  http://%s   follows the root, serves reads\n", replica.Addr())
	var px *node.Node
	switch {
	case len(proxies) == 1:
		px = proxies[0]
		fmt.Printf("  proxy    http://%s   caches what is read (%d KiB disk budget), resolves misses at the replica\n", px.Addr(), int64(c.ProxyCache)>>10)
	case len(proxies) > 1:
		px = proxies[0]
		fmt.Printf("  replica  http://%s   a second replica, for the data center %q\n", dcNodes[0].Addr(), devDC)
		fmt.Printf("  relay    http://%s   feeds the DC's proxies the log, shares their misses\n", dcNodes[1].Addr())
		for _, p := range proxies {
			fmt.Printf("  proxy    http://%s   caches what is read (%d KiB), owns 1/%d of the DC's L2 shards\n", p.Addr(), int64(c.ProxyCache)>>10, len(proxies))
		}
	}
	for _, n := range append([]*node.Node{replica}, proxies...) {
		if n.RESPAddr() != "" {
			fmt.Printf("  RESP     redis://%s   the %s at %s, for redis-cli and Redis clients\n", n.RESPAddr(), n.Role(), n.Addr())
		}
	}
	if loaded != "" {
		fmt.Printf("  %s\n", loaded)
	}
	fmt.Printf(`
Try (bin/argent is built by make build or make dev):
  curl -s http://%[2]s/v1/kv/%[1]s
  bin/argent put config/feature-x on && bin/argent get --server %[2]s config/feature-x
  bin/argent scan egress/dc/ --values --server %[2]s
  (status: curl -s http://%[2]s/v1/status   metrics: http://%[2]s/metrics)
`, host, replica.Addr())
	if px != nil {
		fmt.Printf(`  curl -si http://%[2]s/v1/kv/%[1]s   (the proxy; Argent-Tier says which layer answered)
  bin/argent trace %[1]s --server %[2]s   (the path of one read through the tiers)
`, host, px.Addr())
	}
	fmt.Print("\nPress Ctrl-C to stop.\n")
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping")
		return nil
	case <-rootN.Failed():
		return fmt.Errorf("root storage failed, stopping: %w", rootN.FailedErr())
	case <-lastOf(roots).Failed():
		return fmt.Errorf("root member storage failed, stopping: %w", lastOf(roots).FailedErr())
	case <-replica.Failed():
		return fmt.Errorf("replica storage failed, stopping: %w", replica.FailedErr())
	}
}

// devDC is the data center of argent dev's proxies.
const devDC = "dev"

// startDC starts the proxies after the replica at replicaAddr has reached
// index want: one proxy following it; or a data center of c.Proxies
// proxies behind a relay that follows the replica and a second replica
// (on the DC ports). It returns the nodes it started, in start order, and
// the proxies, once each has reached want.
func (c *DevCmd) startDC(ctx context.Context, logger *slog.Logger, rootAddrs []string, replicaAddr string, want argent.Index) (started, proxies []*node.Node, err error) {
	fail := func(err error) ([]*node.Node, []*node.Node, error) {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Close()
		}
		return nil, nil, err
	}
	if c.Proxies < 1 {
		return fail(exitError{code: 2, msg: fmt.Sprintf("--proxies %d: at least 1", c.Proxies)})
	}
	proxyAddrs := []string{c.ProxyListen}
	upstreams := []string{replicaAddr}
	dc := ""
	if c.Proxies > 1 {
		ports, err := followingPorts(c.DCListen, 2+c.Proxies-1)
		if err != nil {
			return fail(err)
		}
		r2, err := node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: filepath.Join(c.Data, "replica2"), Listen: ports[0], Upstreams: rootAddrs, Logger: logger.With("dev", "replica2")})
		if err != nil {
			return fail(fmt.Errorf("start second replica: %w", err))
		}
		started = append(started, r2)
		rl, err := node.Start(ctx, node.Config{Role: node.RoleRelay, Listen: ports[1], Upstreams: []string{replicaAddr, r2.Addr()}, DC: devDC, Logger: logger.With("dev", "relay")})
		if err != nil {
			return fail(fmt.Errorf("start relay: %w", err))
		}
		started = append(started, rl)
		proxyAddrs = append(proxyAddrs, ports[2:]...)
		upstreams, dc = []string{rl.Addr()}, devDC
	}
	for i, addr := range proxyAddrs {
		resp := ""
		if i == 0 {
			resp = c.RESPListen
		}
		name := "proxy"
		if i > 0 {
			name = fmt.Sprintf("proxy%d", i+1)
		}
		p, err := node.Start(ctx, node.Config{Role: node.RoleProxy, DataDir: filepath.Join(c.Data, name), Listen: addr, RESPListen: resp,
			Upstreams: upstreams, DC: dc, DCPeers: proxyAddrs, CacheSize: int64(c.ProxyCache), WindowBytes: int64(c.WindowBytes), Logger: logger.With("dev", name)})
		if err != nil {
			return fail(fmt.Errorf("start %s: %w", name, err))
		}
		started = append(started, p)
		proxies = append(proxies, p)
	}
	for _, p := range proxies {
		if _, err := p.Reader().WaitApplied(ctx, 60*time.Second, want); err != nil {
			return fail(fmt.Errorf("proxy %s did not catch up with the root: %w", p.Addr(), err))
		}
	}
	// The tree is ready to try once the proxies answer absent keys from
	// their filters too, as the commands dev prints show.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range proxies {
		for !p.FilterInstalled() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return started, proxies, nil
}

// followingPorts returns n addresses: addr and the n-1 ports after it.
func followingPorts(addr string, n int) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--dc-listen %q: %v", addr, err)}
	}
	first, err := strconv.Atoi(port)
	if err != nil || first == 0 {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--dc-listen %q: the data center needs a numeric, non-zero port", addr)}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = net.JoinHostPort(host, strconv.Itoa(first+i))
	}
	return out, nil
}

// startRoots starts the single root, or the members of a root group on the
// root's port and the ports after the proxy's, and waits for the group's
// first leader.
func (c *DevCmd) startRoots(ctx context.Context, logger *slog.Logger) ([]*node.Node, error) {
	if c.Roots != 1 && c.Roots != 3 && c.Roots != 5 {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--roots %d: a root is 1 node, or a Raft group of 3 or 5", c.Roots)}
	}
	if c.Roots == 1 {
		r, err := node.Start(ctx, node.Config{Role: node.RoleRoot, DataDir: filepath.Join(c.Data, "root"), Listen: c.RootListen, Logger: logger.With("dev", "root")})
		if err != nil {
			return nil, fmt.Errorf("start root: %w", err)
		}
		return []*node.Node{r}, nil
	}
	host, port, err := net.SplitHostPort(c.RootListen)
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--root-listen %q: %v", c.RootListen, err)}
	}
	first, err := strconv.Atoi(port)
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--root-listen %q: a group needs a numeric port", c.RootListen)}
	}
	peers := []group.Peer{{ID: 1, Addr: c.RootListen}}
	for i := 2; i <= c.Roots; i++ {
		// The first member, replica and proxy take ports first..first+2.
		peers = append(peers, group.Peer{ID: uint64(i), Addr: net.JoinHostPort(host, strconv.Itoa(first+i+1))})
	}
	var roots []*node.Node
	for _, p := range peers {
		r, err := node.Start(ctx, node.Config{Role: node.RoleRoot, DataDir: filepath.Join(c.Data, fmt.Sprintf("root%d", p.ID)),
			Listen: p.Addr, GroupID: p.ID, GroupPeers: peers, Logger: logger.With("dev", fmt.Sprintf("root%d", p.ID))})
		if err != nil {
			for _, r := range roots {
				r.Close()
			}
			return nil, fmt.Errorf("start root member %d: %w", p.ID, err)
		}
		roots = append(roots, r)
	}
	return roots, nil
}

func lastOf(nodes []*node.Node) *node.Node { return nodes[len(nodes)-1] }
