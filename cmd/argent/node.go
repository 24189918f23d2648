package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// LimitFlags bound what clients can hold of a node.
type LimitFlags struct {
	MaxConnections int           `help:"Connections open at once on the listen address, and separately on the RESP port; one more is refused (HTTP 503 overloaded, RESP -ERR max number of clients reached). Children's streams count too. 0: no bound." default:"10000"`
	MaxInFlight    int           `name:"max-in-flight" help:"Client API requests served at once, watch streams aside; one more gets 503 overloaded. 0: no bound." default:"4096"`
	MaxWatchers    int           `help:"Watch streams open at once; one more gets 503 overloaded. 0: no bound." default:"10000"`
	TokenRate      float64       `help:"Requests (RESP: commands) per second each --auth token may send; more get 429 rate_limited (RESP -ERR rate limit exceeded). 0: no bound." default:"0"`
	TokenBurst     int           `help:"Requests a token may send at once above --token-rate (0: one second's worth)." default:"0"`
	IdleTimeout    time.Duration `help:"How long a kept-alive HTTP connection may wait between requests before the node closes it." default:"2m"`
}

func (f *LimitFlags) validate() error {
	switch {
	case f.MaxConnections < 0, f.MaxInFlight < 0, f.MaxWatchers < 0, f.TokenBurst < 0:
		return exitError{code: 2, msg: "--max-connections, --max-in-flight, --max-watchers and --token-burst must not be negative"}
	case f.TokenRate < 0:
		return exitError{code: 2, msg: "--token-rate must not be negative"}
	case f.IdleTimeout <= 0:
		return exitError{code: 2, msg: "--idle-timeout must be positive"}
	}
	return nil
}

func (f *LimitFlags) applyLimits(cfg *node.Config) {
	cfg.MaxConnections, cfg.MaxInFlight, cfg.MaxWatchers = f.MaxConnections, f.MaxInFlight, f.MaxWatchers
	cfg.TokenRate, cfg.TokenBurst, cfg.IdleTimeout = f.TokenRate, f.TokenBurst, f.IdleTimeout
}

// StoreFlags are the storage and limit flags every persisting role shares.
type StoreFlags struct {
	History      time.Duration `help:"How far back reads as of an older index can go (superseded versions are read back from the log; the history never reaches past the log's own window)." default:"2h"`
	HistoryBytes byteSize      `help:"Bytes of log entries the history for reads as of an older index may span." default:"1GiB"`
	LogRetention time.Duration `help:"How long log entries are kept for children and watchers (up to twice as long while older reads still need them)." default:"168h"`
	LogBytes     byteSize      `help:"Bytes of log entries kept (up to twice as many while older reads still need them)." default:"4GiB"`
	TrimInterval time.Duration `help:"How often history and log are trimmed to their windows." default:"10s"`
	MaxKey       byteSize      `help:"Largest key accepted." default:"1024"`
	MaxValue     byteSize      `help:"Largest value accepted." default:"32MiB"`
	MaxBatch     byteSize      `help:"Largest batch (sum of keys and values) accepted." default:"64MiB"`
	BlockCache   byteSize      `help:"Size of the storage engine's block cache (memory)." default:"256MiB"`
	ReadCache    byteSize      `help:"Memory for the cache of latest values in front of the storage engine (0: none)." default:"64MiB"`
	MemTable     byteSize      `name:"memtable-size" help:"Size of the storage engine's memtable (memory; flushed to disk when full)." default:"32MiB"`
	BlobMinSize  byteSize      `name:"blob-min-size" help:"Values of this size or more are kept in blob files beside the storage engine's tables, so that compactions do not rewrite them (0: never)." default:"1KiB"`
	TLSFlags
	HeartbeatPeriod time.Duration `name:"heartbeat" help:"Interval of heartbeats to children." default:"1s"`
	SnapshotRate    byteSize      `help:"Bytes per second of snapshots served to children, all transfers together." default:"128MiB"`
	SnapshotConc    int           `name:"snapshot-concurrency" help:"Snapshot transfers served at once." default:"2"`
	RESPListen      string        `name:"resp-listen" help:"Also serve the Redis protocol (GET, MGET, EXISTS, SCAN, INFO; SET/DEL forwarded to the root) on this address; off when empty."`
	DC              string        `name:"dc" help:"This node's data center; proxies resolve misses at replicas of their own DC first."`
	Auth            string        `help:"TOML file of bearer tokens and the key prefixes each may read and write (see docs/SECURITY.md); every client request and RESP connection must then present one. SIGHUP reloads it. Off when empty." type:"path" placeholder:"FILE"`
	Pprof           bool          `help:"Serve Go's profiler under /debug/pprof/ on the listen address."`
	LogLevel        string        `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`
	LimitFlags
}

func (f *StoreFlags) apply(cfg *node.Config) {
	cfg.HistoryDuration = f.History
	cfg.HistoryBytes = int64(f.HistoryBytes)
	cfg.LogDuration = f.LogRetention
	cfg.LogBytes = int64(f.LogBytes)
	cfg.TrimInterval = f.TrimInterval
	cfg.Heartbeat = f.HeartbeatPeriod
	cfg.BlockCache = int64(f.BlockCache)
	cfg.MemTable = int64(f.MemTable)
	cfg.ReadCache = int64(f.ReadCache)
	if f.ReadCache == 0 {
		cfg.ReadCache = -1 // the flag's 0 means none; the config's 0 means the default
	}
	cfg.BlobMinSize = int(f.BlobMinSize)
	if f.BlobMinSize == 0 {
		cfg.BlobMinSize = -1
	}
	cfg.Pprof = f.Pprof
	cfg.AuthFile = f.Auth
	cfg.RESPListen = f.RESPListen
	cfg.DC = f.DC
	cfg.TLS = f.files()
	cfg.SnapshotRate = int64(f.SnapshotRate)
	cfg.SnapshotConcurrency = f.SnapshotConc
	cfg.Limits = argent.Limits{MaxKey: int(f.MaxKey), MaxValue: int(f.MaxValue), MaxBatch: int(f.MaxBatch)}
	cfg.Logger = newLogger(f.LogLevel)
	f.applyLimits(cfg)
}

// TLSFlags turn on TLS for a node: its client API, RESP port and
// node-to-node streams, with mutual TLS between nodes.
type TLSFlags struct {
	TLSCert string `name:"tls-cert" help:"Certificate (PEM, leaf first) for the listen address and the RESP port, also presented to other nodes; it must name the host and/or IP peers dial. With --tls-key and --tls-ca it turns TLS on. Reloaded on SIGHUP and when the file changes." type:"path"`
	TLSKey  string `name:"tls-key" help:"Private key (PEM) of --tls-cert." type:"path"`
	TLSCA   string `name:"tls-ca" help:"CA certificate(s) (PEM): peers' certificates must chain to it; node-to-node requests (/internal/) need a client certificate it signed." type:"path"`
}

func (f *TLSFlags) files() tlsconf.Files {
	return tlsconf.Files{Cert: f.TLSCert, Key: f.TLSKey, CA: f.TLSCA}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// RootCmd runs the root.
type RootCmd struct {
	ConfigFlag
	Data          string        `help:"Data directory." required:"" type:"path"`
	Listen        string        `help:"Address for the client API, node-to-node streams and /metrics." default:"127.0.0.1:7400"`
	ID            uint64        `name:"id" help:"This member's Raft ID in a root group (with --peers)."`
	Peers         string        `help:"The members of a root group at its creation, this one included, as ID=ADDR (each member's --listen address): 1=ADDR,2=ADDR,3=ADDR. Without it the root is a single node."`
	Join          bool          `help:"With --id/--peers and an empty data directory: wait to be added to a running group (argent member add) instead of starting a new one."`
	MaxBatchDelay time.Duration `help:"How long a merged batch waits for more client batches after its first, besides the fsync of the one before. Default: none." default:"0s"`
	MergeBytes    byteSize      `help:"Key and value bytes of the client batches merged into one committed batch (one index, one fsync); a larger batch commits alone." default:"4MiB"`
	MergeBatches  int           `help:"Client batches merged into one committed batch at most." default:"4096"`
	MinFreeDisk   byteSize      `name:"min-free-disk" help:"Refuse writes (HTTP 507 insufficient_storage) while the data directory's disk has less free space than this, and take them again once space returns; 0 turns the check off. A root group member below it raises a disk alarm through the group, and every member refuses writes until it clears." default:"256MiB"`
	// The Raft log's window, for tests that need a member to load a
	// snapshot; hidden from --help.
	RaftLogKeep         uint64        `name:"raft-log-keep" hidden:"" help:"Root group: applied Raft entries the member's Raft log keeps past its snapshot, so that a member that was away catches up from the log; one further behind, or a new member, loads a snapshot instead. 0: 10000."`
	RaftCompactInterval time.Duration `name:"raft-compact-interval" hidden:"" help:"Root group: how often the member compacts its Raft log to --raft-log-keep entries. 0: 10s."`
	StoreFlags
}

// Run starts the root and serves until interrupted.
func (c *RootCmd) Run(ctx context.Context) error {
	peers, err := parsePeers(c.Peers)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	if c.MergeBatches < 1 {
		return exitError{code: 2, msg: "--merge-batches must be at least 1"}
	}
	if c.MergeBytes < 1 {
		return exitError{code: 2, msg: "--merge-bytes must be at least 1 byte"}
	}
	if c.MinFreeDisk < 0 {
		return exitError{code: 2, msg: "--min-free-disk must not be negative"}
	}
	if c.RaftCompactInterval < 0 {
		return exitError{code: 2, msg: "--raft-compact-interval must not be negative"}
	}
	cfg := node.Config{Role: node.RoleRoot, DataDir: c.Data, Listen: c.Listen, MaxBatchDelay: c.MaxBatchDelay,
		MergeBytes: int(c.MergeBytes), MergeBatches: c.MergeBatches, MinFreeDisk: uint64(c.MinFreeDisk), GroupID: c.ID, GroupPeers: peers, GroupJoin: c.Join,
		GroupLogKeep: c.RaftLogKeep, GroupCompactInterval: c.RaftCompactInterval}
	if err := cfg.Validate(); err != nil {
		return exitError{code: 2, msg: strings.TrimPrefix(err.Error(), "node: ")}
	}
	if err := c.validate(); err != nil {
		return err
	}
	c.apply(&cfg)
	return serve(ctx, cfg)
}

// ReplicaCmd runs a replica.
type ReplicaCmd struct {
	ConfigFlag
	Data         string        `help:"Data directory." required:"" type:"path"`
	Listen       string        `help:"Address for the client API, node-to-node streams and /metrics." required:""`
	Upstream     string        `help:"Parents to pull the log from, comma-separated, in order of preference." required:""`
	StallTimeout time.Duration `help:"Move to another upstream after this long without a frame." default:"30s"`
	MinFreeDisk  byteSize      `name:"min-free-disk" help:"Apply no more entries (serving the state held) while the data directory's disk has less free space than this, and go on once space returns; 0 turns the check off." default:"256MiB"`
	StoreFlags
}

// Run starts the replica and serves until interrupted.
func (c *ReplicaCmd) Run(ctx context.Context) error {
	if c.MinFreeDisk < 0 {
		return exitError{code: 2, msg: "--min-free-disk must not be negative"}
	}
	cfg := node.Config{Role: node.RoleReplica, DataDir: c.Data, Listen: c.Listen, Upstreams: splitList(c.Upstream), StallTimeout: c.StallTimeout,
		MinFreeDisk: uint64(c.MinFreeDisk)}
	if err := c.validate(); err != nil {
		return err
	}
	c.apply(&cfg)
	return serve(ctx, cfg)
}

// ProxyCmd runs a proxy.
type ProxyCmd struct {
	ConfigFlag
	Data          string        `help:"Data directory (the persistent cache)." required:"" type:"path"`
	Listen        string        `help:"Address for the client API and /metrics." required:""`
	Upstream      string        `help:"Replicas to follow the log from and resolve misses at, comma-separated, in order of preference." required:""`
	CacheSize     byteSize      `help:"Disk budget for cached keys and values (e.g. 1GiB)." required:""`
	FreeDiskFloor byteSize      `help:"Stop admitting new keys while the disk has less free space than this (0: no floor)." default:"0"`
	MissWait      time.Duration `help:"How long a read waits for a miss to resolve at a replica before it fails." default:"5s"`
	WindowBytes   byteSize      `help:"Memory for the sliding window of recent writes, which proves a lagging replica's answer still holds." default:"16MiB"`
	StallTimeout  time.Duration `help:"Move to another upstream after this long without a frame." default:"30s"`
	RESPListen    string        `name:"resp-listen" help:"Also serve the Redis protocol on this address; off when empty."`
	DC            string        `name:"dc" help:"This proxy's data center: misses go to replicas of the same DC first, and the DC's proxies share one cache (L2), each owning some of its 1,024 shards."`
	DCPeers       string        `name:"dc-peers" help:"The other proxies of the DC, comma-separated, as they listen (optional: a relay names them too)."`
	L2Timeout     time.Duration `name:"l2-timeout" help:"How long a miss waits for the DC peer owning its shard before asking a replica; a peer that fails is skipped for a while." default:"250ms"`
	MaxKey        byteSize      `help:"Largest key accepted." default:"1024"`
	MaxValue      byteSize      `help:"Largest value accepted." default:"32MiB"`
	MaxBatch      byteSize      `help:"Largest batch (sum of keys and values) accepted." default:"64MiB"`
	Auth          string        `help:"TOML file of bearer tokens and the key prefixes each may read and write (see docs/SECURITY.md); every client request and RESP connection must then present one. SIGHUP reloads it. Off when empty." type:"path" placeholder:"FILE"`
	Pprof         bool          `help:"Serve Go's profiler under /debug/pprof/ on the listen address."`
	LogLevel      string        `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`
	TLSFlags
	LimitFlags
}

// Run starts the proxy and serves until interrupted.
func (c *ProxyCmd) Run(ctx context.Context) error {
	cfg := node.Config{Role: node.RoleProxy, DataDir: c.Data, Listen: c.Listen, Upstreams: splitList(c.Upstream),
		CacheSize: int64(c.CacheSize), FreeDiskFloor: int64(c.FreeDiskFloor), MissWait: c.MissWait, WindowBytes: int64(c.WindowBytes),
		StallTimeout: c.StallTimeout, RESPListen: c.RESPListen, Pprof: c.Pprof, DC: c.DC, DCPeers: splitList(c.DCPeers), L2Timeout: c.L2Timeout,
		Limits: argent.Limits{MaxKey: int(c.MaxKey), MaxValue: int(c.MaxValue), MaxBatch: int(c.MaxBatch)},
		TLS:    c.files(), AuthFile: c.Auth, Logger: newLogger(c.LogLevel)}
	if err := c.validate(); err != nil {
		return err
	}
	c.applyLimits(&cfg)
	return serve(ctx, cfg)
}

// serve runs one node until ctx ends. SIGHUP reloads its TLS certificate.
func serve(ctx context.Context, cfg node.Config) error {
	if cfg.TLS.Enabled() {
		// Bad files are a usage error, told before anything starts.
		if _, err := tlsconf.Load(cfg.TLS, nil, nil); err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("serving", "role", cfg.Role, "addr", n.Addr(), "node", n.NodeID())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			_ = n.ReloadTLS() // a failure is logged; the node keeps its certificate
		case <-ctx.Done():
			cfg.Logger.Info("stopping")
			return n.Close()
		case <-n.Failed():
			// Acknowledged writes are safe on disk; what failed was never
			// acknowledged. A restart finds the store at its last durable state.
			cfg.Logger.Error("stopping: storage failed", "err", n.FailedErr())
			_ = n.Close()
			return fmt.Errorf("storage failed, restart the node: %w", n.FailedErr())
		}
	}
}

// parsePeers parses --peers: ID=ADDR, comma-separated.
func parsePeers(s string) ([]group.Peer, error) {
	var out []group.Peer
	for _, p := range splitList(s) {
		id, addr, ok := strings.Cut(p, "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not ID=ADDR (e.g. 1=10.0.0.1:7400)", p)
		}
		out = append(out, group.Peer{ID: n, Addr: addr})
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
