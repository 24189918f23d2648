package main

import (
	"context"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// readTimeout bounds one read.
const readTimeout = 10 * time.Second

// replayed is what a replay of the traces did.
type replayed struct {
	perProxy []*tally
	// merged is every read sent, in the order the readers sent them
	// (across proxies): the DC's trace for the offline optimum.
	merged []int32
	secs   float64
}

// replay reads each proxy's trace from it with readers concurrent readers
// per proxy (each its own keep-alive connection, taking the proxy's next
// unread position), until every trace is read, ctx ends or limit passes.
func replay(ctx context.Context, addrs []string, traces [][]int32, readers int, limit time.Duration) *replayed {
	total := 0
	for _, t := range traces {
		total += len(t)
	}
	out := &replayed{perProxy: make([]*tally, len(addrs)), merged: make([]int32, total)}
	var seq atomic.Int64
	deadline := time.Now().Add(limit)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for p, addr := range addrs {
		out.perProxy[p] = newTally()
		var next atomic.Int64
		trace := traces[p]
		for range readers {
			wg.Go(func() {
				t := newTally()
				c := rawhttp.New(addr)
				defer c.Close()
				key := make([]byte, 0, 16)
				for ctx.Err() == nil && time.Now().Before(deadline) {
					i := next.Add(1) - 1
					if i >= int64(len(trace)) {
						break
					}
					k := trace[i]
					out.merged[seq.Add(1)-1] = k
					key = appendKeyName(key[:0], int(k))
					c.SetDeadline(time.Now().Add(readTimeout))
					t0 := time.Now()
					status, _, tier, err := c.GetHeader(key, "Argent-Tier")
					t.record(status, tierName(tier), err, time.Since(t0).Microseconds())
				}
				mu.Lock()
				out.perProxy[p].merge(t)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	out.secs = time.Since(start).Seconds()
	out.merged = out.merged[:seq.Load()]
	return out
}

// appendKeyName appends keyName(i) to b without allocating.
func appendKeyName(b []byte, i int) []byte {
	b = append(b, "k/"...)
	var d [8]byte
	for j := 7; j >= 0; j-- {
		d[j] = byte('0' + i%10)
		i /= 10
	}
	return append(b, d[:]...)
}

// lightLoad reads n keys drawn from pop, one at a time, at most rate per
// second (rate <= 0: each as soon as the last is answered), from the
// proxies in turn, and returns their tally. It stops early when ctx ends
// or limit passes.
func lightLoad(ctx context.Context, addrs []string, pop *popularity, n int, rate float64, seed uint64, limit time.Duration) *tally {
	conns := make([]*rawhttp.Conn, len(addrs))
	for i, a := range addrs {
		conns[i] = rawhttp.New(a)
		defer conns[i].Close()
	}
	return paced(ctx, pop, n, rate, seed, limit, func(i int, key []byte) (int, string, error) {
		c := conns[i%len(conns)]
		c.SetDeadline(time.Now().Add(readTimeout))
		status, _, tier, err := c.GetHeader(key, "Argent-Tier")
		return status, tierName(tier), err
	})
}

// paced calls read for n keys drawn from pop (the same keys for the same
// seed), one at a time, at most rate per second (rate <= 0: each as soon
// as the last returned), and tallies what read says of each and how long
// it took. It stops early when ctx ends or limit passes.
func paced(ctx context.Context, pop *popularity, n int, rate float64, seed uint64, limit time.Duration,
	read func(i int, key []byte) (status int, tier string, err error)) *tally {
	t := newTally()
	r := mrand.New(mrand.NewPCG(seed, lightStream))
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	start := time.Now()
	deadline := start.Add(limit)
	key := make([]byte, 0, 16)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.After(deadline) {
			break
		}
		if d := time.Until(at); d > 0 {
			if sleep(ctx, d) != nil {
				break
			}
		}
		key = appendKeyName(key[:0], int(pop.draw(r)))
		t0 := time.Now()
		status, tier, err := read(i, key)
		t.record(status, tier, err, time.Since(t0).Microseconds())
	}
	return t
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

// l3Count is the DC's lookups at L3 and where the figure comes from.
type l3Count struct {
	Lookups float64 `json:"lookups"`
	Source  string  `json:"source"`
}

// Counters the L3 figure is taken from, best first.
const (
	metricReplicaLookups = "argent_lookup_keys_total"
	metricRelayUpstream  = "argent_relay_upstream_lookups_total"
	metricRelayLookups   = "argent_relay_lookups_total"
)

// l3Lookups returns the lookups the DC made at L3 during the replay, from
// the replicas' argent_lookup_keys_total when every replica exports it,
// else from the relay's upstream counter when there is a relay that
// exports it, else the reads the proxies saw answered by l3 or replica
// (answers: concurrent misses of one key that a proxy resolves with one
// lookup count once each there, so this may overstate).
func l3Lookups(replicasBefore, replicasAfter []map[string]float64, relayBefore, relayAfter map[string]float64, answers int64) l3Count {
	if d, ok := delta(replicasBefore, replicasAfter, metricReplicaLookups); ok {
		return l3Count{Lookups: d, Source: "the replicas' " + metricReplicaLookups}
	}
	if d, ok := delta([]map[string]float64{relayBefore}, []map[string]float64{relayAfter}, metricRelayUpstream); ok {
		return l3Count{Lookups: d, Source: "the relay's " + metricRelayUpstream}
	}
	return l3Count{Lookups: float64(answers), Source: "reads answered l3 or replica at the proxies " +
		"(this build's replicas export no " + metricReplicaLookups + ")"}
}

// delta sums after[i][name] - before[i][name], and reports false unless
// every map in both has name.
func delta(before, after []map[string]float64, name string) (float64, bool) {
	if len(before) == 0 || len(before) != len(after) {
		return 0, false
	}
	sum := 0.0
	for i := range before {
		b, ok1 := before[i][name]
		a, ok2 := after[i][name]
		if !ok1 || !ok2 {
			return 0, false
		}
		sum += a - b
	}
	return sum, true
}
