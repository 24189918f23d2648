package tests

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// The membership changes TestGroup_Linearizable (group_test.go) makes while
// its clients run: a member is removed at another member (DELETE
// /v1/members/ID), sent requests for removedGrace more and stopped, and a
// new one, started with --join, a new ID and an empty data directory, is
// added (POST /v1/members); once it applied the group's index the clients
// send to it too. The group keeps its proxies between members
// (cluster.Group.Join gives the new member its own).

// memberChangeTimeout bounds one membership change or transfer: Raft
// takes one change at a time and drops one proposed meanwhile.
const memberChangeTimeout = 10 * time.Second

// removeAndAddFollower removes a follower at the other follower, stops it,
// and adds a new member in its place.
func removeAndAddFollower(t *testing.T, g *cluster.Group, targets *linTargets) {
	l := g.WaitLeader(10 * time.Second)
	i := slices.Index(g.Members, l)
	f, via := g.Members[(i+1)%len(g.Members)], g.Members[(i+2)%len(g.Members)]
	removeMember(t, g, targets, f, via)
	addMember(t, g, targets, via)
}

// transferAndRemoveLeader moves the leadership to a follower, removes the
// old leader at it, stops the old leader and adds a new member.
func transferAndRemoveLeader(t *testing.T, g *cluster.Group, targets *linTargets) {
	l := g.WaitLeader(10 * time.Second)
	f := g.Members[(slices.Index(g.Members, l)+1)%len(g.Members)]
	ctx, cancel := ctxTimeout(memberChangeTimeout)
	defer cancel()
	start := time.Now()
	if _, err := newClient(t, l).TransferLeader(ctx, g.ID(f)); err != nil {
		t.Fatalf("transfer the leadership from %s to %s (member %d): %v", l.Name, f.Name, g.ID(f), err)
	}
	cluster.WaitFor(t, 10*time.Second, func() error {
		now, err := g.Leader()
		if err == nil && now != f {
			err = fmt.Errorf("%s leads, not %s", now.Name, f.Name)
		}
		return err
	})
	t.Logf("moved the leadership from %s to %s in %v", l.Name, f.Name, time.Since(start).Round(time.Millisecond))
	removeMember(t, g, targets, l, f)
	addMember(t, g, targets, f)
}

// joinAfterCompaction adds a member to a group whose Raft log no longer
// reaches back to its start, so that the member loads a snapshot, and
// checks that it did, that linearizable reads there answer the log's state
// and that it takes writes.
func joinAfterCompaction(t *testing.T, g *cluster.Group, targets *linTargets) {
	l := g.WaitLeader(10 * time.Second)
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s at raft applied index %d before the join", l.Name, st.Group.Applied)
	m := addMember(t, g, targets, l)
	hc := rawHTTP(t)
	if n := metric(t, hc, m, "argent_snapshots_loaded_total"); n < 1 {
		t.Errorf("%s joined without loading a snapshot: the leader's Raft log still reached back to the start", m.Name)
	}

	// Linearizable reads at the new member answer the state of the log
	// (read from the leader) at their index.
	items, s, err := linScan(hc, m.Addr, "glin/")
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	entries, err := fetchLog(newClient(t, l), s, 10*time.Second)
	if err != nil {
		t.Fatalf("%s's log up to %d: %v", l.Name, s, err)
	}
	tr := newTruth(entries)
	for _, key := range []string{"glin/0", "glin/1", "glin/2", "glin/3", "glin/4", "glin/5"} {
		got, ok := items[key]
		if !ok {
			got = client.Item{Key: key, Absent: true}
		}
		if want := tr.item(key, s); !itemEqual(got, want) {
			t.Errorf("%s: linearizable scan at S=%d: %s, but the log says %s", m.Name, s, fmtItem(got), fmtItem(want))
		}
	}
	t.Logf("%s: a linearizable scan answered %d keys from S=%d, as the log says", m.Name, len(items), s)

	// A write at the new member is seen by a linearizable read elsewhere.
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	key, val := fmt.Sprintf("glin-join/%d", g.ID(m)), "written at "+m.Name
	idx, err := newClient(t, m).Put(ctx, []byte(key), []byte(val))
	if err != nil {
		t.Fatalf("put %q at %s: %v", key, m.Name, err)
	}
	out, ok, err := linGet(ctx, hc, l.Addr, key)
	if !ok || !out.present || out.val != val || out.mod != idx {
		t.Errorf("linearizable read of %q at %s after a put acknowledged at %d by %s: %+v, %v", key, l.Name, idx, m.Name, out, err)
	}
}

// removedGrace is how long the clients go on sending to a removed member
// before it is stopped: it must refuse writes, and answer linearizable
// reads only with what the group holds, though it may not know yet that
// it was removed. It is longer than an election timeout (0.5-1 s), so that
// a removed member that missed its removal and campaigns is seen too.
const removedGrace = 1500 * time.Millisecond

// removeMember removes old from the group at via, lets the clients send to
// it for removedGrace more, then stops their new requests to it and stops
// it.
func removeMember(t *testing.T, g *cluster.Group, targets *linTargets, old, via *cluster.Node) {
	t.Helper()
	id := g.ID(old)
	ctx, cancel := ctxTimeout(memberChangeTimeout)
	defer cancel()
	start := time.Now()
	gs, err := newClient(t, via).RemoveMember(ctx, id)
	if err != nil {
		t.Fatalf("remove %s (member %d) at %s: %v", old.Name, id, via.Name, err)
	}
	took := time.Since(start)
	if slices.ContainsFunc(gs.Members, func(p client.GroupMember) bool { return p.ID == id }) {
		t.Fatalf("%s answered the removal of member %d with a group that still has it: %+v", via.Name, id, gs)
	}
	time.Sleep(removedGrace)
	targets.remove(old)
	g.Drop(old)
	if err := old.Stop(); err != nil {
		t.Errorf("%s did not stop cleanly after its removal: %v", old.Name, err)
	}
	t.Logf("removed %s (member %d) at %s in %v, and stopped it", old.Name, id, via.Name, took.Round(time.Millisecond))
}

// addMember starts a member with --join, adds it at via, waits until it
// applied the group's index (the highest applied index of the others once
// it is added) and makes it a target of the clients. It logs how long each
// step took.
func addMember(t *testing.T, g *cluster.Group, targets *linTargets, via *cluster.Node) *cluster.Node {
	t.Helper()
	start := time.Now()
	m, addr := g.Join()
	dumpOnFailure(t, m)
	id := g.ID(m)
	started := time.Since(start)
	ctx, cancel := ctxTimeout(memberChangeTimeout)
	defer cancel()
	start = time.Now()
	gs, err := newClient(t, via).AddMember(ctx, id, addr)
	if err != nil {
		t.Fatalf("add %s (member %d at %s) at %s: %v", m.Name, id, addr, via.Name, err)
	}
	added := time.Since(start)
	if !slices.ContainsFunc(gs.Members, func(p client.GroupMember) bool { return p.ID == id }) {
		t.Fatalf("%s answered the addition of member %d with a group without it: %+v", via.Name, id, gs)
	}
	var want uint64
	for _, o := range g.Members {
		if o == m {
			continue
		}
		st, err := o.Status()
		if err != nil {
			t.Fatal(err)
		}
		want = max(want, st.AppliedIndex)
	}
	if err := waitApplied(m, want, 10*time.Second); err != nil {
		t.Fatalf("%s (member %d) did not catch up to the group's index %d: %v", m.Name, id, want, err)
	}
	caught := time.Since(start)
	t.Logf("started %s (member %d) with --join in %v; added at %s in %v; it applied the group's index %d %v after it was added",
		m.Name, id, started.Round(time.Millisecond), via.Name, added.Round(time.Millisecond), want, caught.Round(time.Millisecond))
	targets.add(t, m)
	return m
}
