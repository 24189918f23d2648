package replica_test

import (
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/replica"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

// A replica follows the root's log, catching up on what was written before
// it started and keeping up with what is written while it follows; a
// replica of that replica does the same (a tree of depth two). Each one
// knows where the root is and that it is not behind.
func TestReplica_CatchUp(t *testing.T) {
	for _, kind := range pulltest.Transports {
		t.Run(kind, func(t *testing.T) {
			n := pulltest.NewNetwork(t, kind)
			r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			r.Write(t, "before", 40)
			rootAddr := n.Serve("root", r.Store, pull.ServerConfig{})

			mid := pulltest.NewStore(t, kv.Options{})
			midAddr := n.Serve("mid", mid, pull.ServerConfig{})
			rm := start(t, n.Transport, mid, replica.Config{NodeID: "mid", Upstreams: []string{rootAddr}})
			leaf := pulltest.NewStore(t, kv.Options{})
			rl := start(t, n.Transport, leaf, replica.Config{NodeID: "leaf", Upstreams: []string{midAddr}})

			last := r.Write(t, "during", 40)
			pulltest.WaitApplied(t, mid, last)
			pulltest.WaitApplied(t, leaf, last)
			pulltest.CheckSame(t, mid, r.Store)
			pulltest.CheckSame(t, leaf, r.Store)
			if got := rm.metric(t, "argent_log_entries_received_total"); got != float64(last) {
				t.Errorf("mid received %v entries, want %d (each once)", got, last)
			}
			for _, c := range []struct {
				name string
				r    *running
				up   string
			}{{"mid", rm, rootAddr}, {"leaf", rl, midAddr}} {
				pulltest.WaitFor(t, c.name+" to hear the root at its index", func() bool { i, _ := c.r.Root(); return i == last })
				if !c.r.Connected() || c.r.Upstream() != c.up {
					t.Errorf("%s: connected %v to %q, want connected to %q", c.name, c.r.Connected(), c.r.Upstream(), c.up)
				}
				if idx, secs := c.r.Lag(); idx != 0 || secs > 1 {
					t.Errorf("%s: lag %d indexes, %v s; want 0 indexes, under 1 s", c.name, idx, secs)
				}
			}
		})
	}
}

// Entries that arrive together are applied as one group with one fsynced
// commit, and no group is larger than MaxGroup.
func TestReplica_AppliesInGroups(t *testing.T) {
	const entries, maxGroup = 300, 16
	n := pulltest.NewNetwork(t, "inmem")
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	last := r.Write(t, "k", entries)
	addr := n.Serve("root", r.Store, pull.ServerConfig{})

	s := pulltest.NewStore(t, kv.Options{})
	rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}, MaxGroup: maxGroup})
	pulltest.WaitApplied(t, s, last)
	pulltest.CheckSame(t, s, r.Store)
	commits := rp.metric(t, "argent_apply_commits_total")
	if min := float64((entries + maxGroup - 1) / maxGroup); commits < min {
		t.Errorf("%v commits for %d entries: a group was larger than %d", commits, entries, maxGroup)
	}
	if commits > entries/2 {
		t.Errorf("%v commits for %d entries that were all there when the replica started: too few shared one", commits, entries)
	}
}

// A replica refuses a parent of another dataset: the parent itself refuses
// it when it is the only upstream (the replica is never fed), and the probe
// rules it out when there is a choice.
func TestReplica_RefusesAnotherDataset(t *testing.T) {
	for _, tc := range []struct {
		name        string
		alsoA       bool // A (the replica's own dataset) is an upstream too, after C
		wantRefused bool // the stream to C is opened and refused
	}{
		{name: "OnlyUpstream", wantRefused: true},
		{name: "ProbeSkipsIt", alsoA: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			a := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			a.Write(t, "a", 5)
			aAddr := n.Serve("a", a.Store, pull.ServerConfig{})
			s := followTo(t, n, aAddr, a)

			c := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			c.Write(t, "c", 20)
			ups := []string{n.Serve("c", c.Store, pull.ServerConfig{})}
			if tc.alsoA {
				ups = append(ups, aAddr)
			}
			a.Write(t, "a2", 3)

			rp := start(t, n.Transport, s, replica.Config{Upstreams: ups})
			if tc.wantRefused {
				pulltest.WaitFor(t, "two refusals", func() bool { return rp.metric(t, "argent_upstream_reconnects_total", "refused") >= 2 })
				if s.Applied() != 5 || s.Dataset() != a.Dataset() {
					t.Fatalf("replica at %d of %s, want 5 of %s", s.Applied(), s.Dataset(), a.Dataset())
				}
				return
			}
			pulltest.WaitApplied(t, s, a.Applied())
			pulltest.CheckSame(t, s, a.Store)
			if got := rp.metric(t, "argent_upstream_reconnects_total", "refused"); got != 0 {
				t.Errorf("refused reconnects = %v, want 0 (the probe rules C out)", got)
			}
		})
	}
}

// followTo brings a new replica's store to r's current state, then stops
// the replica.
func followTo(t *testing.T, n *pulltest.Network, addr string, r *pulltest.Root) *kv.Store {
	t.Helper()
	s := pulltest.NewStore(t, kv.Options{})
	rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}})
	pulltest.WaitApplied(t, s, r.Applied())
	rp.stop()
	return s
}

// A replica of a dataset with no entries yet takes the dataset and learns
// from its upstream that index 0 is the dataset's state.
func TestReplica_EmptyDataset(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	addr := n.Serve("root", r.Store, pull.ServerConfig{})
	s := pulltest.NewStore(t, kv.Options{})
	rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}})
	pulltest.WaitFor(t, "the empty dataset", rp.EmptyUpstream)
	if s.Dataset() != r.Dataset() || s.Applied() != 0 {
		t.Errorf("replica at %d of %s, want 0 of %s", s.Applied(), s.Dataset(), r.Dataset())
	}
}
