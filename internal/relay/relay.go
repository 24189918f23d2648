// Package relay is a data center's relay (Quicksilver v2): a node with
// nothing durable that sits between the proxies of one DC and their
// replicas. It
//
//   - follows one of its upstream replicas' log into a Ring (a bounded
//     in-memory log buffer, every entry checked by index and chain hash)
//     and serves the pull protocol to its proxies from it, passing on the
//     root's clock from its upstream's heartbeats;
//   - answers the lookup protocol of internal/lookup (lookups, scans, the
//     filter) from its upstream replicas, sharing one upstream lookup
//     between concurrent requests for the same key at the same index, and
//     asking a many-key request's keys in one upstream request;
//   - publishes every miss it resolved on the DC's miss stream
//     (internal/dcstream), so every proxy of the DC can insert it.
//
// A relay's answers are its replicas' answers, passed through: a replica
// behind the index asked for answers as of its own index A, and the relay
// says A, never the index asked for.
//
//	rl, err := relay.New(relay.Config{NodeID: id, Upstreams: []string{"10.0.0.7:7401"}})
//	rl.Register(mux)
//	go rl.Run(ctx)
//	defer rl.Close()
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/dcstream"
	"github.com/argent-kv/argent/internal/hop"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/wire"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// Role is the role a relay reports to its upstreams and in its status.
const Role = "relay"

// Config configures a Relay. The zero value of each field means its
// default.
type Config struct {
	// NodeID is the relay's node ID; Addr its listen address and DC its
	// data center, reported to its upstreams.
	NodeID, Addr, DC string
	// Upstreams are the replicas the relay follows and asks, in order of
	// preference. Required.
	Upstreams []string
	// LogBuffer bounds the bytes of log entries the relay keeps for its
	// children. Default 64 MiB.
	LogBuffer int64
	// Limits bound the keys asked for. Default: argent's defaults.
	Limits argent.Limits
	// LookupTimeout bounds one upstream lookup, failovers included.
	// Default 5 s.
	LookupTimeout time.Duration
	// FilterMaxAge is how long a filter fetched from a replica is served
	// again to the DC's proxies. Default 2 s.
	FilterMaxAge time.Duration
	// Heartbeat is the interval of heartbeats to children (and what the
	// relay expects of its upstreams). Default 1 s.
	Heartbeat time.Duration
	// StallTimeout moves to another upstream after this long without a
	// frame. Default 30 s.
	StallTimeout time.Duration
	// HTTPClient sends lookups, scans and filter requests to the
	// upstreams: one pool of kept-alive connections. Default: one over
	// hop.Transport, which keeps the round trip on the caller's goroutine.
	HTTPClient *http.Client
	// Transport reaches the upstreams' log. Default: HTTP.
	Transport pull.Transport
	// Hub configures the miss stream; its Dataset is the relay's.
	Hub         dcstream.HubOptions
	PullMetrics *pull.Metrics
	Logger      *slog.Logger
}

// Stats counts a relay's lookups.
type Stats struct {
	Lookups         atomic.Uint64 // keys asked by children
	UpstreamLookups atomic.Uint64 // keys asked at replicas, after sharing
	Shared          atomic.Uint64 // keys that shared another request's lookup
	// Corrupt counts upstream answers refused as damaged in transit
	// (package wirecheck).
	Corrupt atomic.Uint64
}

// Relay is a running relay. Its methods are safe for concurrent use.
type Relay struct {
	cfg      Config
	ring     *Ring
	clock    *pull.HeartbeatClock
	follower *pull.Follower
	server   *pull.Server
	hub      *dcstream.Hub
	ups      *upstreams
	checked  *http.Client // cfg.HTTPClient, answers checksummed
	filters  *filterCache
	stats    Stats

	flightMu sync.Mutex
	flights  map[flightKey]*flight
}

// New returns a Relay. Call Run to follow the log, and Register to serve.
func New(cfg Config) (*Relay, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, fmt.Errorf("%w: relay: no upstreams", argent.ErrInvalid)
	}
	if cfg.LogBuffer == 0 {
		cfg.LogBuffer = 64 << 20
	}
	if cfg.LogBuffer < 0 {
		return nil, fmt.Errorf("%w: relay: log buffer %d is negative", argent.ErrInvalid, cfg.LogBuffer)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 5 * time.Second
	}
	if cfg.FilterMaxAge <= 0 {
		cfg.FilterMaxAge = 2 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &hop.Transport{}}
	}
	if cfg.PullMetrics == nil {
		cfg.PullMetrics = pull.NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rl := &Relay{cfg: cfg, flights: make(map[flightKey]*flight)}
	rl.checked = wirecheck.Client(cfg.HTTPClient, wirecheck.Transport{OnCorrupt: rl.corrupt})
	ups, err := newUpstreams(cfg.Upstreams, cfg.HTTPClient, cfg.Limits, rl.corrupt)
	if err != nil {
		return nil, err
	}
	rl.ups = ups
	rl.ring = NewRing(int(min(cfg.LogBuffer, int64(^uint(0)>>1))), rl.fetchState)
	rl.filters = &filterCache{maxAge: cfg.FilterMaxAge, now: time.Now}
	rl.clock = pull.NewHeartbeatClock(cfg.Heartbeat, func() (argent.Index, int64) {
		st := rl.ring.State()
		return st.Index, st.Time
	})
	hubOpts := cfg.Hub
	hubOpts.Dataset = rl.ring.Dataset
	if hubOpts.Logger == nil {
		hubOpts.Logger = cfg.Logger
	}
	rl.hub = dcstream.NewHub(hubOpts)
	rl.server = pull.NewServer(pull.ServerConfig{
		Source: rl.ring.Source(), NodeID: cfg.NodeID, Root: rl.clock, Heartbeat: cfg.Heartbeat,
		// A replica needs snapshots and history a relay does not keep; a
		// root follows no one.
		RefuseRoles: []string{"replica", "root"},
		Metrics:     cfg.PullMetrics, Logger: cfg.Logger,
	})
	rl.follower = pull.NewFollower(pull.FollowerConfig{
		Target: rl.ring, NodeID: cfg.NodeID, Addr: cfg.Addr, Role: Role, DC: cfg.DC, Upstreams: cfg.Upstreams,
		StallTimeout: cfg.StallTimeout, Transport: cfg.Transport, OnHeartbeat: rl.heard,
		Metrics: cfg.PullMetrics, Logger: cfg.Logger,
	})
	return rl, nil
}

// corrupt counts and logs an upstream answer damaged in transit.
func (rl *Relay) corrupt(_ *http.Request, err error) {
	rl.stats.Corrupt.Add(1)
	rl.cfg.Logger.Warn("relay: refused an upstream answer damaged in transit", "err", err)
}

// heard takes a heartbeat from the upstream: the root's clock, passed on
// to the children, and whether the dataset is empty.
func (rl *Relay) heard(h wire.Heartbeat) {
	rl.clock.Heard(h)
	if h.RootIndex == 0 && h.Applied == 0 {
		rl.ring.MarkEmpty()
	}
}

// Run follows the upstreams' log until ctx ends.
func (rl *Relay) Run(ctx context.Context) error { return rl.follower.Run(ctx) }

// Close ends the children's log and miss streams.
func (rl *Relay) Close() {
	rl.server.Close()
	rl.hub.Close()
}

// Register adds the relay's routes to mux: the pull protocol (log only),
// the lookup protocol (lookups, scans, filter) and the miss stream.
func (rl *Relay) Register(mux *http.ServeMux) {
	rl.server.Register(mux)
	mux.Handle(lookup.LookupPath, wirecheck.Handler(http.HandlerFunc(rl.serveLookup)))
	mux.Handle(lookup.ScanPath, wirecheck.Handler(http.HandlerFunc(rl.serveScan)))
	mux.Handle(lookup.FilterPath, wirecheck.Handler(http.HandlerFunc(rl.serveFilter)))
	mux.Handle(dcstream.Path, rl.hub)
}

// admit refuses a request the relay cannot answer for: while it has no
// dataset yet (503), or one of another dataset (409). It returns the
// relay's dataset, which its upstream requests carry.
func (rl *Relay) admit(r *http.Request) (argent.DatasetID, error) {
	ours := rl.ring.Dataset()
	if ours.IsZero() {
		return ours, fmt.Errorf("%w: relay: no data yet", argent.ErrUnavailable)
	}
	if v := r.Header.Get(lookup.HeaderDataset); v != "" {
		theirs, err := argent.ParseDatasetID(v)
		if err != nil {
			return ours, fmt.Errorf("relay: %s header: %w", lookup.HeaderDataset, err)
		}
		if theirs != ours {
			return ours, fmt.Errorf("%w: relay: asked for dataset %s, this relay serves %s", argent.ErrDatasetMismatch, theirs, ours)
		}
	}
	return ours, nil
}

// Ring returns the relay's log buffer.
func (rl *Relay) Ring() *Ring { return rl.ring }

// Stats returns the relay's lookup counters.
func (rl *Relay) Stats() *Stats { return &rl.stats }

// HubStats returns the miss stream's counters.
func (rl *Relay) HubStats() dcstream.HubStats { return rl.hub.Stats() }

// Children lists the connected children.
func (rl *Relay) Children() []pull.ChildInfo { return rl.server.Children() }

// PullServer returns the server of the relay's children.
func (rl *Relay) PullServer() *pull.Server { return rl.server }

// Upstream returns the upstream whose log the relay follows now.
func (rl *Relay) Upstream() string { return rl.follower.Upstream() }

// Root implements pull.RootClock: what the relay heard of the root.
func (rl *Relay) Root() (argent.Index, int64) { return rl.clock.Root() }

// RootSent implements pull.RootClock.
func (rl *Relay) RootSent() int64 { return rl.clock.RootSent() }

// Lag returns how far the relay's log is behind the root.
func (rl *Relay) Lag() (uint64, float64) { return rl.clock.Lag() }

// EmptyUpstream reports that an upstream said the dataset is empty.
func (rl *Relay) EmptyUpstream() bool { return rl.clock.EmptyUpstream() }
