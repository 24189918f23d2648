package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/argent-kv/argent/internal/demo"
	"github.com/argent-kv/argent/internal/node"
)

// DevCmd runs a root, a replica and a proxy in one process, with demo data.
type DevCmd struct {
	Data          string   `help:"Data directory (root/, replica/ and proxy/ below it)." default:"./argent-dev" type:"path"`
	RootListen    string   `help:"Root address." default:"127.0.0.1:7400"`
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
	rootN, err := node.Start(ctx, node.Config{Role: node.RoleRoot, DataDir: filepath.Join(c.Data, "root"), Listen: c.RootListen, Logger: logger.With("dev", "root")})
	if err != nil {
		return fmt.Errorf("start root: %w", err)
	}
	defer rootN.Close()
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
	replica, err := node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: filepath.Join(c.Data, "replica"), Listen: c.ReplicaListen, RESPListen: c.RESPListen, Upstreams: []string{rootN.Addr()}, Logger: logger.With("dev", "replica")})
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
	fmt.Printf(`argent dev is running (data in %s)
  root     http://%s   takes writes
  replica  http://%s   follows the root, serves reads
`, c.Data, rootN.Addr(), replica.Addr())
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
	case <-replica.Failed():
		return fmt.Errorf("replica storage failed, stopping: %w", replica.FailedErr())
	}
}
