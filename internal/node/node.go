// Package node wires one argent node together: the store, the role's
// engine (the root's write path or a replica's follower), the node-to-node
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
	"net/url"
	"path/filepath"
	"sort"
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
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/fastlane"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/proxycache"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/resp"
	"github.com/argent-kv/argent/internal/root"
	"github.com/argent-kv/argent/internal/wire"
)

// The roles a node can run.
const (
	RoleRoot    = "root"
	RoleReplica = "replica"
	RoleProxy   = "proxy"
)

// Config is a node's configuration. Zero fields take the defaults noted.
type Config struct {
	Role    string // RoleRoot or RoleReplica
	DataDir string // Pebble directory
	Listen  string // client API, node-to-node streams and /metrics
	// RESPListen, if set, serves the Redis protocol (RESP2) read port
	// there: GET, MGET, EXISTS, SCAN, INFO, and SET/DEL forwarded as writes.
	RESPListen string
	// Upstreams are a replica's parents, in order of preference; a proxy's
	// replicas, which feed it the log and resolve its misses.
	Upstreams []string

	// DC names the node's data center; proxies resolve misses at replicas
	// of their own DC first.
	DC string

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
	case RoleReplica, RoleProxy:
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
	if c.DataDir == "" {
		return fmt.Errorf("node: --data is required")
	}
	if c.Listen == "" {
		return fmt.Errorf("node: --listen is required")
	}
	return nil
}

// Node is a running argent node.
type Node struct {
	cfg      Config
	store    *kv.Store         // root and replica
	pcache   *proxycache.Cache // proxy
	proxy    *proxy.Proxy      // proxy
	nodeID   string
	reg      *prometheus.Registry
	ln       net.Listener
	srv      *http.Server
	lane     *fastlane.Listener // in front of srv
	pullS    *pull.Server
	api      *api.Server
	resp     *resp.Server // nil without RESPListen
	respAddr string
	root     *root.Root     // root only
	follow   *pull.Follower // replica only
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	fatal    *fatalSignal

	// rootClock: newest root index and commit time heard (replicas).
	rootIdx   atomic.Uint64
	rootTime  atomic.Int64
	lastHeard atomic.Int64 // Unix ns of the last heartbeat
	rootSent  atomic.Int64 // the root's clock in the newest heartbeat heard
	pathDelay atomic.Int64 // ns between the root sending it and this node hearing it
	started   time.Time

	// ready latches once the node has reached its first state (see Ready);
	// emptyUpstream records an upstream that said the dataset is empty.
	ready         atomic.Bool
	emptyUpstream atomic.Bool

	clientsMu sync.Mutex
	clients   map[string]*client.Client // write forwarding, by upstream
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
	if cfg.Role == RoleProxy {
		return startProxy(ctx, cfg)
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
	})
	if err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	if cfg.Role == RoleRoot {
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
	// A root's state is the dataset's, whatever its index: it is ready.
	n.ready.Store(cfg.Role == RoleRoot)
	n.fatal = fatal

	pm := pull.NewMetrics(n.reg)
	n.pullS = pull.NewServer(pull.ServerConfig{Store: store, NodeID: n.nodeID, Root: n, Heartbeat: cfg.Heartbeat,
		SnapshotRate: cfg.SnapshotRate, SnapshotConcurrency: cfg.SnapshotConcurrency, Metrics: pm, Logger: n.log})
	n.registerGauges()

	ctx, n.cancel = context.WithCancel(ctx)
	switch cfg.Role {
	case RoleRoot:
		n.root = root.New(store, root.Config{MaxDelay: cfg.MaxBatchDelay, OnCommit: n.commitObserver()})
		n.goRun(func() { _ = n.root.Run(ctx) })
	case RoleReplica:
		n.follow = pull.NewFollower(pull.FollowerConfig{
			Store: store, NodeID: n.nodeID, Addr: n.Addr(), Role: cfg.Role, DC: cfg.DC, Upstreams: cfg.Upstreams,
			StallTimeout: cfg.StallTimeout, OnHeartbeat: n.heard, Metrics: pm, Logger: n.log,
		})
		n.goRun(func() { _ = n.follow.Run(ctx) })
	}
	n.goRun(func() { n.trimLoop(ctx) })

	mux := http.NewServeMux()
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
	return n.serve(mux)
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
		started: time.Now(),
	}
	n.log = cfg.Logger.With("role", cfg.Role, "node", n.nodeID, "listen", cfg.Listen)
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	n.ln = ln
	return n, nil
}

// serve starts the HTTP API (with the handlers of mux behind it) and the
// RESP port.
func (n *Node) serve(mux *http.ServeMux) (*Node, error) {
	cfg := n.cfg
	ln := n.ln
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	n.api = api.New(n, api.Options{Registry: n.reg, Logger: n.log, Fallback: mux})
	n.srv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	// The hot API requests take the fast lane; every other connection is
	// handed to n.srv.
	n.lane = fastlane.New(ln, n.api, fastlane.Options{Eligible: api.LaneEligible, Logger: n.log})
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
		rln, err := net.Listen("tcp", cfg.RESPListen)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("node: listen for RESP: %w", err)
		}
		n.resp, n.respAddr = resp.New(n, n.log, n.reg), rln.Addr().String()
		n.goRun(func() {
			if err := n.resp.Serve(rln); err != nil {
				n.log.Error("serve RESP", "err", err)
			}
		})
	}
	n.log.Info("node started", "dataset", n.dataset(), "applied", n.applied())
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
	n.api.Close() // ends watch streams
	if n.pullS != nil {
		n.pullS.Close() // ends children's streams
	}
	_ = n.lane.Close() // ends fast-lane connections; handed-off ones are srv's
	if err := n.srv.Shutdown(shutCtx); err != nil {
		// Long-lived streams (watch, children) do not end by themselves.
		_ = n.srv.Close()
	}
	n.wg.Wait()
	if n.pcache != nil {
		return n.pcache.Close()
	}
	return n.store.Close()
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

// served returns the index reads are served at and its root commit time.
func (n *Node) served() (argent.Index, int64) {
	if n.proxy != nil {
		st := n.proxy.State()
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
	if n.dataset().IsZero() || n.applied() == 0 && !n.emptyUpstream.Load() {
		return api.ErrNotReady
	}
	n.ready.Store(true)
	return nil
}

var _ api.Readiness = (*Node)(nil)

// errNoUpstream is why a node that follows no upstream yet cannot forward
// a write.
var errNoUpstream = errors.New("not connected to any upstream yet")

// Write implements api.Backend: the root commits; a replica forwards the
// batch to its upstream, which forwards it on until it reaches the root.
func (n *Node) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	if err := n.cfg.Limits.CheckBatch(&b); err != nil {
		return 0, err
	}
	if n.root != nil {
		return n.root.Write(ctx, b)
	}
	up := n.follow.Upstream()
	if up == "" {
		return 0, &api.UpstreamError{Addr: strings.Join(n.cfg.Upstreams, ","), Err: errNoUpstream}
	}
	c, err := n.forwarder(up)
	if err != nil {
		return 0, err
	}
	idx, err := c.Txn(ctx, b)
	if err != nil {
		return 0, forwardError(ctx, up, err)
	}
	return idx, nil
}

// forwardError describes a write forwarded to up that failed with err. An
// answer up gave (a failed condition, its own 503 root_unreachable from
// further up the tree) passes on with its code. No answer at all (refused,
// cut, timed out) is an *api.UpstreamError, 503 root_unreachable, unless
// the writer went away first.
func forwardError(ctx context.Context, up string, err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ctx.Err() != nil {
		return fmt.Errorf("forward write to %s: %w", up, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		// The request may have reached the root before the link failed.
		err = fmt.Errorf("%w (no answer came back: the write may or may not have been applied)", err)
	}
	return &api.UpstreamError{Addr: up, Err: err}
}

// WriteAsync implements api.AsyncWriter: the root queues b for its next
// merge; a replica forwards it when waited on.
func (n *Node) WriteAsync(ctx context.Context, b argent.Batch) (func(context.Context) (argent.Index, error), error) {
	if n.root == nil {
		return func(ctx context.Context) (argent.Index, error) { return n.Write(ctx, b) }, nil
	}
	if err := n.cfg.Limits.CheckBatch(&b); err != nil {
		return nil, err
	}
	p, err := n.root.Submit(ctx, b)
	if err != nil {
		return nil, err
	}
	return p.Wait, nil
}

var _ api.AsyncWriter = (*Node)(nil)

func (n *Node) forwarder(up string) (*client.Client, error) {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	if c, ok := n.clients[up]; ok {
		return c, nil
	}
	c, err := client.New(up)
	if err != nil {
		return nil, fmt.Errorf("forward write to %s: %w", up, err)
	}
	n.clients[up] = c
	return c, nil
}

// Root implements pull.RootClock.
func (n *Node) Root() (argent.Index, int64) {
	si, st := n.served()
	if n.cfg.Role == RoleRoot {
		return si, st
	}
	ri, rt := argent.Index(n.rootIdx.Load()), n.rootTime.Load()
	if si > ri {
		return si, st
	}
	return ri, rt
}

// RootSent implements pull.RootClock: the root vouches for its index now;
// a replica passes on the root's clock from the latest heartbeat.
func (n *Node) RootSent() int64 {
	if n.cfg.Role == RoleRoot {
		return time.Now().UnixNano()
	}
	return n.rootSent.Load()
}

// heard records a heartbeat from the upstream.
func (n *Node) heard(h wire.Heartbeat) {
	now := time.Now().UnixNano()
	n.lastHeard.Store(now)
	if h.RootIndex == 0 && h.Applied == 0 {
		// The dataset is empty: index 0 is the root's state, and this
		// node (which adopted the dataset before hearing this) is at it.
		n.emptyUpstream.Store(true)
	}
	if h.RootSent > 0 && h.RootSent >= n.rootSent.Load() {
		n.rootSent.Store(h.RootSent)
		// How old the root's word is when it reaches this node: the delay
		// of the path from the root (plus clock skew between machines).
		n.pathDelay.Store(max(0, now-h.RootSent))
	}
	for {
		cur := n.rootIdx.Load()
		if uint64(h.RootIndex) < cur {
			return
		}
		if n.rootIdx.CompareAndSwap(cur, uint64(h.RootIndex)) {
			n.rootTime.Store(h.RootTime)
			return
		}
	}
}

// Lag returns how far the node's served state is behind the root: in
// indexes, and in seconds: the delay of the path from the root at the last
// heartbeat (a slow path delays entries and heartbeats alike), plus the root
// commit time of the newest root index known minus that of the applied
// index, plus, when the upstream has been silent for more than three
// heartbeats, the silence, since the node cannot know what the root did
// meanwhile.
func (n *Node) Lag() (indexes uint64, seconds float64) {
	if n.cfg.Role == RoleRoot {
		return 0, 0
	}
	si, stime := n.served()
	ri, rt := n.Root()
	var lag time.Duration
	if ri > si {
		indexes = uint64(ri - si)
		lag = time.Duration(rt - stime)
		if si == 0 || lag < 0 {
			lag = 0
		}
	}
	hb := n.cfg.Heartbeat
	if hb == 0 {
		hb = time.Second
	}
	lag += time.Duration(n.pathDelay.Load())
	if last := n.lastHeard.Load(); last == 0 {
		lag += time.Since(n.started)
	} else if silent := time.Since(time.Unix(0, last)); silent > 3*hb {
		lag += silent
	}
	return indexes, lag.Seconds()
}

// Status implements api.Backend.
func (n *Node) Status() apiwire.StatusResponse {
	ri, rt := n.Root()
	_, lag := n.Lag()
	s := apiwire.StatusResponse{
		Role:         n.cfg.Role,
		NodeID:       n.nodeID,
		AppliedIndex: n.applied(),
		RootIndex:    ri,
		LagSeconds:   lag,
		DC:           n.cfg.DC,
		Children:     []apiwire.StatusChild{},
	}
	if ds := n.dataset(); !ds.IsZero() {
		s.DatasetID = ds.String()
	}
	if n.follow != nil {
		s.Upstream = n.follow.Upstream()
	}
	if n.pullS == nil {
		return s
	}
	for _, c := range n.pullS.Children() {
		addr := c.Addr
		if addr == "" {
			addr = c.Remote
		}
		// What this node knows of a child: how far it has been sent, and how
		// old that is next to the root's newest commit.
		var lag float64
		if c.SentIndex < ri && c.SentTime > 0 {
			lag = max(0, time.Duration(rt-c.SentTime).Seconds())
		}
		s.Children = append(s.Children, apiwire.StatusChild{Addr: addr, NodeID: c.NodeID, Role: c.Role, DC: c.DC, AppliedIndex: c.SentIndex, LagSeconds: lag})
	}
	sort.Slice(s.Children, func(i, j int) bool { return s.Children[i].Addr < s.Children[j].Addr })
	return s
}

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
