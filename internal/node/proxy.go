package node

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/proxycache"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/window"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// startProxy starts a proxy: its cache, the log follower feeding it from a
// replica, the filter keeper, and the client API over the proxy's reads.
func startProxy(ctx context.Context, cfg Config) (*Node, error) {
	pc, err := proxycache.Open(cfg.DataDir, proxycache.Options{
		Budget: cfg.CacheSize, FreeDiskFloor: cfg.FreeDiskFloor, FS: cfg.FS,
	})
	if err != nil {
		return nil, dataDirError(cfg.DataDir, err)
	}
	n, err := newNode(cfg, pc.NodeID())
	if err != nil {
		pc.Close()
		return nil, err
	}
	p, err := proxy.New(proxy.Config{Cache: pc, Replicas: cfg.Upstreams, DC: cfg.DC, MissWait: cfg.MissWait,
		DCPeers: cfg.DCPeers, Self: n.Addr(), L2Timeout: cfg.L2Timeout,
		Window:     window.Options{MaxBytes: int(cfg.WindowBytes)},
		HTTPClient: n.hopClient(),
		Limits:     cfg.Limits, Logger: cfg.Logger})
	if err != nil {
		n.ln.Close()
		pc.Close()
		return nil, err
	}
	n.pcache, n.proxy = pc, p
	n.diskFull = pc.BelowDiskFloor
	pm := pull.NewMetrics(n.reg)
	n.registerProxyGauges()

	ctx, n.cancel = context.WithCancel(ctx)
	heard := pull.NewHeartbeatClock(cfg.Heartbeat, n.served)
	f := pull.NewFollower(pull.FollowerConfig{
		Target: p.Target(), NodeID: n.nodeID, Addr: n.Addr(), Role: cfg.Role, DC: cfg.DC, Upstreams: cfg.Upstreams, MoreUpstreams: p.Replicas,
		StallTimeout: cfg.StallTimeout, OnHeartbeat: heard.Heard, Client: n.pullClient(), Metrics: pm, Logger: n.log,
	})
	n.follower = proxyFollower{f, heard}
	n.goRun(func() { _ = f.Run(ctx) })
	n.goRun(func() { p.Run(ctx) })
	mux := http.NewServeMux()
	mux.Handle(proxy.L2Path, wirecheck.Handler(http.HandlerFunc(p.ServeL2)))
	return n.serve(ctx, mux)
}

// proxyFollower is a proxy's side facing its upstream: the Follower that
// feeds its cache, and what the Follower heard of the root.
type proxyFollower struct {
	*pull.Follower
	*pull.HeartbeatClock
}

var _ follower = proxyFollower{}

// registerProxyGauges exports a proxy's position, lag, cache and reads by
// tier.
func (n *Node) registerProxyGauges() {
	gauge := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	counter := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
	}
	n.registerPositionGauges()
	n.registerDiskFree()
	gauge("argent_disk_bytes", "Bytes the store takes on disk.", func() float64 { return float64(n.pcache.DiskUsage()) })
	gauge("argent_proxy_cache_bytes", "Bytes of cached keys and values, as the budget counts them.", func() float64 { return float64(n.pcache.Weight()) })
	st := n.proxy.Stats()
	for _, t := range []struct {
		tier string
		c    interface{ Load() uint64 }
	}{{proxy.TierWindow, &st.Window}, {proxy.TierCache, &st.Cache}, {proxy.TierFilter, &st.Filter}, {proxy.TierL2, &st.L2}, {proxy.TierL3, &st.L3}} {
		c := t.c
		counter("argent_proxy_reads_"+t.tier+"_total", "Reads answered by the proxy's "+t.tier+".", func() float64 { return float64(c.Load()) })
	}
	counter("argent_proxy_miss_failures_total", "Misses no replica could resolve in time.", func() float64 { return float64(st.Failed.Load()) })
	counter("argent_proxy_admitted_total", "Resolved misses admitted to the cache.", func() float64 { return float64(st.Admitted.Load()) })
	counter("argent_proxy_prefetched_total", "Keys admitted to the cache from the DC's miss stream (reactive prefetch).", func() float64 { return float64(st.Prefetched.Load()) })
	counter("argent_wire_corrupt_answers_total", "Answers of replicas, relays and L2 owners refused because their checksums did not match (damaged in transit).", func() float64 { return float64(st.Corrupt.Load()) })
	counter("argent_proxy_l2_served_total", "Keys this proxy answered to DC peers as the owner of their shard.", func() float64 { return float64(st.L2Served.Load()) })
}
