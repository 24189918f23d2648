package main

import (
	"sort"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Argent-Tier values a proxy answers with. Before the DC tier, a proxy
// names a miss resolved at a replica "replica"; with it, "l3".
const (
	tierWindow  = "window"
	tierCache   = "cache"
	tierFilter  = "filter"
	tierL2      = "l2"
	tierL3      = "l3"
	tierReplica = "replica"
	tierError   = "error" // no answer, or a status other than 200
)

// Levels of the read path a tier belongs to.
const (
	levelOther = iota // an error, or a tier this benchmark does not expect
	levelL1           // the proxy's own: window, cache (L1) and filter
	levelL2           // a DC peer's shard
	levelL3           // a replica, asked directly or through the relay
)

// levelOf returns the level of tier. L1 counts the sliding window and the
// filter with the cache because all three answer from the proxy's own
// memory or disk without asking anyone; in this benchmark every key read
// exists and was written before the proxies started, so nearly all of L1
// is the cache.
func levelOf(tier string) int {
	switch tier {
	case tierWindow, tierCache, tierFilter:
		return levelL1
	case tierL2:
		return levelL2
	case tierL3, tierReplica:
		return levelL3
	}
	return levelOther
}

// knownTiers are returned as constants, so that recording a read does not
// allocate its tier's name.
var knownTiers = []string{tierCache, tierWindow, tierFilter, tierL2, tierL3, tierReplica, "root"}

func tierName(b []byte) string {
	for _, t := range knownTiers {
		if string(b) == t {
			return t
		}
	}
	return string(b)
}

// Latency histograms, in µs.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

// tally counts reads by the tier that answered them and keeps their
// latency by tier. Each reader goroutine has its own; merge sums them.
type tally struct {
	reads    int64
	tiers    map[string]int64 // tierError for a failed read
	statuses map[int]int64    // of the answers that were not 200
	lat      map[string]*hdrhistogram.Histogram
}

func newTally() *tally {
	return &tally{tiers: map[string]int64{}, statuses: map[int]int64{}, lat: map[string]*hdrhistogram.Histogram{}}
}

// record counts one read: its answer's status and tier, or err, and its
// latency in µs. A read that failed or did not answer 200 counts under
// tierError: every key read exists, so anything else is a failure.
func (t *tally) record(status int, tier string, err error, us int64) {
	t.reads++
	switch {
	case err != nil:
		tier = tierError
	case status != 200:
		t.statuses[status]++
		tier = tierError
	}
	t.tiers[tier]++
	h := t.lat[tier]
	if h == nil {
		h = hdrhistogram.New(histMin, histMax, histSig)
		t.lat[tier] = h
	}
	_ = h.RecordValue(min(max(us, histMin), histMax))
}

// merge adds o into t.
func (t *tally) merge(o *tally) {
	t.reads += o.reads
	for k, v := range o.tiers {
		t.tiers[k] += v
	}
	for k, v := range o.statuses {
		t.statuses[k] += v
	}
	for k, h := range o.lat {
		if t.lat[k] == nil {
			t.lat[k] = hdrhistogram.New(histMin, histMax, histSig)
		}
		t.lat[k].Merge(h)
	}
}

// level returns the reads answered at level l.
func (t *tally) level(l int) int64 {
	var n int64
	for tier, c := range t.tiers {
		if tier != tierError && levelOf(tier) == l {
			n += c
		}
	}
	return n
}

// rates returns the shares of all reads answered at L1 and at L1 or L2.
// Failed reads count as misses.
func (t *tally) rates() (l1, l12 float64) {
	if t.reads == 0 {
		return 0, 0
	}
	a, b := t.level(levelL1), t.level(levelL2)
	return float64(a) / float64(t.reads), float64(a+b) / float64(t.reads)
}

// latency is a histogram's summary, in µs.
type latency struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	Max  int64   `json:"max"`
}

func latencyOf(h *hdrhistogram.Histogram) latency {
	return latency{N: h.TotalCount(), Mean: h.Mean(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), Max: h.Max()}
}

// latencies summarises t's latency by tier.
func (t *tally) latencies() map[string]latency {
	out := make(map[string]latency, len(t.lat))
	for k, h := range t.lat {
		out[k] = latencyOf(h)
	}
	return out
}

// tierOrder sorts tier names down the read path (window, cache, filter,
// l2, l3, replica), then others by name, then errors.
func tierOrder(names []string) {
	rank := func(s string) int {
		for i, t := range []string{tierWindow, tierCache, tierFilter, tierL2, tierL3, tierReplica} {
			if s == t {
				return i
			}
		}
		if s == tierError {
			return 100
		}
		return 50
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := rank(names[i]), rank(names[j])
		return a < b || a == b && names[i] < names[j]
	})
}
