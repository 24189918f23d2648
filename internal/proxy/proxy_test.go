package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/proxycache"
	"github.com/argent-kv/argent/internal/window"
)

var _ api.TierReader = (*proxy.Proxy)(nil)

// history is a log made by a root store, with the data at every index.
type history struct {
	dataset argent.DatasetID
	entries []argent.Entry      // entries[i] has index i+1
	states  []map[string]string // states[i] is the data at index i
}

func (h *history) stateAt(i argent.Index) map[string]string { return h.states[i] }

// makeHistory writes n random batches over keys k000..k(keys-1) to a root
// store and records them.
func makeHistory(t testing.TB, rng *rand.Rand, n, keys int) *history {
	t.Helper()
	root, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ds, err := root.InitDataset()
	if err != nil {
		t.Fatal(err)
	}
	h := &history{dataset: ds, states: []map[string]string{{}}}
	for i := 0; i < n; i++ {
		next := make(map[string]string, len(h.states[i]))
		for k, v := range h.states[i] {
			next[k] = v
		}
		var ops []argent.Op
		for j := 0; j < 1+rng.IntN(3); j++ {
			k := fmt.Sprintf("k%03d", rng.IntN(keys))
			if rng.IntN(4) == 0 {
				ops = append(ops, argent.Op{Type: argent.OpDelete, Key: []byte(k)})
				delete(next, k)
			} else {
				v := fmt.Sprintf("v%d-%d", i+1, j)
				ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)})
				next[k] = v
			}
		}
		w := root.NewWriter()
		e, err := w.Append(ops, time.Unix(0, int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		h.entries = append(h.entries, e)
		h.states = append(h.states, next)
	}
	return h
}

// replica is a store fed from a history up to some index, with a lookup
// server in front.
type replica struct {
	st   *kv.Store
	addr string
}

func newReplica(t testing.TB, h *history, upTo int) *replica {
	t.Helper()
	return newReplicaWith(t, h, upTo, nil)
}

// newReplicaWith is newReplica with wrap, when not nil, in front of the
// lookup server.
func newReplicaWith(t testing.TB, h *history, upTo int, wrap func(http.Handler) http.Handler) *replica {
	t.Helper()
	st, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.AdoptDataset(h.dataset); err != nil {
		t.Fatal(err)
	}
	r := &replica{st: st}
	r.feed(t, h, upTo)
	srv, err := lookup.NewServer(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var hd http.Handler = srv
	if wrap != nil {
		hd = wrap(srv)
	}
	hs := httptest.NewServer(hd)
	t.Cleanup(hs.Close)
	r.addr = hs.Listener.Addr().String()
	return r
}

// feed applies the history's entries up to index upTo.
func (r *replica) feed(t testing.TB, h *history, upTo int) {
	t.Helper()
	for i := int(r.st.Applied()); i < upTo; i++ {
		w := r.st.NewWriter()
		if err := w.AppendEntry(&h.entries[i]); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func newProxy(t testing.TB, replicas []string, budget int64, win window.Options) *proxy.Proxy {
	t.Helper()
	return newProxyWith(t, budget, proxy.Config{Replicas: replicas, Window: win, MissWait: 300 * time.Millisecond})
}

// newProxyWith returns a proxy configured by cfg over a new cache of the
// given budget.
func newProxyWith(t testing.TB, budget int64, cfg proxy.Config) *proxy.Proxy {
	t.Helper()
	c, err := proxycache.Open(t.TempDir(), proxycache.Options{Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg.Cache = c
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// apply feeds the proxy the history's entries up to index upTo, in groups.
func apply(t testing.TB, p *proxy.Proxy, h *history, upTo int, rng *rand.Rand) {
	t.Helper()
	tg := p.Target()
	for i := int(tg.Applied()); i < upTo; {
		g := tg.Begin()
		for n := 1 + rng.IntN(4); n > 0 && i < upTo; n-- {
			if err := g.AppendEntry(&h.entries[i]); err != nil {
				t.Fatal(err)
			}
			i++
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRead reads key at the proxy's applied index and compares it with
// the history: a value must be the value at that index; a failure is
// allowed only where allowFail says so.
func checkRead(t testing.TB, p *proxy.Proxy, h *history, key string, allowFail bool) string {
	t.Helper()
	at := p.Applied()
	v, tier, err := p.GetTier(context.Background(), []byte(key), at)
	want, present := h.stateAt(at)[key]
	switch {
	case errors.Is(err, argent.ErrNotFound):
		if present {
			t.Fatalf("read %q at %d: absent (tier %s), want %q", key, at, tier, want)
		}
	case err != nil:
		if !allowFail || !errors.Is(err, argent.ErrUnavailable) {
			t.Fatalf("read %q at %d: %v", key, at, err)
		}
		return "failed"
	default:
		if !present || string(v.Value) != want {
			t.Fatalf("read %q at %d: %q (tier %s), want %q (present %v)", key, at, v.Value, tier, want, present)
		}
	}
	return tier
}

// TestProxy_ReadsEqualTheValueAtItsIndex moves a proxy with a small cache
// through a history while replicas ahead of it answer its misses: every
// read, whichever tier answers, is the value at the proxy's index.
func TestProxy_ReadsEqualTheValueAtItsIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := makeHistory(t, rng, 300, 60)
	ahead := newReplica(t, h, 300)
	p := newProxy(t, []string{ahead.addr}, 2<<10, window.Options{MaxBatches: 20})
	tiers := map[string]int{}
	for at := 0; at < 300; at += 1 + rng.IntN(10) {
		apply(t, p, h, at, rng)
		for j := 0; j < 20; j++ {
			tiers[checkRead(t, p, h, fmt.Sprintf("k%03d", rng.IntN(70)), false)]++
		}
	}
	t.Logf("reads by tier: %v", tiers)
	for _, tier := range []string{proxy.TierWindow, proxy.TierCache, proxy.TierL3} {
		if tiers[tier] == 0 {
			t.Errorf("no read answered by tier %s: %v", tier, tiers)
		}
	}
}

// TestProxy_BehindReplica gives the proxy only a replica behind it: reads
// are right whenever the window can prove the replica's value still holds,
// and fail (never a wrong value) when it cannot; once the replica catches
// up, every read succeeds.
func TestProxy_BehindReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := makeHistory(t, rng, 200, 40)
	behind := newReplica(t, h, 150)
	p := newProxy(t, []string{behind.addr}, 1<<20, window.Options{MaxBatches: 30})
	apply(t, p, h, 190, rng)
	failed, ok := 0, 0
	for i := 0; i < 40; i++ {
		if checkRead(t, p, h, fmt.Sprintf("k%03d", i), true) == "failed" {
			failed++
		} else {
			ok++
		}
	}
	if failed == 0 {
		t.Errorf("a replica 40 batches behind with a 30-batch window: no read failed (%d ok)", ok)
	}
	behind.feed(t, h, 200)
	for i := 0; i < 40; i++ {
		checkRead(t, p, h, fmt.Sprintf("k%03d", i), false)
	}
}

// TestProxy_Filter installs a filter and checks absent keys are answered
// by it, present ones never.
func TestProxy_Filter(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h := makeHistory(t, rng, 100, 50)
	r := newReplica(t, h, 80)
	p := newProxy(t, []string{r.addr}, 1<<20, window.Options{})
	apply(t, p, h, 90, rng)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.RunFilter(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		// A new key each time: a miss answered by the replica is cached.
		if _, tier, err := p.GetTier(context.Background(), []byte(fmt.Sprintf("never-%d", i)), p.Applied()); err != nil && tier == proxy.TierFilter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no filter installed in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.feed(t, h, 100)
	apply(t, p, h, 100, rng)
	filtered := 0
	for i := 0; i < 1000; i++ {
		if checkRead(t, p, h, fmt.Sprintf("absent-%d", i), false) == proxy.TierFilter {
			filtered++
		}
	}
	if filtered < 980 {
		t.Errorf("%d of 1000 absent keys answered by the filter, want at least 98%%", filtered)
	}
	for i := 0; i < 50; i++ {
		checkRead(t, p, h, fmt.Sprintf("k%03d", i), false)
	}
}
