// Package proxy is the proxy role's read side and log applier: a partial,
// persistent cache (proxycache), the sliding window of recent writes
// (window) and the negative-lookup filter (negfilter) kept current from the
// log, and misses resolved at replicas (lookup) at the proxy's own applied
// index. See docs/PROXY.md.
//
// Every read is answered as of one index S the proxy has applied and made
// durable, and equals the value at S (docs/CONTRACT.md promise 5): from the window
// when a batch it holds wrote the key at or below S, from the cache when the
// entry holds at S, absent when the filter says so, else from a replica
// asked for "key as of S". A replica behind S is believed only when the
// window proves the key did not change between the replica's index and S;
// otherwise the proxy asks another replica or waits, and fails when the
// wait runs out. A value fetched as of S enters the cache at S2 only if
// the window shows no write of the key in (S, S2]. A scan needs every key
// of a range, which the proxy does not hold: its page comes whole from a
// replica asked for the page as of S (see Scan).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/hop"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/negfilter"
	"github.com/argent-kv/argent/internal/proxycache"
	"github.com/argent-kv/argent/internal/window"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// Tiers name the layer that answered a read, for Argent-Tier.
const (
	TierWindow = "window"
	TierCache  = "cache"
	TierFilter = "filter"
	// TierL2 is a DC peer that owns the key's shard; TierL3 a replica (or
	// the relay in front of the DC's replicas) asked for a miss.
	TierL2 = "l2"
	TierL3 = "l3"
)

// Config configures a Proxy. The zero value of each optional field means
// its default.
type Config struct {
	// Cache is the proxy's persistent cache; the Proxy does not close it.
	Cache *proxycache.Cache
	// Replicas are the nodes misses are resolved at to begin with; the
	// proxy learns more from their status (see oracle).
	Replicas []string
	// DC is the proxy's data center: replicas of the same DC come first.
	DC string
	// DCPeers are the other proxies of the DC (addresses as they listen),
	// which share the DC-wide cache (L2) with this one; relays among the
	// replicas name more. Self is this proxy's own address in that form.
	// L2 is on when DC and Self are set.
	DCPeers []string
	Self    string
	// L2Timeout bounds one request to an L2 owner; an owner that fails is
	// skipped for a while and its keys are asked at L3. Default 250 ms.
	L2Timeout time.Duration
	// StatusInterval is how often the proxy asks the replicas it knows for
	// their status. Default 2 s.
	StatusInterval time.Duration
	// Window bounds the sliding window of recent writes.
	Window window.Options
	// LogBytes bounds the recent entries kept for watch streams. Default
	// 16 MiB.
	LogBytes int
	// MissWait bounds the time a read waits for a miss to resolve
	// (replicas down, or behind beyond what the window can prove).
	// Default 5 s.
	MissWait time.Duration
	// FilterInterval is how often the proxy checks whether its filter
	// needs a rebuild (or is missing). Default 10 s.
	FilterInterval time.Duration
	// HTTPClient makes the lookups and L2 asks. Default: one over
	// hop.Transport, which keeps the round trip on the caller's goroutine.
	HTTPClient *http.Client
	Limits     argent.Limits
	Logger     *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MissWait <= 0 {
		c.MissWait = 5 * time.Second
	}
	if c.LogBytes <= 0 {
		c.LogBytes = 16 << 20
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 2 * time.Second
	}
	if c.FilterInterval <= 0 {
		c.FilterInterval = 10 * time.Second
	}
	if c.L2Timeout <= 0 {
		c.L2Timeout = 250 * time.Millisecond
	}
	c.Limits = c.Limits.WithDefaults()
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &hop.Transport{}}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Proxy serves reads at its applied index and applies the log (see
// Target). It is safe for concurrent use.
type Proxy struct {
	cfg    Config
	cache  *proxycache.Cache
	win    *window.Window
	oracle *oracle
	ring   *logRing
	dc     *dcView // nil outside a data center
	door   *doorkeeper
	// checked is cfg.HTTPClient with answers checksummed, for L2 owners.
	checked *http.Client

	// applyMu orders the log applier against filter installs; last is the
	// state of the last entry applied to the cache, durable or not.
	applyMu sync.Mutex
	last    argent.State

	published atomic.Pointer[argent.State] // durable and served
	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced when published moves

	filter        atomic.Pointer[installedFilter]
	filterStale   chan struct{} // wakes RunFilter
	filterChecked atomic.Int64  // Unix ns of the last drift check
	filterRecheck atomic.Bool   // a drift check is scheduled (see checkFilter)

	flightMu sync.Mutex
	flights  map[flightKey]*flight

	stats Stats
}

// installedFilter is the negative-lookup filter with the index from which
// it has every present key: reads at S >= base may trust its "absent".
type installedFilter struct {
	f    *negfilter.Filter
	base argent.Index
}

// doorkeeperKeys sizes a DC proxy's doorkeeper: it remembers the last
// 64Ki to 128Ki keys asked of owners, in about 4 MiB.
const doorkeeperKeys = 64 << 10

// Stats counts reads by tier, for metrics, and the keys answered to DC
// peers as their L2 owner.
type Stats struct {
	Window, Cache, Filter, L2, L3, Admitted, Failed, L2Served atomic.Uint64
	// Prefetched counts the keys admitted from the DC's miss stream.
	Prefetched atomic.Uint64
	// Corrupt counts answers of replicas, relays and L2 owners refused as
	// damaged in transit (package wirecheck).
	Corrupt atomic.Uint64
}

// count adds a read answered by tier.
func (s *Stats) count(tier string, n uint64) {
	switch tier {
	case TierWindow:
		s.Window.Add(n)
	case TierCache:
		s.Cache.Add(n)
	case TierFilter:
		s.Filter.Add(n)
	case TierL2:
		s.L2.Add(n)
	case TierL3:
		s.L3.Add(n)
	}
}

// New returns a Proxy over cfg.Cache, at the cache's applied state.
func New(cfg Config) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if cfg.Cache == nil {
		return nil, errors.New("proxy: no cache")
	}
	if len(cfg.Replicas) == 0 {
		return nil, errors.New("proxy: no replicas to resolve misses at")
	}
	st := cfg.Cache.State()
	p := &Proxy{cfg: cfg, cache: cfg.Cache, win: window.New(st.Index, cfg.Window), last: st, ring: newLogRing(cfg.LogBytes),
		changed: make(chan struct{}), filterStale: make(chan struct{}, 1), flights: make(map[flightKey]*flight)}
	p.published.Store(&st)
	p.checked = wirecheck.Client(cfg.HTTPClient, wirecheck.Transport{OnCorrupt: p.corrupt})
	o, err := newOracle(cfg.Replicas, cfg.DC, cfg.HTTPClient, cfg.Limits, p.corrupt)
	if err != nil {
		return nil, err
	}
	p.oracle = o
	if cfg.DC != "" && cfg.Self != "" {
		p.dc = newDCView(cfg.Self, cfg.DCPeers, cfg.L2Timeout)
		p.door = newDoorkeeper(doorkeeperKeys)
		o.onRelay = p.learnDCPeers
	}
	return p, nil
}

// Run keeps the proxy's view of the replicas and its filter current, and
// in a data center follows its relays' miss streams, until ctx ends.
func (p *Proxy) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.oracle.run(ctx, p.cfg.StatusInterval)
	}()
	if p.cfg.DC != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runPrefetch(ctx)
		}()
	}
	p.RunFilter(ctx)
	wg.Wait()
}

// corrupt counts and logs an answer damaged in transit.
func (p *Proxy) corrupt(_ *http.Request, err error) {
	p.stats.Corrupt.Add(1)
	p.cfg.Logger.Warn("proxy: refused an answer damaged in transit", "err", err)
}

// WriteTarget returns where to forward a client's write, given the
// upstream the proxy follows: that upstream, unless it is a relay, which
// takes no writes; then a replica the proxy knows of (the relay's own
// upstreams among them), which forwards it on to the root. "" when none is
// known yet.
func (p *Proxy) WriteTarget(up string) string {
	if !p.oracle.isRelay(up) {
		return up
	}
	if rs := p.oracle.replicas(); len(rs) > 0 {
		return rs[0]
	}
	return ""
}

// Stats returns the proxy's read counters.
func (p *Proxy) Stats() *Stats { return &p.stats }

// Applied returns the index reads are served at: applied and durable.
func (p *Proxy) Applied() argent.Index { return p.published.Load().Index }

// State returns the published state.
func (p *Proxy) State() argent.State { return *p.published.Load() }

// Changed returns a channel closed when the published index next moves.
func (p *Proxy) Changed() <-chan struct{} {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	return p.changed
}

// publish makes st the served state and wakes waiters.
func (p *Proxy) publish(st argent.State) {
	if st.Index < p.Applied() {
		return
	}
	p.published.Store(&st)
	p.changedMu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.changedMu.Unlock()
}

// WaitApplied waits until the published index reaches min, ctx ends or
// wait passes; it returns the published index, and an error wrapping
// argent.ErrTimeout (and, when ctx ended, ctx's error) if min was not
// reached.
func (p *Proxy) WaitApplied(ctx context.Context, wait time.Duration, min argent.Index) (argent.Index, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ch := p.Changed()
		if at := p.Applied(); at >= min {
			return at, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return p.Applied(), fmt.Errorf("%w: index %d not reached in %v (applied %d)", argent.ErrTimeout, min, wait, p.Applied())
		case <-ctx.Done():
			return p.Applied(), fmt.Errorf("%w: index %d not reached: request ended: %w", argent.ErrTimeout, min, ctx.Err())
		}
	}
}

// Get implements the api's reader: the value of key at index at, which
// must not be above Applied. See GetTier.
func (p *Proxy) Get(ctx context.Context, key []byte, at argent.Index) (argent.Value, error) {
	v, _, err := p.GetTier(ctx, key, at)
	return v, err
}

// GetTier returns the value of key at index at (at most Applied) and the
// tier that answered. It fails with an error wrapping argent.ErrUnavailable
// when no replica could resolve a miss within MissWait, and with one
// wrapping ctx's error too when ctx ended first: a miss stops asking
// replicas once its reader has gone.
func (p *Proxy) GetTier(ctx context.Context, key []byte, at argent.Index) (argent.Value, string, error) {
	if err := p.checkAt(at); err != nil {
		return argent.Value{}, "", err
	}
	if v, tier, err := p.getLocal(key, at); tier != "" {
		p.stats.count(tier, 1)
		return v, tier, err
	}
	rs, err := p.resolve(ctx, [][]byte{key}, at, false)
	if err != nil {
		p.stats.Failed.Add(1)
		return argent.Value{}, "", err
	}
	p.stats.count(rs[0].tier, 1)
	if rs[0].Absent {
		return argent.Value{}, rs[0].tier, argent.ErrNotFound
	}
	return rs[0].Value, rs[0].tier, nil
}

// checkAt refuses a read at an index the proxy has not reached.
func (p *Proxy) checkAt(at argent.Index) error {
	if applied := p.Applied(); at > applied {
		return fmt.Errorf("%w: read at %d, proxy at %d", argent.ErrFuture, at, applied)
	}
	return nil
}

// GetLocal reads key at index at from the proxy's own tiers only (window,
// cache, filter); ok is false on a miss, which only a replica can resolve.
// It implements api.LocalReader. It does not wait, so ctx only keeps a
// read that has already lost its reader from starting.
func (p *Proxy) GetLocal(ctx context.Context, key []byte, at argent.Index) (argent.Value, bool, error) {
	if ctx.Err() != nil {
		return argent.Value{}, true, readerGone(ctx, fmt.Sprintf("read of %q at %d", key, at))
	}
	if err := p.checkAt(at); err != nil {
		return argent.Value{}, true, err
	}
	v, tier, err := p.getLocal(key, at)
	p.stats.count(tier, 1)
	return v, tier != "", err
}

// GetMany reads every key at index at (at most Applied), as GetTier reads
// one: vals[i] is the value of keys[i], and found[i] is false where it is
// absent. The misses are resolved together, one lookup for all of them per
// replica tried (see resolve), within one MissWait. It fails, as a whole,
// when any miss cannot be resolved, with an error wrapping
// argent.ErrUnavailable, and ctx's error too when ctx ended first.
func (p *Proxy) GetMany(ctx context.Context, keys [][]byte, at argent.Index) (vals []argent.Value, found []bool, err error) {
	if err := p.checkAt(at); err != nil {
		return nil, nil, err
	}
	vals, found, tiers, err := p.getMany(ctx, keys, at, false)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tiers {
		p.stats.count(t, 1)
	}
	return vals, found, nil
}

// getMany is GetMany, which also says which tier answered each key: the
// proxy's own tiers, or resolve for the misses (direct: at L3 only).
func (p *Proxy) getMany(ctx context.Context, keys [][]byte, at argent.Index, direct bool) (vals []argent.Value, found []bool, tiers []string, err error) {
	vals, found, tiers = make([]argent.Value, len(keys)), make([]bool, len(keys)), make([]string, len(keys))
	var miss [][]byte                // the distinct keys missed
	missAt := make([]int, len(keys)) // position in miss of each key; -1: answered here
	pos := make(map[string]int)      // key -> position in miss
	for i, k := range keys {
		missAt[i] = -1
		if v, tier, err := p.getLocal(k, at); tier != "" {
			switch {
			case err == nil:
				vals[i], found[i] = v, true
			case !errors.Is(err, argent.ErrNotFound):
				return nil, nil, nil, err
			}
			tiers[i] = tier
			continue
		}
		j, dup := pos[string(k)]
		if !dup {
			j = len(miss)
			pos[string(k)] = j
			miss = append(miss, k)
		}
		missAt[i] = j
	}
	if len(miss) == 0 {
		return vals, found, tiers, nil
	}
	rs, err := p.resolve(ctx, miss, at, direct)
	if err != nil {
		p.stats.Failed.Add(uint64(len(miss)))
		return nil, nil, nil, err
	}
	for i, j := range missAt {
		if j < 0 {
			continue
		}
		tiers[i] = rs[j].tier
		if !rs[j].Absent {
			vals[i], found[i] = rs[j].Value, true
		}
	}
	return vals, found, tiers, nil
}

// getLocal answers a read of key at index at from the proxy's own tiers:
// the window, the cache, the filter, and names the one that answered. The
// tier is "" on a miss, which only a replica can resolve.
func (p *Proxy) getLocal(key []byte, at argent.Index) (argent.Value, string, error) {
	if wr, found, ok := p.win.Latest(key, at); ok && found {
		return writeValue(wr), TierWindow, writeErr(wr)
	}
	if e, ok := p.cache.Get(key); ok && e.Since <= at {
		if !e.Present {
			return argent.Value{}, TierCache, argent.ErrNotFound
		}
		return e.Value, TierCache, nil
	}
	if f := p.filter.Load(); f != nil && at >= f.base && !f.f.MayContain(key) {
		return argent.Value{}, TierFilter, argent.ErrNotFound
	}
	return argent.Value{}, "", nil
}

// writeValue and writeErr turn a window write into a read's answer.
func writeValue(wr window.Write) argent.Value {
	if wr.Deleted {
		return argent.Value{}
	}
	return argent.Value{Value: wr.Value, ModIndex: wr.Index}
}

func writeErr(wr window.Write) error {
	if wr.Deleted {
		return argent.ErrNotFound
	}
	return nil
}

// LogFirst is the oldest index a watch can start at: a proxy keeps its
// most recent entries in memory (Config.LogBytes), not a log on disk.
func (p *Proxy) LogFirst() argent.Index { return p.ring.firstIndex(p.Applied()) }

// ReadLog serves watch streams from the recent entries, up to Applied.
func (p *Proxy) ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error) {
	return p.ring.read(from, p.Applied(), maxBytes, fn)
}

// Replicas returns the replicas the proxy has learned of and found
// healthy, beyond its configured ones: more upstreams for its log follower.
func (p *Proxy) Replicas() []string { return p.oracle.replicas() }
