package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

const (
	histMin = 1 // µs
	histMax = 60_000_000
	histSig = 3
	// tailKeys: the keys written last may still be in the proxy's sliding
	// window (and answer "window"); hit and miss keys are drawn from the
	// others.
	tailKeys = 2000
)

// Read classes at the running proxy.
const (
	classHit  = "hit"
	classMiss = "miss"
	classNeg  = "negative"
)

// liveResult is what the running proxy showed.
type liveResult struct {
	Keys      int   `json:"keys"`
	Value     int   `json:"value_bytes"`
	DataBytes int64 `json:"data_bytes"` // keys + values written
	CacheSize int64 `json:"cache_size"` // --cache-size
	// CacheFraction is CacheSize over the data set's weight as the cache
	// weighs it (key + value + per-entry overhead).
	CacheFraction float64            `json:"cache_fraction"`
	WindowBytes   string             `json:"window_bytes"`
	HotKeys       int                `json:"hot_keys"`
	Conns         int                `json:"conns"`
	PrefillSecs   float64            `json:"prefill_seconds"`
	LastIndex     uint64             `json:"last_index"`
	FilterSecs    float64            `json:"filter_wait_seconds"` // from the proxy's catch-up to the first filter answer
	Probes        int                `json:"filter_probes"`
	ProbeTiers    map[string]int     `json:"filter_probe_tiers"` // who answered the probes
	WarmTiers     map[string]int     `json:"warmup_tiers"`       // tiers of the second warm-up read of each hot key
	MeasureSecs   float64            `json:"measure_seconds"`
	Classes       []classResult      `json:"classes"`
	Disk          diskResult         `json:"disk"`
	ProxyStats    map[string]float64 `json:"proxy_metrics"`
}

type classResult struct {
	Class    string         `json:"class"`
	Expected string         `json:"expected_tier"`
	Reads    int64          `json:"reads"`
	Tiers    map[string]int `json:"tiers"`
	Errors   int            `json:"errors"` // transport errors and unexpected statuses
	Statuses map[string]int `json:"statuses"`
	Lat      latency        `json:"latency_us"`
	// LatTier is the latency of the reads that the expected tier answered.
	LatTier latency `json:"latency_expected_tier_us"`
}

type latency struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p999"`
	Max  int64   `json:"max"`
}

func latencyOf(h *hdrhistogram.Histogram) latency {
	return latency{N: h.TotalCount(), Mean: h.Mean(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max()}
}

type diskResult struct {
	// Sums of the file sizes in each data directory.
	Proxy   int64 `json:"proxy_dir_bytes"`
	Replica int64 `json:"replica_dir_bytes"`
	Root    int64 `json:"root_dir_bytes"`
	// Bytes of the blocks allocated to them (du), 0 if unknown.
	ProxyAlloc    int64   `json:"proxy_du_bytes"`
	ReplicaAlloc  int64   `json:"replica_du_bytes"`
	RootAlloc     int64   `json:"root_du_bytes"`
	ProxyPebble   float64 `json:"proxy_disk_bytes_metric"`   // argent_disk_bytes
	ReplicaPebble float64 `json:"replica_disk_bytes_metric"` // argent_disk_bytes
	ProxyCache    float64 `json:"proxy_cache_bytes_metric"`  // argent_proxy_cache_bytes
}

// runLive starts root, replica and proxy, fills the data set, and measures
// read latency by class and the disk of each node.
func runLive(ctx context.Context, cfg config, tmp string, log io.Writer) (res *liveResult, problems []string, err error) {
	bin := cfg.bin
	if bin == "" {
		fmt.Fprintln(log, "proxyhit: go build ./cmd/argent")
		if bin, err = benchnode.BuildArgent(ctx, tmp); err != nil {
			return nil, nil, err
		}
	}
	dir, err := os.MkdirTemp(tmp, "live-")
	if err != nil {
		return nil, nil, err
	}
	c := &benchnode.Cluster{Bin: bin, Dir: dir}
	defer c.Close(cfg.keep)
	problem := func(format string, a ...any) {
		p := fmt.Sprintf(format, a...)
		problems = append(problems, p)
		fmt.Fprintf(log, "proxyhit: PROBLEM: %s\n", p)
	}

	dataBytes := int64(cfg.liveKeys) * int64(len(keyName(0))+cfg.liveValue)
	res = &liveResult{Keys: cfg.liveKeys, Value: cfg.liveValue, DataBytes: dataBytes, WindowBytes: cfg.windowBytes,
		HotKeys: cfg.hot, Conns: cfg.conns, CacheFraction: cfg.proxyCache}
	// The cache weighs an entry at key + value + overhead; the budget is a
	// fraction of the data set weighed that way.
	res.CacheSize = int64(cfg.proxyCache * float64(int64(cfg.liveKeys)*(int64(len(keyName(0))+cfg.liveValue)+cfg.overhead)))

	root, err := c.Start(ctx, "root", "root")
	if err != nil {
		return nil, problems, err
	}
	replica, err := c.Start(ctx, "replica", "replica", "--upstream", root.Addr)
	if err != nil {
		return nil, problems, err
	}
	proxy, err := c.Start(ctx, "proxy", "proxy", "--upstream", replica.Addr,
		"--cache-size", strconv.FormatInt(res.CacheSize, 10), "--window-bytes", cfg.windowBytes)
	if err != nil {
		return nil, problems, err
	}
	fmt.Fprintf(log, "proxyhit: root %s (pid %d), replica %s (pid %d), proxy %s (pid %d, --cache-size %s, --window-bytes %s)\n",
		root.Addr, root.PID(), replica.Addr, replica.PID(), proxy.Addr, proxy.PID(), fmtBytes(res.CacheSize), cfg.windowBytes)

	start := time.Now()
	last, err := benchnode.Fill(ctx, root, cfg.liveKeys, keyName, cfg.liveValue, cfg.seed)
	if err != nil {
		return nil, problems, err
	}
	for _, p := range []*benchnode.Proc{replica, proxy} {
		if err := p.WaitApplied(ctx, last, 2*time.Minute); err != nil {
			return nil, problems, err
		}
	}
	res.PrefillSecs = time.Since(start).Seconds()
	res.LastIndex = uint64(last)
	fmt.Fprintf(log, "proxyhit: prefilled %s keys x %d B at the root in %.1fs (last index %d); replica and proxy caught up\n",
		fmtInt(cfg.liveKeys), cfg.liveValue, res.PrefillSecs, last)

	// Wait for the filter: absent keys answered by tier filter.
	conn := newTierConn(proxy.Addr)
	defer conn.close()
	start = time.Now()
	res.ProbeTiers = map[string]int{}
	for {
		res.Probes++
		status, tier, _, err := conn.get(fmt.Appendf(nil, "probe/absent/%08d", res.Probes))
		if err == nil {
			res.ProbeTiers[tier]++
		}
		if err == nil && status == http.StatusNotFound && tier == "filter" {
			break
		}
		if time.Since(start) > cfg.filterWait {
			return nil, problems, fmt.Errorf("the proxy did not answer absent keys from its filter within %v (last: status %d, tier %q, err %v)",
				cfg.filterWait, status, tier, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, problems, err
		}
	}
	res.FilterSecs = time.Since(start).Seconds()
	fmt.Fprintf(log, "proxyhit: filter answering after %.1fs (%d probes: %s)\n", res.FilterSecs, res.Probes, sortedTiers(res.ProbeTiers))

	// Key sets: hot keys (read before measuring), miss keys (never read),
	// absent keys (never written). Hit and miss keys avoid the last keys
	// written, which may be in the sliding window.
	r := mrand.New(mrand.NewPCG(cfg.seed, 0x11fe))
	pool := r.Perm(max(cfg.liveKeys-tailKeys, cfg.liveKeys/2))
	nHot := min(cfg.hot, len(pool)/2)
	hot := make([][]byte, nHot)
	for i := range hot {
		hot[i] = []byte(keyName(pool[i]))
	}
	missIDs := pool[nHot:]
	if len(missIDs) < cfg.count {
		problem("only %d never-read keys for %d miss reads: the miss class stops early", len(missIDs), cfg.count)
	}

	// Warm up: read each hot key twice; the second read should hit.
	res.WarmTiers = map[string]int{}
	for round := range 2 {
		for _, k := range hot {
			status, tier, _, err := conn.get(k)
			if err != nil || status != http.StatusOK {
				return nil, problems, fmt.Errorf("warm-up read of %s: status %d, err %v", k, status, err)
			}
			if round == 1 {
				res.WarmTiers[tier]++
			}
		}
	}
	fmt.Fprintf(log, "proxyhit: warmed %d hot keys; tiers of their second read: %v\n", nHot, res.WarmTiers)

	// Measure.
	res.Classes, res.MeasureSecs, err = measure(ctx, cfg, proxy.Addr, hot, missIDs)
	if err != nil {
		return nil, problems, err
	}
	for _, cr := range res.Classes {
		other := int(cr.Reads) - cr.Tiers[cr.Expected]
		if other > 0 {
			problem("%s reads: %d of %d answered by another tier than %q: %v", cr.Class, other, cr.Reads, cr.Expected, cr.Tiers)
		}
		if cr.Errors > 0 {
			problem("%s reads: %d errors or unexpected statuses (%v)", cr.Class, cr.Errors, cr.Statuses)
		}
	}

	// Disk, after the run: let the evictor finish its batch first.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return nil, problems, err
	}
	res.Disk = diskResult{Proxy: benchnode.DirSize(proxy.Dir), Replica: benchnode.DirSize(replica.Dir), Root: benchnode.DirSize(root.Dir)}
	res.Disk.ProxyAlloc, _ = diskUsage(proxy.Dir)
	res.Disk.ReplicaAlloc, _ = diskUsage(replica.Dir)
	res.Disk.RootAlloc, _ = diskUsage(root.Dir)
	if m, err := proxy.Metrics(ctx); err == nil {
		res.Disk.ProxyPebble, res.Disk.ProxyCache = m["argent_disk_bytes"], m["argent_proxy_cache_bytes"]
		res.ProxyStats = map[string]float64{}
		for k, v := range m {
			if strings.HasPrefix(k, "argent_proxy") {
				res.ProxyStats[k] = v
			}
		}
	} else {
		problem("proxy /metrics: %v", err)
	}
	if m, err := replica.Metrics(ctx); err == nil {
		res.Disk.ReplicaPebble = m["argent_disk_bytes"]
	} else {
		problem("replica /metrics: %v", err)
	}
	for _, p := range c.Procs() {
		if p.Exited() {
			problem("%s exited during the run: %v", p.Name, p.ExitErr())
		}
	}
	return res, problems, nil
}

// measure reads from the proxy in a closed loop over cfg.conns connections,
// each taking the classes in turn (hit, miss, negative), until every class
// has cfg.count reads or cfg.duration passes.
func measure(ctx context.Context, cfg config, addr string, hot [][]byte, missIDs []int) ([]classResult, float64, error) {
	classes := []struct{ name, tier string }{{classHit, "cache"}, {classMiss, "replica"}, {classNeg, "filter"}}
	type workerStats struct {
		all, tier []*hdrhistogram.Histogram
		tiers     []map[string]int
		statuses  []map[string]int
		errors    []int
	}
	var (
		mu       sync.Mutex
		nextMiss int
		nextNeg  int
		counts   = make([]int, len(classes))
		firstErr error
	)
	// claim reserves one read of class c and returns its key, or nil when
	// the class is done.
	claim := func(c int, r *mrand.Rand) []byte {
		mu.Lock()
		defer mu.Unlock()
		if counts[c] >= cfg.count {
			return nil
		}
		switch classes[c].name {
		case classHit:
			counts[c]++
			return hot[r.IntN(len(hot))]
		case classMiss:
			if nextMiss >= len(missIDs) {
				return nil
			}
			counts[c]++
			nextMiss++
			return []byte(keyName(missIDs[nextMiss-1]))
		default:
			counts[c]++
			nextNeg++
			return fmt.Appendf(nil, "absent/%08d", nextNeg)
		}
	}
	wantStatus := map[string]int{classHit: http.StatusOK, classMiss: http.StatusOK, classNeg: http.StatusNotFound}
	deadline := time.Now().Add(cfg.duration)
	stats := make([]*workerStats, cfg.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.conns {
		ws := &workerStats{}
		for range classes {
			ws.all = append(ws.all, hdrhistogram.New(histMin, histMax, histSig))
			ws.tier = append(ws.tier, hdrhistogram.New(histMin, histMax, histSig))
			ws.tiers = append(ws.tiers, map[string]int{})
			ws.statuses = append(ws.statuses, map[string]int{})
			ws.errors = append(ws.errors, 0)
		}
		stats[w] = ws
		wg.Go(func() {
			conn := newTierConn(addr)
			defer conn.close()
			r := mrand.New(mrand.NewPCG(cfg.seed, uint64(w)+100))
			for i := w; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				c := i % len(classes)
				key := claim(c, r)
				if key == nil {
					if done := func() bool {
						mu.Lock()
						defer mu.Unlock()
						for i := range counts {
							if counts[i] < cfg.count && !(classes[i].name == classMiss && nextMiss >= len(missIDs)) {
								return false
							}
						}
						return true
					}(); done {
						return
					}
					continue
				}
				t0 := time.Now()
				status, tier, _, err := conn.get(key)
				us := time.Since(t0).Microseconds()
				if err != nil {
					ws.errors[c]++
					ws.statuses[c]["error"]++
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s read of %s: %w", classes[c].name, key, err)
					}
					mu.Unlock()
					continue
				}
				ws.statuses[c][strconv.Itoa(status)]++
				if status != wantStatus[classes[c].name] {
					ws.errors[c]++
				}
				_ = ws.all[c].RecordValue(max(us, 1))
				ws.tiers[c][tier]++
				if tier == classes[c].tier {
					_ = ws.tier[c].RecordValue(max(us, 1))
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var out []classResult
	for c, cl := range classes {
		all := hdrhistogram.New(histMin, histMax, histSig)
		tier := hdrhistogram.New(histMin, histMax, histSig)
		cr := classResult{Class: cl.name, Expected: cl.tier, Tiers: map[string]int{}, Statuses: map[string]int{}}
		for _, ws := range stats {
			all.Merge(ws.all[c])
			tier.Merge(ws.tier[c])
			for k, v := range ws.tiers[c] {
				cr.Tiers[k] += v
			}
			for k, v := range ws.statuses[c] {
				cr.Statuses[k] += v
			}
			cr.Errors += ws.errors[c]
		}
		cr.Reads = all.TotalCount()
		cr.Lat, cr.LatTier = latencyOf(all), latencyOf(tier)
		out = append(out, cr)
	}
	if firstErr != nil && out[0].Reads+out[1].Reads+out[2].Reads == 0 {
		return nil, 0, firstErr
	}
	return out, secs, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sortedTiers formats a tier count map in a stable order.
func sortedTiers(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		name := k
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(&b, "%s %s", name, fmtInt(m[k]))
	}
	return b.String()
}
