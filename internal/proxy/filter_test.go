package proxy_test

import (
	"context"
	"errors"
	"fmt"
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
	root, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ds, err := root.InitDataset()
	if err != nil {
		t.Fatal(err)
	}
	h := &history{dataset: ds}
	for b := 0; b < n/1000; b++ {
		ops := make([]argent.Op, 1000)
		for i := range ops {
			ops[i] = argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("present/%06d", b*1000+i)), Value: []byte("v")}
		}
		w := root.NewWriter()
		e, err := w.Append(ops, time.Unix(int64(b+1), 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		h.entries = append(h.entries, e)
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
		_, tier, err := p.GetTier([]byte(fmt.Sprintf("absent/%06d", i)), at)
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
		if v, _, err := p.GetTier([]byte(k), at); err != nil || string(v.Value) != "v" {
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
	root, err := kv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ds, err := root.InitDataset()
	if err != nil {
		t.Fatal(err)
	}
	h := &history{dataset: ds}
	commit := func(ops []argent.Op) {
		w := root.NewWriter()
		e, err := w.Append(ops, time.Unix(int64(len(h.entries)+1), 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		h.entries = append(h.entries, e)
	}
	commit([]argent.Op{{Type: argent.OpPut, Key: []byte("first"), Value: []byte("v")}})
	commit([]argent.Op{{Type: argent.OpPut, Key: []byte("second"), Value: []byte("v")}})
	for b := 0; b < 20; b++ {
		ops := make([]argent.Op, 1000)
		for i := range ops {
			ops[i] = argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("burst/%06d", b*1000+i)), Value: []byte("v")}
		}
		commit(ops)
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
