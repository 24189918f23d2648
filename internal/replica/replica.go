// Package replica is the replica role: a full copy of the dataset in a
// kv.Store, kept up to date from an upstream (the root or another replica)
// over the pull protocol.
//
// A Replica drives a pull.Follower for its store. The Follower speaks the
// protocol (streams, frames, checks, the choice of an upstream, the stall
// watchdog); the Replica is the pull.Target it applies to: entries go into
// the store in groups, each one kv.Writer committed with one fsync before
// the new index is served, and when the upstream's log no longer holds the
// next index the Replica loads a snapshot into the store, resuming a load
// that was cut. It also keeps what it heard of the root, for its lag.
//
// Serving the log and snapshots to the replica's own children is the
// pull.Server's, over the same store; the node wires both.
//
//	r := replica.New(store, replica.Config{NodeID: id, Upstreams: []string{"root:7400"}})
//	go r.Run(ctx)
//	idx, secs := r.Lag()
package replica

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
)

// Role is the role a Replica reports to its parents.
const Role = "replica"

// Config configures a Replica. Zero fields take the defaults noted.
type Config struct {
	// NodeID is this node's ID, sent to parents (which refuse to feed a
	// node its own log).
	NodeID string
	// Addr is this node's own listen address and DC its data center,
	// reported to parents for their status and for discovery.
	Addr, DC string
	// Upstreams are the parents to pull from, in order of preference.
	Upstreams []string
	// StallTimeout moves to another upstream after this long without a
	// frame. Default 30s.
	StallTimeout time.Duration
	// MaxGroup bounds the entries applied in one fsynced commit.
	// Default 4096.
	MaxGroup int
	// Heartbeat is the upstreams' heartbeat interval; a silence of more
	// than three counts as lag. Default 1s.
	Heartbeat time.Duration
	// Client makes the requests of the default transport. Default: a
	// client with no overall timeout.
	Client *http.Client
	// Transport reaches the upstreams. Default: pull.NewHTTPTransport(Client).
	// Tests pass a pull.InmemTransport.
	Transport pull.Transport
	// Metrics are the protocol's metrics, which also count this replica's
	// snapshot loads. Default: unregistered.
	Metrics *pull.Metrics
	// Logger gets the replica's and its Follower's log lines. Default:
	// none.
	Logger *slog.Logger
	// MinFreeDisk is the floor of free bytes on the store's disk below
	// which the replica stops applying entries (it keeps serving the state
	// it has) rather than let Pebble meet a full disk, which stops the
	// node; it applies them again once space returns. Default 0: no floor.
	MinFreeDisk uint64
}

// Replica keeps a store up to date with its upstreams. Make one with New
// and call Run.
type Replica struct {
	store  *kv.Store
	cfg    Config
	follow *pull.Follower
	heard  *pull.HeartbeatClock
	// diskFull is set while the disk is below MinFreeDisk.
	diskFull atomic.Bool
}

// DiskFull reports whether the replica stopped applying entries because
// its disk has less free space than Config.MinFreeDisk.
func (r *Replica) DiskFull() bool { return r.diskFull.Load() }

// New returns a Replica of store. The store may be empty (it adopts the
// dataset of its first upstream), hold a cut snapshot load (which resumes),
// or be a replica's store from before a restart (which goes on from its
// applied index).
func New(store *kv.Store, cfg Config) *Replica {
	if cfg.Metrics == nil {
		cfg.Metrics = pull.NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replica{store: store, cfg: cfg}
	r.heard = pull.NewHeartbeatClock(cfg.Heartbeat, func() (argent.Index, int64) {
		st := store.State()
		return st.Index, st.Time
	})
	r.follow = pull.NewFollower(pull.FollowerConfig{
		Target:       (*storeTarget)(r),
		NodeID:       cfg.NodeID,
		Addr:         cfg.Addr,
		Role:         Role,
		DC:           cfg.DC,
		Upstreams:    cfg.Upstreams,
		StallTimeout: cfg.StallTimeout,
		MaxGroup:     cfg.MaxGroup,
		Client:       cfg.Client,
		Transport:    cfg.Transport,
		OnHeartbeat:  r.heard.Heard,
		Metrics:      cfg.Metrics,
		Logger:       cfg.Logger,
	})
	return r
}

// Run follows the upstreams until ctx ends; it returns nil then. It fails
// at once when there is no upstream.
func (r *Replica) Run(ctx context.Context) error { return r.follow.Run(ctx) }

// Store returns the replica's store.
func (r *Replica) Store() *kv.Store { return r.store }

// Upstream returns the upstream followed now (or last), "" before the
// first; a replica forwards writes to it.
func (r *Replica) Upstream() string { return r.follow.Upstream() }

// Connected reports whether a log stream is open now.
func (r *Replica) Connected() bool { return r.follow.Connected() }

// Root returns the newest root index known and its commit time (see
// pull.HeartbeatClock.Root). With RootSent it is the pull.RootClock of the
// replica's own children.
func (r *Replica) Root() (argent.Index, int64) { return r.heard.Root() }

// RootSent returns the root's clock in the newest heartbeat heard.
func (r *Replica) RootSent() int64 { return r.heard.RootSent() }

// Lag returns how far the store's applied state is behind the root, in
// indexes and in seconds (see pull.HeartbeatClock.Lag).
func (r *Replica) Lag() (indexes uint64, seconds float64) { return r.heard.Lag() }

// EmptyUpstream reports whether an upstream said the dataset is empty, so
// that index 0 is the dataset's state and the replica is at it.
func (r *Replica) EmptyUpstream() bool { return r.heard.EmptyUpstream() }

var _ pull.RootClock = (*Replica)(nil)
