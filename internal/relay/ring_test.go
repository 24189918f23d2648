package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/relay"
	"github.com/argent-kv/argent/internal/wire"
)

// entries returns n entries that follow base by index and chain hash.
func entries(base argent.State, n int) []argent.Entry {
	out := make([]argent.Entry, n)
	prev := base
	for i := range out {
		e := argent.Entry{Index: prev.Index + 1, Time: int64(prev.Index+1) * 1000, Ops: []argent.Op{
			{Type: argent.OpPut, Key: fmt.Appendf(nil, "k%d", prev.Index+1), Value: make([]byte, 100)},
		}}
		e.Chain = wire.NextChain(prev.Chain, &e)
		out[i] = e
		prev = logstore.StateOf(&e)
	}
	return out
}

// apply appends es to r in one group and commits it.
func apply(t *testing.T, r *relay.Ring, es []argent.Entry) {
	t.Helper()
	g := r.Begin()
	for i := range es {
		if err := g.AppendEntry(&es[i]); err != nil {
			t.Fatalf("append %d: %v", es[i].Index, err)
		}
	}
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
}

func noFetch(context.Context, string) (argent.State, error) {
	return argent.State{}, errors.New("no bootstrap in this test")
}

func TestRing_AppendEntryChecks(t *testing.T) {
	good := entries(argent.State{}, 3)
	badChain := good[1]
	badChain.Chain[0] ^= 1
	skip := good[2]
	for _, tt := range []struct {
		name string
		e    argent.Entry
		want error
	}{
		{"Next", good[1], nil},
		{"ChainMismatch", badChain, argent.ErrChainMismatch},
		{"Gap", skip, argent.ErrCorruption},
		{"Repeat", good[0], argent.ErrCorruption},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := relay.NewRing(1<<20, noFetch)
			apply(t, r, good[:1])
			g := r.Begin()
			err := g.AppendEntry(&tt.e)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("AppendEntry = %v, want %v", err, tt.want)
			}
			if err != nil {
				g.Discard()
			} else if err := g.Commit(); err != nil {
				t.Fatal(err)
			}
			want := argent.Index(1)
			if tt.want == nil {
				want = 2
			}
			if got := r.Applied(); got != want {
				t.Fatalf("Applied = %d, want %d", got, want)
			}
		})
	}
}

func TestRing_BoundedBytes(t *testing.T) {
	const max = 8 << 10
	r := relay.NewRing(max, noFetch)
	es := entries(argent.State{}, 200)
	for i := 0; i < len(es); i += 10 {
		apply(t, r, es[i:i+10])
	}
	if r.Bytes() > max {
		t.Fatalf("ring holds %d bytes, bound %d", r.Bytes(), max)
	}
	src := r.Source()
	first := src.LogFirst()
	if first <= 1 || src.Applied() != 200 {
		t.Fatalf("LogFirst %d, Applied %d: want the oldest entries dropped", first, src.Applied())
	}
	next := first
	for next <= src.Applied() {
		n, err := src.ReadLog(next, 1<<10, func(e *logstore.Entry) bool {
			if e.Index != next || e.Chain != es[e.Index-1].Chain {
				t.Fatalf("read entry %d (chain %x), want %d", e.Index, e.Chain[:4], next)
			}
			d, err := wire.DecodeEntry(e.Raw)
			if err != nil || d.Index != e.Index {
				t.Fatalf("raw of %d decodes to %d, %v", e.Index, d.Index, err)
			}
			next++
			return true
		})
		if err != nil || n != next {
			t.Fatalf("ReadLog = %d, %v; read up to %d", n, err, next)
		}
	}
	if _, err := src.ReadLog(first-1, 0, func(*logstore.Entry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("ReadLog before LogFirst = %v, want ErrCompacted", err)
	}
	if _, err := src.NewSnapshot(); !errors.Is(err, pull.ErrNoSnapshots) {
		t.Fatalf("NewSnapshot = %v, want ErrNoSnapshots", err)
	}
}

func TestRing_Bootstrap(t *testing.T) {
	base := entries(argent.State{}, 50)
	at := logstore.StateOf(&base[49])
	var asked string
	r := relay.NewRing(1<<20, func(_ context.Context, up string) (argent.State, error) {
		asked = up
		return at, nil
	})
	ds := argent.DatasetID{7}
	if err := r.AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	if !r.Source().Dataset().IsZero() {
		t.Fatal("a ring with no state offers its dataset to children")
	}
	apply(t, r, entries(argent.State{}, 3))
	if err := r.Bootstrap(context.Background(), "up:1"); err != nil {
		t.Fatal(err)
	}
	src := r.Source()
	if asked != "up:1" || r.State() != at || src.LogFirst() != 51 || src.Dataset() != ds {
		t.Fatalf("after bootstrap: asked %q, state %d, LogFirst %d, dataset %v", asked, r.State().Index, src.LogFirst(), src.Dataset())
	}
	// The log goes on from the state, chain checked against its hash.
	apply(t, r, entries(at, 5))
	if r.Applied() != 55 {
		t.Fatalf("Applied = %d, want 55", r.Applied())
	}
	// An upstream behind the ring is no place to start over.
	r2 := relay.NewRing(1<<20, func(context.Context, string) (argent.State, error) { return argent.State{Index: 2}, nil })
	apply(t, r2, entries(argent.State{}, 3))
	if err := r2.Bootstrap(context.Background(), "up:1"); err == nil {
		t.Fatal("Bootstrap to a state behind the ring succeeded")
	}
	if err := r.AdoptDataset(argent.DatasetID{8}); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Fatalf("AdoptDataset of another = %v", err)
	}
}

// Children are fed from the ring over the pull protocol; a child behind
// the ring is told TooOld and starts over; a replica and snapshot requests
// are refused.
func TestRing_ServesChildren(t *testing.T) {
	r := relay.NewRing(4<<10, noFetch)
	ds := argent.DatasetID{3}
	if err := r.AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	es := entries(argent.State{}, 100)
	apply(t, r, es)
	clock := pull.NewHeartbeatClock(time.Second, func() (argent.Index, int64) { st := r.State(); return st.Index, st.Time })
	metrics := pull.NewMetrics(nil)
	srv := pull.NewServer(pull.ServerConfig{Source: r.Source(), NodeID: "relay", Root: clock, Heartbeat: 20 * time.Millisecond,
		RefuseRoles: []string{"replica", "root"}, Metrics: metrics})
	t.Cleanup(srv.Close)
	tr := pull.NewInmemTransport()
	tr.Register("relay", srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := tr.OpenLog(ctx, "relay", 1, pull.Child{NodeID: "r1", Role: "replica", Dataset: ds}); !errors.Is(err, pull.ErrRefused) {
		t.Fatalf("log for a replica = %v, want ErrRefused", err)
	}
	if _, err := tr.OpenSnapshot(ctx, "relay", nil, pull.Child{NodeID: "p1", Role: "proxy", Dataset: ds}); !errors.Is(err, pull.ErrRefused) {
		t.Fatalf("snapshot = %v, want ErrRefused", err)
	}

	// A child (another ring) from index 1: TooOld, start over at the
	// relay's state, then follow.
	var bootstraps int
	child := relay.NewRing(1<<20, func(context.Context, string) (argent.State, error) {
		bootstraps++
		return r.State(), nil
	})
	f := pull.NewFollower(pull.FollowerConfig{Target: child, NodeID: "p1", Role: "proxy", Upstreams: []string{"relay"}, Transport: tr})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	waitChild := func(want argent.Index) {
		for child.Applied() < want {
			if ctx.Err() != nil {
				t.Fatalf("child at %d, want %d", child.Applied(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitChild(100)
	apply(t, r, entries(r.State(), 3))
	waitChild(103)
	cancel()
	<-done
	if bootstraps != 1 || child.State() != r.State() {
		t.Fatalf("child bootstrapped %d times, state %d, relay %d", bootstraps, child.State().Index, r.State().Index)
	}
}
