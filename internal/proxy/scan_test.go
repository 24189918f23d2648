package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// truthScan is the page of a scan of the history's state at index at: at
// most limit keys with prefix after after, their values, and whether more
// follow.
func truthScan(h *history, prefix, after string, limit int, at argent.Index) (keys, vals []string, more bool) {
	state := h.stateAt(at)
	for k := range state {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	more = len(keys) > limit
	keys = keys[:min(len(keys), limit)]
	for _, k := range keys {
		vals = append(vals, state[k])
	}
	return keys, vals, more
}

// checkScan scans at the proxy's applied index and compares the page with
// the history's state there, and the mod indexes with those of st, a
// store that holds that state.
func checkScan(t *testing.T, p *proxy.Proxy, h *history, st *kv.Store, prefix, after string, limit int) {
	t.Helper()
	at := p.Applied()
	what := fmt.Sprintf("scan %q after %q limit %d at %d", prefix, after, limit, at)
	items, more, err := p.Scan(context.Background(), []byte(prefix), []byte(after), limit, at)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	keys, vals, wantMore := truthScan(h, prefix, after, limit, at)
	if len(items) != len(keys) || more != wantMore {
		t.Fatalf("%s: %d items, more %v; want %d (%q), more %v", what, len(items), more, len(keys), keys, wantMore)
	}
	stItems, _, err := st.Scan(context.Background(), []byte(prefix), []byte(after), limit, at)
	if err != nil {
		t.Fatalf("store %s: %v", what, err)
	}
	if len(stItems) != len(items) {
		t.Fatalf("%s: %d items, the store has %d", what, len(items), len(stItems))
	}
	for i, it := range items {
		if string(it.Key) != keys[i] || string(it.Value.Value) != vals[i] || it.ModIndex != stItems[i].ModIndex {
			t.Fatalf("%s: item %d is %q=%q@%d, want %q=%q@%d", what, i, it.Key, it.Value.Value, it.ModIndex, keys[i], vals[i], stItems[i].ModIndex)
		}
	}
}

// TestProxy_ScanAheadReplica moves a proxy through a history while a
// replica ahead of it answers its scans: every page, and every walk of
// pages, is the state at the proxy's index.
func TestProxy_ScanAheadReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	h := makeHistory(t, rng, 200, 60)
	ahead := newReplica(t, h, 200)
	p := newProxy(t, []string{ahead.addr}, 2<<10, window.Options{MaxBatches: 20})
	for at := 0; at <= 200; at += 1 + rng.IntN(15) {
		apply(t, p, h, at, rng)
		for _, prefix := range []string{"", "k0", "k01", "k05", "x"} {
			for _, after := range []string{"", "k0", "k010", "k045"} {
				for _, limit := range []int{1, 7, 100} {
					checkScan(t, p, h, ahead.st, prefix, after, limit)
				}
			}
		}
		// A walk of three-key pages finds every key once.
		var walked []string
		var after []byte
		for {
			items, more, err := p.Scan(context.Background(), []byte("k"), after, 3, p.Applied())
			if err != nil {
				t.Fatalf("walk at %d: %v", p.Applied(), err)
			}
			for _, it := range items {
				walked = append(walked, string(it.Key))
			}
			if !more {
				break
			}
			after = items[len(items)-1].Key
		}
		if keys, _, _ := truthScan(h, "k", "", 1000, p.Applied()); strings.Join(walked, ",") != strings.Join(keys, ",") {
			t.Fatalf("walk at %d: %q, want %q", p.Applied(), walked, keys)
		}
	}
	if n := p.Stats().L3.Load(); n == 0 {
		t.Errorf("no scan counted as answered by a replica")
	}
}

// TestProxy_ScanBehindReplica gives the proxy only a replica behind it:
// scans fail (never a page as of the replica's index) until the replica
// catches up, and a scan that the replica catches up with while it waits
// is answered with the state at the proxy's index.
func TestProxy_ScanBehindReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	h := makeHistory(t, rng, 200, 40)
	behind := newReplica(t, h, 150)
	p := newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{behind.addr}, Window: window.Options{MaxBatches: 100}, MissWait: 2 * time.Second})
	apply(t, p, h, 190, rng)

	// The window reaches back past the replica's index, yet no page as of
	// 150 is taken.
	start := time.Now()
	items, _, err := p.Scan(context.Background(), nil, nil, 100, p.Applied())
	if !errors.Is(err, argent.ErrUnavailable) || !errors.Is(err, lookup.ErrBehind) {
		t.Fatalf("scan at %d with a replica at 150: %d items, err %v; want ErrUnavailable from a replica behind", p.Applied(), len(items), err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("scan failed after %v, before the 2 s miss wait", d)
	}

	// The replica catches up while the scan waits.
	type answer struct {
		items []argent.Item
		more  bool
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		items, more, err := p.Scan(context.Background(), []byte("k0"), nil, 100, 190)
		done <- answer{items, more, err}
	}()
	time.Sleep(50 * time.Millisecond)
	behind.feed(t, h, 195)
	a := <-done
	if a.err != nil {
		t.Fatalf("scan at 190 with a replica catching up: %v", a.err)
	}
	keys, vals, more := truthScan(h, "k0", "", 100, 190)
	if len(a.items) != len(keys) || a.more != more {
		t.Fatalf("scan at 190: %d items, more %v; want %d, more %v", len(a.items), a.more, len(keys), more)
	}
	for i, it := range a.items {
		if string(it.Key) != keys[i] || string(it.Value.Value) != vals[i] {
			t.Fatalf("scan at 190: item %d is %q=%q, want %q=%q", i, it.Key, it.Value.Value, keys[i], vals[i])
		}
	}
	checkScan(t, p, h, behind.st, "", "", 100)
}

// TestProxy_ScanSkipsBehindReplica: with one replica behind and one
// ahead, in either order, scans are answered by the one ahead.
func TestProxy_ScanSkipsBehindReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	h := makeHistory(t, rng, 100, 30)
	behind := newReplica(t, h, 50)
	ahead := newReplica(t, h, 100)
	for _, order := range [][]string{{behind.addr, ahead.addr}, {ahead.addr, behind.addr}} {
		p := newProxyWith(t, 1<<20, proxy.Config{Replicas: order, MissWait: 2 * time.Second})
		apply(t, p, h, 90, rng)
		checkScan(t, p, h, ahead.st, "k", "", 100)
	}
}

// TestProxy_ScanInput: a scan past the proxy's index, of no keys, or with a
// prefix over the key limit fails before any replica is asked.
func TestProxy_ScanInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	h := makeHistory(t, rng, 10, 10)
	r := newReplica(t, h, 10)
	p := newProxy(t, []string{r.addr}, 1<<20, window.Options{})
	apply(t, p, h, 10, rng)
	long := []byte(strings.Repeat("k", argent.DefaultMaxKey+1))
	for _, tc := range []struct {
		name          string
		prefix, after []byte
		limit         int
		at            argent.Index
		want          error
	}{
		{name: "Future", limit: 1, at: 11, want: argent.ErrFuture},
		{name: "ZeroLimit", limit: 0, at: 10, want: argent.ErrInvalid},
		{name: "LongPrefix", prefix: long, limit: 1, at: 10, want: argent.ErrTooLarge},
		{name: "LongAfter", after: long, limit: 1, at: 10, want: argent.ErrTooLarge},
	} {
		if _, _, err := p.Scan(context.Background(), tc.prefix, tc.after, tc.limit, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
