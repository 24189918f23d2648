package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/argent-kv/argent/internal/demo"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/node"
)

// DevCmd runs a root, a replica and a proxy in one process, with demo data.
type DevCmd struct {
	Data          string   `help:"Data directory (root/, replica/ and proxy/ below it)." default:"./argent-dev" type:"path"`
	RootListen    string   `help:"Root address (with --roots, the first member's)." default:"127.0.0.1:7400"`
	Roots         int      `help:"Root members: 1 (a single root) or 3 or 5 (a Raft group; the other members listen on the ports after the proxy's)." default:"1"`
	ReplicaListen string   `help:"Replica address." default:"127.0.0.1:7401"`
	ProxyListen   string   `help:"Proxy address (empty: no proxy)." default:"127.0.0.1:7402"`
	ProxyCache    byteSize `help:"Disk budget of the proxy's cache." default:"4MiB"`
	RESPListen    string   `name:"resp-listen" help:"Redis-protocol read port of the replica (empty: off)." default:"127.0.0.1:7379"`
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
	replica, err := node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: filepath.Join(c.Data, "replica"), Listen: c.ReplicaListen, RESPListen: c.RESPListen, Upstreams: rootAddrs, Logger: logger.With("dev", "replica")})
	if err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	defer replica.Close()
	want := rootN.Store().Applied()
	if _, err := replica.Store().WaitApplied(ctx, 60*time.Second, want); err != nil {
		return fmt.Errorf("replica did not catch up with the root: %w", err)
	}
	var px *node.Node
	if c.ProxyListen != "" {
		px, err = node.Start(ctx, node.Config{Role: node.RoleProxy, DataDir: filepath.Join(c.Data, "proxy"), Listen: c.ProxyListen,
			Upstreams: []string{replica.Addr()}, CacheSize: int64(c.ProxyCache), Logger: logger.With("dev", "proxy")})
		if err != nil {
			return fmt.Errorf("start proxy: %w", err)
		}
		defer px.Close()
		if _, err := px.Reader().WaitApplied(ctx, 60*time.Second, want); err != nil {
			return fmt.Errorf("proxy did not catch up with the root: %w", err)
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
	if px != nil {
		fmt.Printf("  proxy    http://%s   caches what is read (%d KiB disk budget), resolves misses at the replica\n", px.Addr(), int64(c.ProxyCache)>>10)
	}
	if replica.RESPAddr() != "" {
		fmt.Printf("  RESP     redis://%s   the replica, for redis-cli and Redis clients\n", replica.RESPAddr())
	}
	if loaded != "" {
		fmt.Printf("  %s\n", loaded)
	}
	fmt.Printf(`
Try:
  curl -s http://%[2]s/v1/kv/%[1]s
  go run ./cmd/argent put config/feature-x on && go run ./cmd/argent get --server %[2]s config/feature-x
  go run ./cmd/argent scan egress/dc/ --values --server %[2]s
  (status: curl -s http://%[2]s/v1/status   metrics: http://%[2]s/metrics)
`, host, replica.Addr())
	if px != nil {
		fmt.Printf(`  curl -si http://%[2]s/v1/kv/%[1]s   (the proxy; Argent-Tier says which layer answered)
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
