// Package node wires one argent node together: the store, the role's
// engine (the root's write path, a replica.Replica, a proxy), the node-to-node
// protocol, the client API and the metrics, all on one listen address.
//
//	n, err := node.Start(ctx, node.Config{Role: node.RoleRoot, DataDir: dir, Listen: "127.0.0.1:7400"})
//	defer n.Close()
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/fastlane"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/limit"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/proxycache"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/relay"
	"github.com/argent-kv/argent/internal/replica"
	"github.com/argent-kv/argent/internal/resp"
	"github.com/argent-kv/argent/internal/root"
	"github.com/argent-kv/argent/internal/tlsconf"
	"github.com/argent-kv/argent/internal/ui"
)

// The roles a node can run.
const (
	RoleRoot    = "root"
	RoleReplica = "replica"
	RoleProxy   = "proxy"
	RoleRelay   = "relay"
)

// Config is a node's configuration. Zero fields take the defaults noted.
type Config struct {
	Role    string // RoleRoot, RoleReplica, RoleProxy or RoleRelay
	DataDir string // Pebble directory; a relay has none
	Listen  string // client API, node-to-node streams and /metrics
	// RESPListen, if set, serves the Redis protocol (RESP2) read port
	// there: GET, MGET, EXISTS, SCAN, INFO, and SET/DEL forwarded as writes.
	RESPListen string
	// Upstreams are a replica's parents, in order of preference; a proxy's
	// replicas (or its DC's relay), which feed it the log and resolve its
	// misses; a relay's replicas.
	Upstreams []string

	// DC names the node's data center; proxies resolve misses at replicas
	// of their own DC first.
	DC string
	// DCPeers are the other proxies of a proxy's DC, which share the
	// DC-wide cache (L2) with it; relays name more. L2Timeout bounds one
	// request to an L2 owner (default 250 ms).
	DCPeers   []string
	L2Timeout time.Duration

	// CacheSize is a proxy's disk budget for cached keys and values.
	CacheSize int64
	// FreeDiskFloor: a proxy stops admitting new keys while the disk has
	// less free space. Default 0: no floor.
	FreeDiskFloor int64
	// MissWait bounds a proxy read waiting for its miss to resolve.
	// Default 5 s.
	MissWait time.Duration
	// WindowBytes bounds a proxy's sliding window of recent writes.
	// Default 16 MiB.
	WindowBytes int64
	// LogBuffer bounds the bytes of log a relay keeps in memory for its
	// children. Default 64 MiB.
	LogBuffer int64

	// MergeBytes and MergeBatches bound the client batches a root merges
	// into one committed batch. Default root.DefaultMergeBytes and
	// root.DefaultMergeBatches.
	MergeBytes, MergeBatches int
	// MinFreeDisk is the floor of free disk space below which a single
	// root refuses writes (root.Config.MinFreeDisk), a root group member
	// raises the group's disk alarm (group.Config.MinFreeDisk) and a
	// replica applies no entries (replica.Config.MinFreeDisk). Default 0:
	// none.
	MinFreeDisk uint64
	// GroupID and GroupPeers make a root a member of a Raft group: its
	// Raft ID and the group's members at its creation (itself included),
	// by ID and listen address. Without peers a root is a single root.
	GroupID    uint64
	GroupPeers []group.Peer
	// GroupJoin: a member with an empty data directory waits to be added
	// to a running group instead of starting a new one.
	GroupJoin bool
	// GroupLogKeep and GroupCompactInterval are a group member's
	// group.Config LogKeep and CompactInterval: the applied Raft entries
	// its log keeps past its snapshot, and how often it compacts to them.
	// Defaults 10,000 and 10 s. Tests make them small so that a member
	// added to the group loads a snapshot instead of replaying the log.
	GroupLogKeep         uint64
	GroupCompactInterval time.Duration
	// MaxBatchDelay holds a root's write group open for more writers.
	// Default 0 (group whatever queued during the previous fsync).
	MaxBatchDelay time.Duration
	// History and log windows; see kv.Options for their defaults.
	HistoryDuration time.Duration
	HistoryBytes    int64
	LogDuration     time.Duration
	LogBytes        int64
	// BlockCache is the size of Pebble's block cache. Default 256 MiB.
	BlockCache int64
	// MemTable is the size of Pebble's memtable. Default 32 MiB.
	MemTable int64
	// ReadCache is the memory of the cache of latest versions in front of
	// Pebble. Default 64 MiB; negative: none.
	ReadCache int64
	// BlobMinSize is the size from which Pebble keeps values in blob files
	// (kv.Options.BlobMinSize). Default 1 KiB; negative: never.
	BlobMinSize int
	// TrimInterval is how often history and log are trimmed. Default 10s.
	TrimInterval time.Duration
	// Heartbeat is the interval of heartbeats to children. Default 1s.
	Heartbeat time.Duration
	// StallTimeout moves a replica to another upstream after this long
	// without a frame. Default 30s.
	StallTimeout time.Duration
	// SnapshotRate bounds the bytes/s of snapshots served to children
	// (default 128 MiB/s); SnapshotConcurrency the transfers at once
	// (default 2).
	SnapshotRate        int64
	SnapshotConcurrency int
	// Limits bound keys, values and batches.
	Limits argent.Limits

	// TLS, when its files are named, serves the listen address and the
	// RESP port over TLS and makes requests to other nodes over mutual
	// TLS; a request under /internal/ then needs a client certificate
	// signed by the CA.
	TLS tlsconf.Files

	// AuthFile, if set, is the TOML file of bearer tokens and their rights
	// that the client API and the RESP port check (internal/auth;
	// docs/SECURITY.md). SIGHUP reloads it. Default: nothing is checked.
	AuthFile string
	// TokenRate bounds each token's requests per second (RESP: commands),
	// with bursts of TokenBurst (default: one second's worth). Default 0:
	// no bound. Only with AuthFile.
	TokenRate  float64
	TokenBurst int

	// MaxConnections bounds the connections open at once on the listen
	// address and, separately, on the RESP port. Default 0: no bound.
	MaxConnections int
	// MaxInFlight bounds the client API requests served at once, watch
	// streams aside. Default 0: no bound.
	MaxInFlight int
	// MaxWatchers bounds the watch streams open at once. Default 0: no
	// bound.
	MaxWatchers int
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// HTTP connection. Default 2 min.
	IdleTimeout time.Duration

	// Pprof serves Go's profiler under /debug/pprof/ on the listen address.
	// Default off.
	Pprof bool

	// FS is the file system for the store. Default: the OS's.
	FS     vfs.FS
	Logger *slog.Logger
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch c.Role {
	case RoleRoot:
		if len(c.Upstreams) > 0 {
			return fmt.Errorf("node: a root takes no upstream")
		}
		if err := validateGroup(c.GroupID, c.GroupPeers); err != nil {
			return err
		}
	case RoleReplica, RoleProxy, RoleRelay:
		if len(c.Upstreams) == 0 {
			return fmt.Errorf("node: a %s needs at least one --upstream", c.Role)
		}
		if c.Role == RoleProxy && c.CacheSize <= 0 {
			return fmt.Errorf("node: a proxy needs --cache-size")
		}
		for _, u := range c.Upstreams {
			if u == c.Listen {
				return fmt.Errorf("node: upstream %s is this node's own address", u)
			}
		}
	default:
		return fmt.Errorf("node: unknown role %q", c.Role)
	}
	switch {
	case c.Role == RoleRelay && c.DataDir != "":
		return fmt.Errorf("node: a relay keeps nothing on disk: it takes no --data")
	case c.Role == RoleRelay && c.LogBuffer < 0:
		return fmt.Errorf("node: --log-buffer must not be negative")
	case c.Role != RoleRelay && c.DataDir == "":
		return fmt.Errorf("node: --data is required")
	}
	if c.Listen == "" {
		return fmt.Errorf("node: --listen is required")
	}
	if err := c.TLS.ValidateNode(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// inGroup reports whether the root is a member of a root group.
func (c *Config) inGroup() bool { return len(c.GroupPeers) > 0 }

// Node is a running argent node.
type Node struct {
	cfg      Config
	store    *kv.Store         // root and replica
	pcache   *proxycache.Cache // proxy
	proxy    *proxy.Proxy      // proxy
	relay    *relay.Relay      // relay
	nodeID   string
	reg      *prometheus.Registry
	ln       net.Listener
	srv      *http.Server
	lane     *fastlane.Listener // in front of srv
	pullS    *pull.Server
	api      *api.Server
	resp     *resp.Server // nil without RESPListen
	respAddr string
	writes   writePath    // a root's: nil on other roles
	member   *groupMember // a root group member's: nil on a single root
	// follower is a replica's or proxy's side that faces its upstream;
	// nil on a root.
	follower follower
	tls      *tlsconf.Config // nil without TLS
	// diskFull reports a root's or replica's stop for want of disk space
	// (Config.MinFreeDisk), or a proxy's cache below its free-disk floor
	// (Config.FreeDiskFloor); nil on a relay.
	diskFull func() bool
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	fatal    *fatalSignal

	// ready latches once the node has reached its first state (see Ready).
	ready atomic.Bool

	clientsMu sync.Mutex
	clients   map[string]*client.Client // write forwarding, by upstream

	peersMu        sync.Mutex
	peerTransports []interface{ CloseIdleConnections() } // of peerClient's and hopClient's clients, closed at Close

	auth     *auth.Authorizer   // nil without Config.AuthFile
	stopAuth context.CancelFunc // ends the reloads on SIGHUP
}

// Start opens the store and starts serving. The node runs until Close.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TrimInterval == 0 {
		cfg.TrimInterval = 10 * time.Second
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	switch cfg.Role {
	case RoleProxy:
		return startProxy(ctx, cfg)
	case RoleRelay:
		return startRelay(ctx, cfg)
	}
	fatal := &fatalSignal{ch: make(chan struct{})}
	store, err := kv.Open(cfg.DataDir, &kv.Options{
		Logger:          cfg.Logger.With("role", cfg.Role, "listen", cfg.Listen),
		OnFatal:         fatal.set,
		FS:              cfg.FS,
		HistoryDuration: cfg.HistoryDuration,
		HistoryBytes:    cfg.HistoryBytes,
		LogDuration:     cfg.LogDuration,
		LogBytes:        cfg.LogBytes,
		CacheSize:       cfg.BlockCache,
		MemTableSize:    cfg.MemTable,
		LatestCache:     cfg.ReadCache,
		BlobMinSize:     cfg.BlobMinSize,
	})
	if err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	if cfg.Role == RoleRoot && !cfg.inGroup() {
		if _, err := store.InitDataset(); err != nil {
			store.Close()
			return nil, err
		}
	}
	n, err := newNode(cfg, store.NodeID())
	if err != nil {
		store.Close()
		return nil, err
	}
	n.store = store
	// A root's state is the dataset's, whatever its index: it is ready. A
	// group member is once the group has its dataset ID.
	n.ready.Store(cfg.Role == RoleRoot && !cfg.inGroup())
	n.fatal = fatal

	pm := pull.NewMetrics(n.reg)
	n.pullS = pull.NewServer(pull.ServerConfig{Source: store, NodeID: n.nodeID, Root: n, Heartbeat: cfg.Heartbeat,
		SnapshotRate: cfg.SnapshotRate, SnapshotConcurrency: cfg.SnapshotConcurrency, Metrics: pm, Logger: n.log})
	n.registerGauges()

	ctx, n.cancel = context.WithCancel(ctx)
	mux := http.NewServeMux()
	switch {
	case cfg.Role == RoleRoot && cfg.inGroup():
		if err := n.startGroup(ctx, store, mux, pm); err != nil {
			n.cancel()
			n.ln.Close()
			store.Close()
			return nil, err
		}
	case cfg.Role == RoleRoot:
		r := root.New(store, root.Config{MaxDelay: cfg.MaxBatchDelay, MaxGroupBytes: cfg.MergeBytes,
			MaxGroupBatches: cfg.MergeBatches, MinFreeDisk: cfg.MinFreeDisk, OnCommit: n.commitObserver()})
		n.writes = r
		n.diskFull = r.DiskFull
		n.goRun(func() { _ = r.Run(ctx) })
	case cfg.Role == RoleReplica:
		r := replica.New(store, replica.Config{
			NodeID: n.nodeID, Addr: n.Addr(), DC: cfg.DC, Upstreams: cfg.Upstreams, Client: n.pullClient(),
			StallTimeout: cfg.StallTimeout, Heartbeat: cfg.Heartbeat, Metrics: pm, Logger: n.log,
			MinFreeDisk: cfg.MinFreeDisk,
		})
		n.follower = r
		n.diskFull = r.DiskFull
		n.goRun(func() { _ = r.Run(ctx) })
	}
	n.goRun(func() { n.trimLoop(ctx) })

	n.pullS.Register(mux)
	lk, err := lookup.NewServer(store, &lookup.Config{Limits: cfg.Limits, Logger: n.log})
	if err != nil {
		n.cancel()
		n.wg.Wait()
		n.ln.Close()
		store.Close()
		return nil, err
	}
	lk.Register(mux)
	n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "argent_lookup_keys_total", Help: "Keys proxies and relays looked up at this node (misses resolved here).",
	}, func() float64 { return float64(lk.KeysLookedUp()) }))
	return n.serve(ctx, mux)
}

// newNode returns a Node of any role with its ID, logger, metrics registry
// (with the Go and process collectors) and listener; the caller adds the
// role's store and engines.
func newNode(cfg Config, id [16]byte) (*Node, error) {
	n := &Node{
		cfg:     cfg,
		nodeID:  fmt.Sprintf("%x", id[:8]),
		reg:     prometheus.NewRegistry(),
		clients: make(map[string]*client.Client),
	}
	n.log = cfg.Logger.With("role", cfg.Role, "node", n.nodeID, "listen", cfg.Listen)
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.TLS.Enabled() {
		t, err := tlsconf.Load(cfg.TLS, n.log, tlsconf.NewMetrics(n.reg))
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.tls = t
	}
	if err := n.openAuth(); err != nil {
		return nil, fmt.Errorf("node: --auth: %w", err)
	}
	// The bound on connections counts them before any TLS handshake.
	ln, err := n.listen(cfg.Listen, func(ln net.Listener) net.Listener {
		return limit.NewListener(ln, cfg.MaxConnections, rejectHTTP, limit.NewRefusals(n.reg))
	})
	if err != nil {
		n.closeAuth()
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	n.ln = ln
	return n, nil
}

// serve starts the HTTP API (with the handlers of mux behind it) and the
// RESP port.
func (n *Node) serve(ctx context.Context, mux *http.ServeMux) (*Node, error) {
	cfg := n.cfg
	ln := n.ln
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ui.Register(mux, n.Addr(), n.statusWalker())
	n.api = api.New(n, api.Options{Registry: n.reg, Logger: n.log, Fallback: mux, Auth: n.auth,
		MaxInFlight: cfg.MaxInFlight, MaxWatchers: cfg.MaxWatchers})
	h := n.handler(n.api)
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = 2 * time.Minute
	}
	n.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	if n.tls != nil {
		// The fast lane hands connections off wrapped: net/http does not
		// see their TLS state by itself.
		n.srv.ConnContext = tlsconf.ConnContext
	}
	// The hot API requests take the fast lane; every other connection is
	// handed to n.srv. With TLS, ln hands the lane handshaken *tls.Conns.
	n.lane = fastlane.New(ln, h, fastlane.Options{Eligible: n.laneEligible, Logger: n.log, IdleTimeout: idle})
	n.goRun(func() {
		if err := n.lane.Serve(); err != nil {
			n.log.Error("serve fast lane", "err", err)
		}
	})
	n.goRun(func() {
		// The lane closes first on Close, so Serve may see it closed.
		if err := n.srv.Serve(n.lane); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Error("serve", "err", err)
		}
	})
	if cfg.RESPListen != "" {
		rln, err := n.listen(cfg.RESPListen, nil)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("node: listen for RESP: %w", err)
		}
		n.resp, n.respAddr = resp.New(n, n.log, n.reg), rln.Addr().String()
		if n.auth != nil {
			n.resp.RequireAuth(n.auth)
		}
		n.resp.SetMaxConnections(cfg.MaxConnections)
		// The event loops read sockets themselves and cannot run TLS: TLS
		// connections get a goroutine each.
		serveRESP := n.resp.Serve
		if n.tls != nil {
			serveRESP = n.resp.ServeConns
		}
		n.goRun(func() {
			if err := serveRESP(rln); err != nil {
				n.log.Error("serve RESP", "err", err)
			}
		})
	}
	n.startTLSWatch(ctx)
	n.warnPlain()
	n.log.Info("node started", "dataset", n.dataset(), "applied", n.applied(), "tls", n.tls != nil)
	return n, nil
}

func (n *Node) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// Addr returns the address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// RESPAddr returns the address of the RESP port, or "" without one.
func (n *Node) RESPAddr() string {
	return n.respAddr
}

// NodeID returns the node's ID.
func (n *Node) NodeID() string { return n.nodeID }

// Registry returns the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Close stops serving and closes the store.
func (n *Node) Close() error {
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n.cancel()
	if n.resp != nil {
		n.resp.Close()
	}
	if n.api != nil {
		n.api.Close() // ends watch streams
	}
	if n.relay != nil {
		n.relay.Close() // ends children's log and miss streams
	}
	if n.pullS != nil {
		n.pullS.Close() // ends children's streams
	}
	if n.lane != nil {
		_ = n.lane.Close() // ends fast-lane connections; handed-off ones are srv's
	}
	if err := n.srv.Shutdown(shutCtx); err != nil {
		// Long-lived streams (watch, children) do not end by themselves.
		_ = n.srv.Close()
	}
	n.wg.Wait()
	n.closePeerClients()
	n.closeAuth()
	switch {
	case n.pcache != nil:
		return n.pcache.Close()
	case n.store != nil:
		return n.store.Close()
	}
	return nil
}

// fatalSignal is raised once when the node's storage fails (see
// kv.Options.OnFatal).
type fatalSignal struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func (f *fatalSignal) set(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.ch)
	})
}

// Failed returns a channel that is closed when the node's storage failed:
// it refuses writes from then on and must be stopped (Close) and restarted.
// Its error is FailedErr.
func (n *Node) Failed() <-chan struct{} {
	if n.fatal == nil {
		return nil // a proxy: its cache is not the source of any acknowledgement
	}
	return n.fatal.ch
}

// FailedErr returns why Failed was closed, or nil.
func (n *Node) FailedErr() error {
	if n.fatal == nil {
		return nil
	}
	select {
	case <-n.fatal.ch:
		return n.fatal.err
	default:
		return nil
	}
}

// Store returns the node's store.
func (n *Node) Store() *kv.Store { return n.store }

// Reader implements api.Backend: a root and a replica read their store, a
// proxy its window, cache, filter and replicas.
func (n *Node) Reader() api.Reader {
	if n.proxy != nil {
		return n.proxy
	}
	return n.store
}

// FilterInstalled reports whether a proxy has its negative-lookup filter
// (it then answers absent keys itself); true for other roles.
func (n *Node) FilterInstalled() bool { return n.proxy == nil || n.proxy.FilterInstalled() }

// served returns the index reads are served at and its root commit time.
func (n *Node) served() (argent.Index, int64) {
	if n.proxy != nil {
		st := n.proxy.State()
		return st.Index, st.Time
	}
	if n.relay != nil {
		st := n.relay.Ring().State()
		return st.Index, st.Time
	}
	st := n.store.State()
	return st.Index, st.Time
}

func (n *Node) applied() argent.Index { i, _ := n.served(); return i }

func (n *Node) dataset() argent.DatasetID {
	if n.pcache != nil {
		return n.pcache.Dataset()
	}
	if n.relay != nil {
		return n.relay.Ring().Dataset()
	}
	return n.store.Dataset()
}

// Limits implements api.Backend.
func (n *Node) Limits() argent.Limits { return n.cfg.Limits }

// Tier implements api.Backend.
func (n *Node) Tier() string { return n.cfg.Role }

// Ready implements api.Readiness. A root is always ready. A replica or
// proxy is ready once it has reached its first state: it has a dataset ID
// and either an applied index above 0 (entries applied, a snapshot loaded,
// or a store that had them before a restart), or an upstream that said the
// dataset is empty (its root index and applied index 0). Once ready it stays
// so: a later snapshot load answers 503 unavailable by itself.
func (n *Node) Ready() error {
	if n.ready.Load() {
		return nil
	}
	if n.dataset().IsZero() || n.follower != nil && n.applied() == 0 && !n.follower.EmptyUpstream() ||
		n.member != nil && !n.member.g.Replayed() {
		return api.ErrNotReady
	}
	n.ready.Store(true)
	return nil
}

var _ api.Readiness = (*Node)(nil)

func (n *Node) trimLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.TrimInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for ctx.Err() == nil {
			r, err := n.store.Trim()
			if err != nil {
				n.log.Error("trim", "err", err)
				break
			}
			if !r.Progress() {
				break
			}
		}
	}
}

// dataDirError explains a store that would not open because its data
// directory is locked: Pebble holds DIR/LOCK while a store is open, and a
// second node on the directory (another process, or this one) gets the bare
// "resource temporarily unavailable" of fcntl. Other errors pass unchanged.
func dataDirError(dir string, err error) error {
	lock := filepath.Join(dir, "LOCK")
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
		return fmt.Errorf("node: data directory %s is in use by another process (lock held on %s): %w", dir, lock, err)
	case strings.Contains(err.Error(), "lock held by current process"): // Pebble's own check, within a process
		return fmt.Errorf("node: data directory %s is in use by another node of this process (lock held on %s): %w", dir, lock, err)
	}
	return err
}

// laneEligible says which requests the fast lane serves: the client API's
// hot ones, and the lookups other nodes send on a miss (a proxy's L2
// requests to the owner of a shard, a proxy's or relay's lookups at a
// replica), whose latency is a read's.
func (n *Node) laneEligible(method, path string) bool {
	switch {
	case n.proxy != nil && path == proxy.L2Path:
		return true
	case n.store != nil && path == lookup.LookupPath:
		return true
	}
	return api.LaneEligible(method, path)
}

// Role returns the node's role: RoleRoot, RoleReplica, RoleProxy or
// RoleRelay.
func (n *Node) Role() string { return n.cfg.Role }
