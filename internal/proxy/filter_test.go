package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// TestProxy_AbsentKeysAnsweredLocally loads 100,000 keys, then checks the
// proxy's filter over 100,000 present and 100,000 absent keys: no present
// key is ever answered absent by it (no false negatives), and at least 99%
// of absent keys are answered by it, without a replica.
func TestProxy_AbsentKeysAnsweredLocally(t *testing.T) {
	const n = 100_000
	if testing.Short() {
		t.Skip("loads 100,000 keys")
	}
	root, h := openRoot(t)
	for b := 0; b < n/1000; b++ {
		root.commit(t, puts("present/%06d", b*1000, 1000))
	}
	r := newReplica(t, h, len(h.entries))
	p := newProxy(t, []string{r.addr}, 1<<20, window.Options{MaxBytes: 64 << 10})
	tg := p.Target()
	for i := range h.entries {
		g := tg.Begin()
		if err := g.AppendEntry(&h.entries[i]); err != nil {
			t.Fatal(err)
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.RunFilter(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := p.FilterMayContain([]byte("x")); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no filter installed in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		k := []byte(fmt.Sprintf("present/%06d", i))
		if may, _ := p.FilterMayContain(k); !may {
			t.Fatalf("false negative: the filter says %q is absent", k)
		}
	}
	at := p.Applied()
	local := 0
	for i := 0; i < n; i++ {
		_, tier, err := p.GetTier(context.Background(), []byte(fmt.Sprintf("absent/%06d", i)), at)
		if !errors.Is(err, argent.ErrNotFound) {
			t.Fatalf("absent key %d: %v", i, err)
		}
		if tier == proxy.TierFilter {
			local++
		}
	}
	t.Logf("%d of %d absent keys answered by the filter (%.3f%%)", local, n, 100*float64(local)/n)
	if local < n*99/100 {
		t.Errorf("%d of %d absent keys answered by the filter, want at least 99%%", local, n)
	}
	// A sample of present keys through the whole read path.
	for i := 0; i < n; i += 97 {
		k := fmt.Sprintf("present/%06d", i)
		if v, _, err := p.GetTier(context.Background(), []byte(k), at); err != nil || string(v.Value) != "v" {
			t.Fatalf("present key %q: %q, %v", k, v.Value, err)
		}
	}
}

// TestProxy_FilterRebuiltAfterBurst installs a filter sized for few keys,
// then applies a burst of 20,000 puts within a second of the last drift
// check: the proxy must notice the drift once the burst is over and
// install the replica's new filter without waiting for RunFilter's ticker
// (an hour here), so absent keys are answered locally again.
func TestProxy_FilterRebuiltAfterBurst(t *testing.T) {
	root, h := openRoot(t)
	root.commit(t, puts("first/%d", 0, 1))
	root.commit(t, puts("second/%d", 0, 1))
	for b := 0; b < 20; b++ {
		root.commit(t, puts("burst/%06d", b*1000, 1000))
	}
	r := newReplica(t, h, 1)
	p := newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{r.addr}, Window: window.Options{MaxBytes: 64 << 20},
		MissWait: time.Second, FilterInterval: time.Hour})
	tg := p.Target()
	applyOne := func(from, to int) {
		g := tg.Begin()
		for i := from; i < to; i++ {
			if err := g.AppendEntry(&h.entries[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	applyOne(0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.RunFilter(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "a first filter", func() bool { _, ok := p.FilterMayContain([]byte("x")); return ok })

	// A commit more than a second after the last check checks (nothing has
	// drifted yet); the burst right after it is within the second.
	time.Sleep(1100 * time.Millisecond)
	r.feed(t, h, len(h.entries))
	applyOne(1, 2)
	applyOne(2, len(h.entries))
	waitFor(t, 10*time.Second, "absent keys answered by a rebuilt filter", func() bool {
		for i := 0; i < 100; i++ {
			if may, _ := p.FilterMayContain([]byte(fmt.Sprintf("absent/%d", i))); may {
				return false
			}
		}
		return true
	})
}

// TestProxy_FilterKeepsPutsPastTheWindow checks that the negative filter
// has no false negatives (docs/CONTRACT.md promise 5) for keys whose puts the
// sliding window no longer holds, so that only the filter can vouch for
// them: keys put after the replica built the filter and before the proxy
// installed it (added from the window at install), and keys put after the
// install (added by the log applier). Once a window of two batches has
// slid past those puts, each must still be "maybe present" and read as
// present, never answered absent by the filter.
func TestProxy_FilterKeepsPutsPastTheWindow(t *testing.T) {
	root, h := openRoot(t)
	root.commit(t, puts("old/%d", 0, 10))    // 1: the replica builds its filter here
	root.commit(t, puts("between/%d", 0, 3)) // 2: put before the install
	root.commit(t, puts("between/%d", 3, 3)) // 3
	root.commit(t, puts("fresh/%d", 0, 3))   // 4: put after the install
	for i := range 3 {
		root.commit(t, puts("slide/%d", i, 1)) // 5..7: the window slides past 2..4
	}
	r := newReplica(t, h, 1)
	p := newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{r.addr}, Window: window.Options{MaxBatches: 2},
		MissWait: 2 * time.Second, FilterInterval: time.Hour})
	rng := rand.New(rand.NewPCG(17, 18))
	apply(t, p, h, 3, rng)

	// The replica's filter, built at 1, installed at 3 with the puts of
	// (1, 3] from the window. Then no more filters: a new one from the
	// replica, built once it has every key, would hide a missing key.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.RunFilter(ctx); close(done) }()
	waitFor(t, 10*time.Second, "filter installed", func() bool { _, ok := p.FilterMayContain([]byte("x")); return ok })
	cancel()
	<-done

	apply(t, p, h, len(h.entries), rng)
	r.feed(t, h, len(h.entries))
	at := p.Applied()
	var keys []string
	for i := range 6 {
		keys = append(keys, fmt.Sprintf("between/%d", i))
	}
	for i := range 3 {
		keys = append(keys, fmt.Sprintf("fresh/%d", i))
	}
	for _, k := range keys {
		if may, _ := p.FilterMayContain([]byte(k)); !may {
			t.Errorf("false negative at %d: the filter says %q, put and no longer in the window, is absent", at, k)
		}
		v, tier, err := p.GetTier(context.Background(), []byte(k), at)
		switch {
		case err != nil:
			t.Errorf("read %q at %d: %v (tier %q), want \"v\"", k, at, err, tier)
		case tier == proxy.TierWindow:
			t.Fatalf("read %q at %d answered by the window: the test needs a window that slid past its put", k, at)
		case string(v.Value) != "v":
			t.Errorf("read %q at %d = %q, want \"v\"", k, at, v.Value)
		}
	}
	// The filter is in use: it answers absent keys.
	filtered := 0
	for i := range 50 {
		if _, tier, err := p.GetTier(context.Background(), []byte(fmt.Sprintf("never/%d", i)), at); errors.Is(err, argent.ErrNotFound) && tier == proxy.TierFilter {
			filtered++
		}
	}
	if filtered == 0 {
		t.Errorf("no absent key of 50 answered by the filter: the test checks nothing")
	}
}

// testRoot is a root's store whose commits are recorded in a history.
type testRoot struct {
	*kv.Store
	h *history
}

// openRoot opens a new root store with a dataset, closed when the test
// ends, and the history its commits go to.
func openRoot(t *testing.T) (*testRoot, *history) {
	t.Helper()
	st, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ds, err := st.InitDataset()
	if err != nil {
		t.Fatal(err)
	}
	h := &history{dataset: ds}
	return &testRoot{Store: st, h: h}, h
}

// commit appends ops as the next entry, commits it and records it.
func (r *testRoot) commit(t *testing.T, ops []argent.Op) {
	t.Helper()
	w := r.NewWriter()
	e, err := w.Append(ops, time.Unix(int64(len(r.h.entries)+1), 0))
	if err != nil {
		w.Discard()
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r.h.entries = append(r.h.entries, e)
}

// puts returns n puts of value "v" to the keys format(from), ...,
// format(from+n-1).
func puts(format string, from, n int) []argent.Op {
	ops := make([]argent.Op, n)
	for i := range ops {
		ops[i] = argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf(format, from+i)), Value: []byte("v")}
	}
	return ops
}

// waitFor polls cond every 10 ms until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
