package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/cachetrace"
	"github.com/argent-kv/argent/internal/proxycache"
)

// simResult is one trace replayed at one budget.
type simResult struct {
	Trace       string  `json:"trace"`
	Budget      float64 `json:"budget_fraction"` // of the data set's weight
	BudgetBytes int64   `json:"budget_bytes"`
	Entries     int     `json:"entries_that_fit,omitempty"` // equal weights only
	Reads       int     `json:"reads"`
	Distinct    int     `json:"distinct_keys"`
	// Ceiling is 1 - Distinct/Reads: every first read of a key misses in
	// any cache that starts empty.
	Ceiling float64 `json:"ceiling"`

	Proxycache policyResult `json:"proxycache"`
	Otter      policyResult `json:"otter_alone"`
	OtterSync  policyResult `json:"otter_inline_maintenance"`
	LRU        policyResult `json:"lru"`
	Static     policyResult `json:"static_best"`
	Optimum    policyResult `json:"optimum"`
	Ratio      float64      `json:"ratio"`      // proxycache / optimum, whole trace
	RatioLate  float64      `json:"ratio_late"` // the same over the second half
	// Counters of the real cache at the end.
	Admitted  uint64  `json:"admitted"`
	Evicted   uint64  `json:"evicted"`
	Weight    uint64  `json:"weight_bytes"`
	DiskBytes uint64  `json:"disk_bytes"`
	Seconds   float64 `json:"replay_seconds"`
}

type policyResult struct {
	Hits     int     `json:"hits"`
	HitRate  float64 `json:"hit_rate"`
	LateHits int     `json:"hits_second_half"`
	LateRate float64 `json:"hit_rate_second_half"`
}

func toPolicy(h cachetrace.Hits, n, late int) policyResult {
	a, l := h.Rates(n, late)
	return policyResult{Hits: h.All, HitRate: a, LateHits: h.Late, LateRate: l}
}

// dataset is the simulated data set: key names, value sizes and what each
// key weighs in the cache (key + value + the cache's per-entry overhead).
type dataset struct {
	names    [][]byte
	sizes    []int32
	weights  []int64
	total    int64
	overhead int64
	equal    bool // every key weighs the same
}

func newDataset(keys int, sizes []int32, overhead int64) *dataset {
	d := &dataset{names: make([][]byte, keys), sizes: sizes, weights: make([]int64, keys), overhead: overhead, equal: true}
	for i := range keys {
		d.names[i] = []byte(keyName(i))
		d.weights[i] = int64(len(d.names[i])) + int64(sizes[i]) + overhead
		d.total += d.weights[i]
		if d.weights[i] != d.weights[0] {
			d.equal = false
		}
	}
	return d
}

// replayCache replays trace against a real proxycache.Cache opened in dir
// with the given budget, as the proxy drives it: Get, and on a miss Admit
// the key's entry at the cache's applied index. No log entries arrive, so
// the applied index stays 1 and every Admit is accepted by the index check.
func replayCache(ctx context.Context, dir string, d *dataset, trace []int32, budget int64, late int) (cachetrace.Hits, proxycache.Stats, error) {
	c, err := proxycache.Open(dir, proxycache.Options{Budget: budget})
	if err != nil {
		return cachetrace.Hits{}, proxycache.Stats{}, err
	}
	defer func() {
		_ = c.Close()
		_ = os.RemoveAll(dir)
	}()
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		return cachetrace.Hits{}, proxycache.Stats{}, err
	}
	maxSize := int32(0)
	for _, s := range d.sizes {
		maxSize = max(maxSize, s)
	}
	value := make([]byte, maxSize)
	for i := range value {
		value[i] = byte(i*7 + 3)
	}
	var out cachetrace.Hits
	for i, k := range trace {
		if i&0xffff == 0 && ctx.Err() != nil {
			return cachetrace.Hits{}, proxycache.Stats{}, ctx.Err()
		}
		key := d.names[k]
		if _, ok := c.Get(key); ok {
			out.All++
			if i >= late {
				out.Late++
			}
			continue
		}
		e := proxycache.Entry{Present: true, Value: argent.Value{Value: value[:d.sizes[k]], ModIndex: 1}}
		if _, err := c.Admit(key, e, c.Applied()); err != nil {
			return cachetrace.Hits{}, proxycache.Stats{}, fmt.Errorf("admit %s: %w", key, err)
		}
	}
	if err := c.EvictNow(); err != nil {
		return cachetrace.Hits{}, proxycache.Stats{}, err
	}
	return out, c.Stats(), nil
}

// replayOtter replays trace against otter alone (W-TinyLFU weighted by the
// same weights as proxycache), with no Pebble behind it and otter's lazy
// sizing of its frequency sketch, which proxycache replaces (see
// proxycache's policy): what the policy scores without that. With inline
// set, otter runs its maintenance (draining the buffers of reads and
// writes into the policy, evicting) on the calling goroutine instead of a
// new one (proxycache's setting, not otter's default), so fewer reads are
// dropped from its lossy read buffer before the policy sees them.
func replayOtter(d *dataset, trace []int32, budget int64, late int, inline bool) cachetrace.Hits {
	o := &otter.Options[int32, struct{}]{
		MaximumWeight: uint64(budget),
		Weigher:       func(k int32, _ struct{}) uint32 { return uint32(d.weights[k]) },
		Logger:        &otter.NoopLogger{},
	}
	if inline {
		o.Executor = func(fn func()) { fn() }
	}
	c := otter.Must(o)
	var out cachetrace.Hits
	for i, k := range trace {
		if _, ok := c.GetIfPresent(k); ok {
			out.All++
			if i >= late {
				out.Late++
			}
			continue
		}
		c.Set(k, struct{}{})
	}
	c.InvalidateAll()
	return out
}

// simulate replays each trace at each budget against proxycache, otter
// alone, LRU and the offline optimum.
func simulate(ctx context.Context, cfg config, d *dataset, tmp string, log io.Writer) ([]simResult, error) {
	var out []simResult
	for ti, spec := range cfg.traces() {
		start := time.Now()
		trace := makeTrace(cfg.keys, spec)
		late := len(trace) / 2
		dist := distinct(trace, cfg.keys)
		fmt.Fprintf(log, "proxyhit: trace %s: %s reads, %s distinct keys (drawn in %v)\n", spec.Name, fmtInt(len(trace)), fmtInt(dist), time.Since(start).Round(time.Millisecond))
		for bi, frac := range cfg.budgets {
			budget := int64(frac * float64(d.total))
			r := simResult{Trace: spec.Name, Budget: frac, BudgetBytes: budget, Reads: len(trace), Distinct: dist,
				Ceiling: 1 - float64(dist)/float64(len(trace))}
			if d.equal {
				r.Entries = int(budget / d.weights[0])
			}
			start := time.Now()
			h, st, err := replayCache(ctx, filepath.Join(tmp, fmt.Sprintf("sim-%d-%d", ti, bi)), d, trace, budget, late)
			if err != nil {
				return nil, fmt.Errorf("trace %s, budget %.0f%%: %w", spec.Name, frac*100, err)
			}
			r.Seconds = time.Since(start).Seconds()
			r.Proxycache = toPolicy(h, len(trace), late)
			r.Admitted, r.Evicted, r.Weight, r.DiskBytes = st.Admitted, st.Evicted, st.Weight, st.DiskBytes
			r.Otter = toPolicy(replayOtter(d, trace, budget, late, false), len(trace), late)
			r.OtterSync = toPolicy(replayOtter(d, trace, budget, late, true), len(trace), late)
			r.LRU = toPolicy(lru(trace, d.weights, budget, late), len(trace), late)
			r.Static = toPolicy(staticBest(trace, d.weights, budget, late), len(trace), late)
			r.Optimum = toPolicy(cachetrace.Belady(trace, d.weights, budget, late), len(trace), late)
			if r.Optimum.HitRate > 0 {
				r.Ratio = r.Proxycache.HitRate / r.Optimum.HitRate
			}
			if r.Optimum.LateRate > 0 {
				r.RatioLate = r.Proxycache.LateRate / r.Optimum.LateRate
			}
			fmt.Fprintf(log, "proxyhit:   budget %4.0f%% (%s): proxycache %.4f, otter alone %.4f (inline %.4f), LRU %.4f, static best %.4f, optimum %.4f, ratio %.3f (second half %.3f); replay %.1fs\n",
				frac*100, fmtBytes(budget), r.Proxycache.HitRate, r.Otter.HitRate, r.OtterSync.HitRate, r.LRU.HitRate, r.Static.HitRate, r.Optimum.HitRate, r.Ratio, r.RatioLate, r.Seconds)
			out = append(out, r)
		}
	}
	return out, nil
}
