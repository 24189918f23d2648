package pull_test

import (
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

// A replica follows the root's log, catching up on what was written before
// it started and keeping up with what is written while it follows, and a
// replica of that replica does the same (a tree of depth two), on both
// transports.
func TestFollower_CatchUp(t *testing.T) {
	for _, kind := range pulltest.Transports {
		t.Run(kind, func(t *testing.T) {
			n := pulltest.NewNetwork(t, kind)
			r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			r.Write(t, "before", 40)
			rootAddr := n.Serve("root", r.Store, pull.ServerConfig{})

			mid := pulltest.NewStore(t, kv.Options{})
			midAddr := n.Serve("mid", mid, pull.ServerConfig{})
			fm := follow(t, n.Transport, mid, pull.FollowerConfig{NodeID: "mid", Upstreams: []string{rootAddr}})
			leaf := pulltest.NewStore(t, kv.Options{})
			follow(t, n.Transport, leaf, pull.FollowerConfig{NodeID: "leaf", Upstreams: []string{midAddr}})

			last := r.Write(t, "during", 40)
			pulltest.WaitApplied(t, mid, last)
			pulltest.WaitApplied(t, leaf, last)
			pulltest.CheckSame(t, mid, r.Store)
			pulltest.CheckSame(t, leaf, r.Store)
			if got := fm.metric(t, "argent_log_entries_received_total"); got != float64(last) {
				t.Errorf("mid received %v entries, want %d (each once)", got, last)
			}
			if !fm.Connected() || fm.Upstream() != rootAddr {
				t.Errorf("mid: connected %v to %q, want connected to %q", fm.Connected(), fm.Upstream(), rootAddr)
			}
		})
	}
}

// When the parent's log no longer holds the child's next index, the parent
// says so and the child bootstraps (here: loads a snapshot through
// FetchSnapshot), then follows the log from the snapshot's index.
func TestFollower_TooOldBootstraps(t *testing.T) {
	for _, kind := range pulltest.Transports {
		t.Run(kind, func(t *testing.T) {
			n := pulltest.NewNetwork(t, kind)
			r := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
			r.Write(t, "old", 60)
			pulltest.TrimAll(t, r.Store)
			addr := n.Serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 512})

			s := pulltest.NewStore(t, kv.Options{})
			f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{addr}})
			pulltest.WaitApplied(t, s, r.Applied())
			last := r.Write(t, "new", 10)
			pulltest.WaitApplied(t, s, last)
			pulltest.CheckSame(t, s, r.Store)
			for _, m := range []struct {
				name string
				want float64
			}{
				{"argent_snapshots_loaded_total", 1},
				{"argent_snapshot_records_received_total", 60},
				{"argent_snapshot_resumes_total", 0},
				{"argent_log_entries_received_total", 10},
			} {
				if got := f.metric(t, m.name); got != m.want {
					t.Errorf("%s = %v, want %v", m.name, got, m.want)
				}
			}
		})
	}
}

// Faults on a log stream: whatever ends it, the child resumes from its
// applied index + 1, with no gap and no entry applied twice, and counts
// the reason (and a corrupt frame).
func TestFollower_LogStreamFaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fault       pull.Fault
		wantReason  string
		wantCorrupt float64
	}{
		{name: "CutAfterHello", fault: pull.Fault{Kind: pull.FaultCut, After: 1}, wantReason: "error"},
		{name: "CutMidLog", fault: pull.Fault{Kind: pull.FaultCut, After: 8}, wantReason: "error"},
		{name: "CorruptHello", fault: pull.Fault{Kind: pull.FaultCorrupt, After: 0}, wantReason: "corruption", wantCorrupt: 1},
		{name: "CorruptEntry", fault: pull.Fault{Kind: pull.FaultCorrupt, After: 5}, wantReason: "corruption", wantCorrupt: 1},
		{name: "Refused", fault: pull.Fault{Kind: pull.FaultRefuse, Status: 503, Message: "busy"}, wantReason: "error"},
		{name: "Stall", fault: pull.Fault{Kind: pull.FaultStall, After: 3}, wantReason: "stall"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			r.Write(t, "a", 20)
			addr := n.Serve("root", r.Store, pull.ServerConfig{})
			n.Inmem.Inject(addr, tc.fault)

			s := pulltest.NewStore(t, kv.Options{})
			f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{addr}})
			pulltest.WaitApplied(t, s, r.Applied())
			last := r.Write(t, "b", 5)
			pulltest.WaitApplied(t, s, last)
			pulltest.CheckSame(t, s, r.Store)
			if got := f.metric(t, "argent_log_entries_received_total"); got != float64(last) {
				t.Errorf("received %v entries, want %d: an entry was fetched twice", got, last)
			}
			if got := f.metric(t, "argent_upstream_reconnects_total", tc.wantReason); got != 1 {
				t.Errorf("reconnects for %q = %v, want 1", tc.wantReason, got)
			}
			if got := f.metric(t, "argent_corrupt_frames_total"); got != tc.wantCorrupt {
				t.Errorf("corrupt frames = %v, want %v", got, tc.wantCorrupt)
			}
		})
	}
}

// A parent that stops sending (no entries, no heartbeats) is given up after
// the stall timeout, and the child moves to another upstream.
func TestFollower_StallMovesToAnotherUpstream(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	r.Write(t, "a", 20)
	rootAddr := n.Serve("root", r.Store, pull.ServerConfig{})
	mid := pulltest.NewStore(t, kv.Options{})
	midAddr := n.Serve("mid", mid, pull.ServerConfig{})
	follow(t, n.Transport, mid, pull.FollowerConfig{NodeID: "mid", Upstreams: []string{rootAddr}})
	// Both parents at the same index: the child picks the first, the root.
	pulltest.WaitApplied(t, mid, r.Applied())
	n.Inmem.Inject(rootAddr, pull.Fault{Kind: pull.FaultStall, After: 1})

	s := pulltest.NewStore(t, kv.Options{})
	f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{rootAddr, midAddr}})
	pulltest.WaitFor(t, "a move to mid", func() bool { return f.Upstream() == midAddr && f.Connected() })
	last := r.Write(t, "b", 5)
	pulltest.WaitApplied(t, s, last)
	pulltest.CheckSame(t, s, r.Store)
	if got := f.metric(t, "argent_upstream_reconnects_total", "stall"); got != 1 {
		t.Errorf("stall reconnects = %v, want 1", got)
	}
	if f.Upstream() != midAddr {
		t.Errorf("upstream %q, want %q", f.Upstream(), midAddr)
	}
}

// followTo brings a new child store to r's current state, then stops its
// follower.
func followTo(t *testing.T, n *pulltest.Network, addr string, r *pulltest.Root) *kv.Store {
	t.Helper()
	s := pulltest.NewStore(t, kv.Options{})
	f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{addr}})
	pulltest.WaitApplied(t, s, r.Applied())
	f.stop()
	return s
}

// A parent of the same dataset with another history at the child's index
// (its chain hash does not follow the child's) is refused, and the child
// moves on to one that holds its history, though the other is ahead.
func TestFollower_ChainMismatch(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	a := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	a.Write(t, "a", 5)
	aAddr := n.Serve("a", a.Store, pull.ServerConfig{})
	s := followTo(t, n, aAddr, a)

	b := pulltest.NewRoot(t, kv.Options{}, a.Dataset())
	b.Write(t, "b", 12)
	bAddr := n.Serve("b", b.Store, pull.ServerConfig{})
	a.Write(t, "a2", 3)

	f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{bAddr, aAddr}})
	pulltest.WaitApplied(t, s, a.Applied())
	pulltest.CheckSame(t, s, a.Store)
	if got := f.metric(t, "argent_upstream_reconnects_total", "refused"); got < 1 {
		t.Errorf("refused reconnects = %v, want >= 1", got)
	}
	if f.Upstream() != aAddr {
		t.Errorf("upstream %q, want %q", f.Upstream(), aAddr)
	}
}

// A child that moved to a learned parent when its listed one failed goes
// back to the listed one once it is healthy and caught up again.
func TestFollower_ReturnsToListedUpstream(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	r.Write(t, "a", 20)
	rootAddr := n.Serve("root", r.Store, pull.ServerConfig{})
	mid := pulltest.NewStore(t, kv.Options{})
	midAddr := n.Serve("mid", mid, pull.ServerConfig{})
	follow(t, n.Transport, mid, pull.FollowerConfig{NodeID: "mid", Upstreams: []string{rootAddr}})
	pulltest.WaitApplied(t, mid, r.Applied())

	n.Inmem.Unregister(midAddr)
	s := pulltest.NewStore(t, kv.Options{})
	f := follow(t, n.Transport, s, pull.FollowerConfig{Upstreams: []string{midAddr},
		MoreUpstreams: func() []string { return []string{rootAddr} }, ReturnInterval: 50 * time.Millisecond})
	pulltest.WaitFor(t, "a move to the learned root", func() bool { return f.Upstream() == rootAddr && f.Connected() })
	last := r.Write(t, "b", 5)
	pulltest.WaitApplied(t, s, last)

	n.Serve("mid", mid, pull.ServerConfig{})
	pulltest.WaitFor(t, "a return to the listed mid", func() bool { return f.Upstream() == midAddr && f.Connected() })
	last = r.Write(t, "c", 5)
	pulltest.WaitApplied(t, s, last)
	pulltest.CheckSame(t, s, r.Store)
}
