package pull_test

import (
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
)

// A replica follows the root's log, catching up on what was written before
// it started and keeping up with what is written while it follows, and a
// replica of that replica does the same (a tree of depth two), on both
// transports.
func TestFollower_CatchUp(t *testing.T) {
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			n := newNetwork(t, kind)
			r := newRoot(t, kv.Options{}, argent.DatasetID{})
			r.write(t, "before", 40)
			rootAddr := n.serve("root", r.Store, pull.ServerConfig{})

			mid := newStore(t, kv.Options{})
			midAddr := n.serve("mid", mid, pull.ServerConfig{})
			fm := follow(t, n.tr, mid, pull.FollowerConfig{NodeID: "mid", Upstreams: []string{rootAddr}})
			leaf := newStore(t, kv.Options{})
			follow(t, n.tr, leaf, pull.FollowerConfig{NodeID: "leaf", Upstreams: []string{midAddr}})

			last := r.write(t, "during", 40)
			waitApplied(t, mid, last)
			waitApplied(t, leaf, last)
			checkSame(t, mid, r.Store)
			checkSame(t, leaf, r.Store)
			if got := fm.metric(t, "argent_log_entries_received_total"); got != float64(last) {
				t.Errorf("mid received %v entries, want %d (each once)", got, last)
			}
			if !fm.Connected() || fm.Upstream() != rootAddr {
				t.Errorf("mid: connected %v to %q, want connected to %q", fm.Connected(), fm.Upstream(), rootAddr)
			}
		})
	}
}

// trimAll drops every log entry the root holds, so that a new child must
// start from a snapshot.
func trimAll(t *testing.T, s *kv.Store) {
	t.Helper()
	for {
		res, err := s.Trim()
		if err != nil {
			t.Fatalf("trim: %v", err)
		}
		if !res.Progress() {
			break
		}
	}
	if s.LogFirst() != s.Applied()+1 {
		t.Fatalf("log starts at %d after trim, want %d", s.LogFirst(), s.Applied()+1)
	}
}

// When the parent's log no longer holds the child's next index, the child
// loads a snapshot, then follows the log from the snapshot's index.
func TestFollower_TooOldBootstraps(t *testing.T) {
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			n := newNetwork(t, kind)
			r := newRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
			r.write(t, "old", 60)
			trimAll(t, r.Store)
			addr := n.serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 512})

			s := newStore(t, kv.Options{})
			f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{addr}})
			waitApplied(t, s, r.Applied())
			last := r.write(t, "new", 10)
			waitApplied(t, s, last)
			checkSame(t, s, r.Store)
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
			n := newNetwork(t, "inmem")
			r := newRoot(t, kv.Options{}, argent.DatasetID{})
			r.write(t, "a", 20)
			addr := n.serve("root", r.Store, pull.ServerConfig{})
			n.inmem.Inject(addr, tc.fault)

			s := newStore(t, kv.Options{})
			f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{addr}})
			waitApplied(t, s, r.Applied())
			last := r.write(t, "b", 5)
			waitApplied(t, s, last)
			checkSame(t, s, r.Store)
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
	n := newNetwork(t, "inmem")
	r := newRoot(t, kv.Options{}, argent.DatasetID{})
	r.write(t, "a", 20)
	rootAddr := n.serve("root", r.Store, pull.ServerConfig{})
	mid := newStore(t, kv.Options{})
	midAddr := n.serve("mid", mid, pull.ServerConfig{})
	follow(t, n.tr, mid, pull.FollowerConfig{NodeID: "mid", Upstreams: []string{rootAddr}})
	// Both parents at the same index: the child picks the first, the root.
	waitApplied(t, mid, r.Applied())
	n.inmem.Inject(rootAddr, pull.Fault{Kind: pull.FaultStall, After: 1})

	s := newStore(t, kv.Options{})
	f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{rootAddr, midAddr}})
	waitFor(t, "a move to mid", func() bool { return f.Upstream() == midAddr && f.Connected() })
	last := r.write(t, "b", 5)
	waitApplied(t, s, last)
	checkSame(t, s, r.Store)
	if got := f.metric(t, "argent_upstream_reconnects_total", "stall"); got != 1 {
		t.Errorf("stall reconnects = %v, want 1", got)
	}
	if f.Upstream() != midAddr {
		t.Errorf("upstream %q, want %q", f.Upstream(), midAddr)
	}
}

// followTo brings a new child store to r's current state, then stops its
// follower.
func followTo(t *testing.T, n *network, addr string, r *testRoot) *kv.Store {
	t.Helper()
	s := newStore(t, kv.Options{})
	f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{addr}})
	waitApplied(t, s, r.Applied())
	f.stop()
	return s
}

// A parent of the same dataset with another history at the child's index
// (its chain hash does not follow the child's) is refused, and the child
// moves on to one that holds its history, though the other is ahead.
func TestFollower_ChainMismatch(t *testing.T) {
	n := newNetwork(t, "inmem")
	a := newRoot(t, kv.Options{}, argent.DatasetID{})
	a.write(t, "a", 5)
	aAddr := n.serve("a", a.Store, pull.ServerConfig{})
	s := followTo(t, n, aAddr, a)

	b := newRoot(t, kv.Options{}, a.Dataset())
	b.write(t, "b", 12)
	bAddr := n.serve("b", b.Store, pull.ServerConfig{})
	a.write(t, "a2", 3)

	f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{bAddr, aAddr}})
	waitApplied(t, s, a.Applied())
	checkSame(t, s, a.Store)
	if got := f.metric(t, "argent_upstream_reconnects_total", "refused"); got < 1 {
		t.Errorf("refused reconnects = %v, want >= 1", got)
	}
	if f.Upstream() != aAddr {
		t.Errorf("upstream %q, want %q", f.Upstream(), aAddr)
	}
}

// A parent of another dataset is refused: by the parent itself when it is
// the only upstream (the child is never fed), or already by the probe when
// there is a choice.
func TestFollower_DatasetMismatch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		alsoA       bool // A (the child's own dataset) is an upstream too, after C
		wantRefused bool // the stream to C is opened and refused
	}{
		{name: "OnlyUpstream", wantRefused: true},
		{name: "ProbeSkipsIt", alsoA: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNetwork(t, "inmem")
			a := newRoot(t, kv.Options{}, argent.DatasetID{})
			a.write(t, "a", 5)
			aAddr := n.serve("a", a.Store, pull.ServerConfig{})
			s := followTo(t, n, aAddr, a)

			c := newRoot(t, kv.Options{}, argent.DatasetID{})
			c.write(t, "c", 20)
			ups := []string{n.serve("c", c.Store, pull.ServerConfig{})}
			if tc.alsoA {
				ups = append(ups, aAddr)
			}
			a.write(t, "a2", 3)

			f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: ups})
			if tc.wantRefused {
				waitFor(t, "two refusals", func() bool { return f.metric(t, "argent_upstream_reconnects_total", "refused") >= 2 })
				if s.Applied() != 5 || s.Dataset() != a.Dataset() {
					t.Fatalf("child at %d of %s, want 5 of %s", s.Applied(), s.Dataset(), a.Dataset())
				}
				return
			}
			waitApplied(t, s, a.Applied())
			checkSame(t, s, a.Store)
			if got := f.metric(t, "argent_upstream_reconnects_total", "refused"); got != 0 {
				t.Errorf("refused reconnects = %v, want 0 (the probe rules C out)", got)
			}
		})
	}
}

// A snapshot load cut part way resumes after the last key it stored (it
// does not start over), from the same state or from a newer one, which the
// child then reaches by replaying the log.
func TestFollower_SnapshotResumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newer int // entries the parent commits between the cut and the resume
	}{
		{name: "SameState"},
		{name: "NewerState", newer: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNetwork(t, "inmem")
			r := newRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
			r.write(t, "k", 200)
			trimAll(t, r.Store)
			addr := n.serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 256})
			// SnapBegin and 3 chunks arrive, then the parent stops sending
			// until the link is cut.
			n.inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultStall, After: 4})

			s := newStore(t, kv.Options{})
			f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{addr}, StallTimeout: waitLimit})
			waitFor(t, "part of the snapshot", func() bool { return f.metric(t, "argent_snapshot_records_received_total") > 0 })
			if tc.newer > 0 {
				r.write(t, "newer", tc.newer)
			}
			n.inmem.Cut(addr)

			waitApplied(t, s, r.Applied())
			checkSame(t, s, r.Store)
			for _, m := range []struct {
				name string
				want float64
			}{
				{"argent_snapshots_loaded_total", 1},
				{"argent_snapshot_resumes_total", 1},
				{"argent_snapshot_records_received_total", 200 + float64(tc.newer)},
				{"argent_log_entries_received_total", float64(tc.newer)},
			} {
				if got := f.metric(t, m.name); got != m.want {
					t.Errorf("%s = %v, want %v", m.name, got, m.want)
				}
			}
		})
	}
}

// A cut snapshot load resumes on its own: FaultCut ends the transfer and
// the child asks again, after the last key it stored.
func TestFollower_SnapshotCutResumes(t *testing.T) {
	n := newNetwork(t, "inmem")
	r := newRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
	r.write(t, "k", 120)
	trimAll(t, r.Store)
	addr := n.serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 256})
	for i := range 2 {
		n.inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultCut, After: 2 + i})
	}
	s := newStore(t, kv.Options{})
	f := follow(t, n.tr, s, pull.FollowerConfig{Upstreams: []string{addr}})
	waitApplied(t, s, r.Applied())
	checkSame(t, s, r.Store)
	if got := f.metric(t, "argent_snapshot_resumes_total"); got != 2 {
		t.Errorf("resumes = %v, want 2", got)
	}
	if got := f.metric(t, "argent_snapshot_records_received_total"); got != 120 {
		t.Errorf("records received = %v, want 120 (none twice)", got)
	}
}
