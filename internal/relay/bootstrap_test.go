package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/relay"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

// ringLog returns the raw entries of r from index from to its last.
func ringLog(t *testing.T, r *relay.Ring, from argent.Index) [][]byte {
	t.Helper()
	var out [][]byte
	for from <= r.Applied() {
		next, err := r.ReadLog(from, 1<<20, func(e *logstore.Entry) bool {
			out = append(out, bytes.Clone(e.Raw))
			return true
		})
		if err != nil {
			t.Fatalf("ring: read log from %d: %v", from, err)
		}
		from = next
	}
	return out
}

// sameLog fails unless got and want are the same entries.
func sameLog(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: entry %d of %d differs", what, i, len(want))
		}
	}
}

// secondFrame opens the log of the relay's pull server (up, on tr) from
// index from and returns the frame after the Hello.
func secondFrame(t *testing.T, tr pull.Transport, up string, from argent.Index) (wire.FrameType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := tr.OpenLog(ctx, up, from, pull.Child{NodeID: "probe", Role: "proxy", Dataset: ds})
	if err != nil {
		t.Fatalf("open log from %d: %v", from, err)
	}
	defer rc.Close()
	rd := wire.NewReader(rc, 1<<20)
	if ft, _, err := rd.ReadFrame(); err != nil || ft != wire.FrameHello {
		t.Fatalf("log from %d: first frame %v, %v; want a Hello", from, ft, err)
	}
	for {
		ft, p, err := rd.ReadFrame()
		if err != nil {
			t.Fatalf("log from %d: %v", from, err)
		}
		if ft != wire.FrameHeartbeat {
			return ft, bytes.Clone(p)
		}
	}
}

// A fresh relay whose upstream no longer holds index 1 starts over at the
// upstream's state, taken from its filter (index, time and chain hash), and
// follows the entries after it, each checked by chain hash. Its children
// are then told TooOld for an index before that state: one starts over at
// the filter the relay serves, and follows the relay after it.
func TestRelay_StartsOverAtUpstreamState(t *testing.T) {
	root := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, ds)
	start := root.Write(t, "old", 60)
	pulltest.TrimAll(t, root.Store)
	at := root.State()
	rep := serveStore(t, root.Store, nil)

	reg := prometheus.NewRegistry()
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: []string{rep.addr()},
		Heartbeat: pulltest.Heartbeat, StallTimeout: pulltest.Stall, PullMetrics: pull.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rl.Register(mux)
	addr := newLocalServer(t, mux)
	t.Cleanup(rl.Close)
	pulltest.Go(t, rl.Run)
	ring := rl.Ring()

	// The ring starts over, empty, at the upstream's state.
	pulltest.WaitFor(t, "the relay's start-over", func() bool { return ring.Ready() })
	if got := ring.State(); got != at || ring.Dataset() != ds {
		t.Fatalf("relay at %+v of %s, want the upstream's state %+v of %s", got, ring.Dataset(), at, ds)
	}
	if got := ring.LogFirst(); got != start+1 || ring.Bytes() != 0 {
		t.Fatalf("ring LogFirst %d with %d bytes, want %d and empty", got, ring.Bytes(), start+1)
	}
	if n := rep.filters.Load(); n != 1 {
		t.Fatalf("the start-over asked for %d filters, want 1", n)
	}
	// The filter it started from is the one it serves.
	h, _ := getFilter(t, addr, "")
	if h.Get(apiwire.HeaderIndex) != fmt.Sprint(start) || rep.filters.Load() != 1 {
		t.Fatalf("the relay serves a filter as of %s after %d upstream filters; want its start-over's, as of %d",
			h.Get(apiwire.HeaderIndex), rep.filters.Load(), start)
	}

	// New entries follow the state by chain hash.
	last := root.Write(t, "new", 10)
	pulltest.WaitFor(t, "the relay to follow", func() bool { return ring.Applied() == last })
	if got := ring.State(); got != root.State() {
		t.Fatalf("relay at %+v, root at %+v", got, root.State())
	}
	sameLog(t, "relay's log", ringLog(t, ring, start+1), pulltest.ReadLog(t, root.Store, start+1))

	// A child asking for an index the ring does not hold is told TooOld;
	// one asking for the next index after the start-over gets it.
	tr := pull.NewInmemTransport()
	tr.Register("relay", rl.PullServer())
	if ft, p := secondFrame(t, tr, "relay", start); ft != wire.FrameTooOld {
		t.Fatalf("log from %d: frame %v, want TooOld", start, ft)
	} else if old, err := wire.DecodeTooOld(p); err != nil || old.FirstIndex != start+1 {
		t.Fatalf("TooOld %+v, %v; want first index %d", old, err, start+1)
	}
	if ft, p := secondFrame(t, tr, "relay", start+1); ft != wire.FrameEntry {
		t.Fatalf("log from %d: frame %v, want an entry", start+1, ft)
	} else if e, err := wire.DecodeEntry(p); err != nil || e.Index != start+1 {
		t.Fatalf("log from %d: entry %d, %v", start+1, e.Index, err)
	}

	// A fresh proxy-like child: a start-over at the relay's filter, then
	// the relay's log after it.
	c := lookupClient(t, addr, ds)
	var boots atomic.Int64
	var bootState atomic.Pointer[argent.State]
	child := relay.NewRing(1<<20, func(ctx context.Context, _ string) (argent.State, error) {
		boots.Add(1)
		_, st, err := c.Filter(ctx, 0)
		bootState.Store(&st)
		return st, err
	})
	f := pull.NewFollower(pull.FollowerConfig{Target: child, NodeID: "p1", Role: "proxy", Upstreams: []string{"relay"},
		Transport: tr, StallTimeout: pulltest.Stall})
	pulltest.Go(t, f.Run)
	pulltest.WaitFor(t, "the child to follow", func() bool { return child.Applied() == last })
	last = root.Write(t, "newer", 5)
	pulltest.WaitFor(t, "the child to follow new entries", func() bool { return child.Applied() == last })
	if got := child.State(); got != root.State() || child.Dataset() != ds {
		t.Fatalf("child at %+v of %s, root at %+v", got, child.Dataset(), root.State())
	}
	b := bootState.Load()
	if boots.Load() != 1 || b == nil || b.Index < start || b.Index >= last {
		t.Fatalf("the child started over %d times, at %+v; want once, at an index from %d", boots.Load(), b, start)
	}
	sameLog(t, "child's log", ringLog(t, child, b.Index+1), pulltest.ReadLog(t, root.Store, b.Index+1))
	if got := pulltest.Metric(t, reg, "argent_log_too_old_total"); got != 1 {
		t.Fatalf("the relay told TooOld %v times, want 1 (the probe; a fresh child asks for no old index)", got)
	}
}

// A fresh relay starts over at its upstream's state even when the upstream
// still holds the whole log: it does not replay the log from index 1
// through a buffer that keeps only its last entries.
func TestRelay_FreshStartsAtTheHead(t *testing.T) {
	root := pulltest.NewRoot(t, kv.Options{}, ds)
	start := root.Write(t, "old", 60)
	if first := root.Store.LogFirst(); first != 1 {
		t.Fatalf("the upstream's log starts at %d, want 1 for this test", first)
	}
	rep := serveStore(t, root.Store, nil)
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: []string{rep.addr()},
		Heartbeat: pulltest.Heartbeat, StallTimeout: pulltest.Stall, PullMetrics: pull.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rl.Close)
	pulltest.Go(t, rl.Run)
	ring := rl.Ring()
	pulltest.WaitFor(t, "the relay's start-over", func() bool { return ring.Ready() })
	if got := ring.LogFirst(); got != start+1 || ring.Bytes() != 0 {
		t.Fatalf("ring LogFirst %d with %d bytes, want %d and empty: the relay replayed the upstream's log", got, ring.Bytes(), start+1)
	}
	last := root.Write(t, "new", 5)
	pulltest.WaitFor(t, "the relay to follow", func() bool { return ring.Applied() == last })
	sameLog(t, "relay's log", ringLog(t, ring, start+1), pulltest.ReadLog(t, root.Store, start+1))
}

// The entries after a start-over are checked against the chain hash of the
// state it started at: an upstream whose log is of another history than
// its filter is never followed past that state.
func TestRelay_StartOverChecksChain(t *testing.T) {
	a := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, ds)
	start := a.Write(t, "a", 60)
	pulltest.TrimAll(t, a.Store)
	b := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, ds)
	b.Write(t, "b", 60)
	pulltest.TrimAll(t, b.Store)
	b.Write(t, "b-next", 10)
	// The filter (the state to start over at) is a's, the log b's.
	rep := serveStores(t, b.Store, a.Store, nil)

	reg := prometheus.NewRegistry()
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: []string{rep.addr()},
		Heartbeat: pulltest.Heartbeat, StallTimeout: pulltest.Stall, PullMetrics: pull.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rl.Close)
	pulltest.Go(t, rl.Run)
	pulltest.WaitFor(t, "a refused entry", func() bool {
		return pulltest.Metric(t, reg, "argent_upstream_reconnects_total", "refused") >= 2
	})
	if got := rl.Ring().State(); got != a.State() || got.Index != start {
		t.Fatalf("relay at %+v, want a's state %+v: no entry of b's history", got, a.State())
	}
}
