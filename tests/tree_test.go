package tests

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// The tests of this file check the replication tree (docs/CONTRACT.md
// sections 3 and 5) with real processes: depth and fan-out, failover to
// the next upstream after kill -9 or SIGSTOP of an intermediate, recovery by
// snapshot from a cut longer than the parent's log, a snapshot transfer cut
// half-way (by the link or by kill -9) that resumes, corruption on a link
// (random bits, and one bit of a frame's length), a stalled child next to
// healthy siblings, and lag behind a slow link. Each one ends by comparing a
// digest of the whole state at one index on every node (and, where the
// whole log is known, with the truth). Helpers are in tree_helpers_test.go.

// TestTree_Chain4AndFanOut8 builds root -> r1 -> r2 -> r3 and eight more
// children under r1, runs a few hundred random batches (puts, deletes,
// delete_prefix, txns) at the root with readers at r3, and checks that
// every node converges to the root's index with the same state, that the log
// a watch shows at depth 3 is the root's (gap-free, whole batches), and that
// r1's status lists its nine children.
func TestTree_Chain4AndFanOut8(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	r1 := cluster.StartReplica(t, []string{root.Addr})
	r2 := cluster.StartReplica(t, []string{r1.Addr})
	r3 := cluster.StartReplica(t, []string{r2.Addr})
	fan := make([]*cluster.Node, 8)
	for i := range fan {
		fan[i] = cluster.StartReplica(t, []string{r1.Addr})
	}
	all := append([]*cluster.Node{root, r1, r2, r3}, fan...)
	dumpOnFailure(t, all...)
	rc, c3 := newClient(t, root), newClient(t, r3)

	// A watch at depth 3 open from before the first write.
	deep := startWatch(t, c3, "", 1)
	w := newWorkload(seed, rc, c3, workloadConfig{
		writers: 4, readers: 2, rywReaders: 1,
		duration: 8 * time.Second, maxOps: 100,
	})
	w.start()
	w.wait()
	w.logSummary(t)

	tr := finalTruth(t, w, root)
	final := tr.final()
	took := waitAllApplied(t, all, final, 30*time.Second)
	t.Logf("all %d nodes at index %d %v after the writes ended", len(all), final, took.Round(time.Millisecond))

	// Positions and the tree as the nodes see it.
	parents := map[*cluster.Node]*cluster.Node{r1: root, r2: r1, r3: r2}
	for _, c := range fan {
		parents[c] = r1
	}
	for _, n := range all {
		st := readStatus(t, newClient(t, n))
		if st.AppliedIndex != final {
			t.Errorf("%s: applied_index %d, want the root's %d", n.Name, st.AppliedIndex, final)
		}
		if n != root && st.RootIndex != final {
			t.Errorf("%s: root_index %d, want %d", n.Name, st.RootIndex, final)
		}
		if p := parents[n]; p != nil && st.Upstream != p.Addr {
			t.Errorf("%s: upstream %q, want %s (%s)", n.Name, st.Upstream, p.Addr, p.Name)
		}
	}
	wantChildren := []string{r2.Addr}
	for _, c := range fan {
		wantChildren = append(wantChildren, c.Addr)
	}
	slices.Sort(wantChildren)
	st1 := readStatus(t, newClient(t, r1))
	if got := childAddrs(st1); !slices.Equal(got, wantChildren) {
		t.Errorf("r1 (%s): status children %v, want %v", r1.Name, got, wantChildren)
	}
	for _, c := range st1.Children {
		if c.NodeID == "" {
			t.Errorf("r1: child %s has no node_id: %s", c.Addr, c.Raw)
		}
	}
	if got := childAddrs(readStatus(t, rc)); !slices.Equal(got, []string{r1.Addr}) {
		t.Errorf("root: status children %v, want [%s]", got, r1.Addr)
	}
	if got := childAddrs(readStatus(t, newClient(t, r2))); !slices.Equal(got, []string{r3.Addr}) {
		t.Errorf("r2: status children %v, want [%s]", got, r3.Addr)
	}

	// The same state everywhere, equal to the replayed log.
	want := digestTruth(tr, final)
	t.Logf("truth at %d: %v", final, want)
	checkDigests(t, final, &want, all...)

	// The log at depth 3: the live watch, and a new one from 1 at r3 and at
	// a fan-out child.
	if !deep.waitUntil(15*time.Second, reached(final)) {
		evs, err := deep.snapshot()
		t.Errorf("%s: did not reach %d within 15 s; %d events, last %s, err %v", deep.desc, final, len(evs), lastEvent(evs), err)
	}
	evs, err := deep.stop()
	if err != nil {
		t.Errorf("%s ended by itself: %v", deep.desc, err)
	}
	checkStream(t, seed, deep.desc+" (depth 3, open from before the first write)", evs, tr.entries)
	checkSameLog(t, tr, c3)
	checkSameLog(t, tr, newClient(t, fan[len(fan)-1]))

	w.checkProblems(t)
	w.checkWrites(t, tr)
	w.checkReads(t, tr, "replica")
	w.checkMonotonic(t, "replica")
}

// TestTree_KillIntermediateFailover runs root -> r1 -> r2, r2 with
// --upstream r1,root, under a steady random workload with readers at r2,
// and kills -9 r1: r2 must move to the root at once (well before its stall
// timeout) and go on with no gap and no duplicate, which a watch at r2 from
// 1 spanning the failover checks (the watch is served by r2 itself and
// survives its upstream change). r1 is then restarted on its data directory
// and must resume from its own applied index (no snapshot) and catch up.
func TestTree_KillIntermediateFailover(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	r1 := cluster.StartReplica(t, []string{root.Addr})
	dumpOnFailure(t, root, r1)
	rc, c1 := newClient(t, root), newClient(t, r1)
	hc := rawHTTP(t)

	// r2 picks the healthiest upstream; with r1 and the root level, the
	// first in its list. r1 must have the dataset before r2 probes it.
	rootID := readStatus(t, rc).DatasetID
	cluster.WaitFor(t, 10*time.Second, func() error {
		if st := readStatus(t, c1); st.DatasetID != rootID {
			return fmt.Errorf("r1 has dataset %q, want the root's %q", st.DatasetID, rootID)
		}
		return nil
	})
	r2 := cluster.StartReplica(t, []string{r1.Addr, root.Addr}, "--stall-timeout", "20s")
	dumpOnFailure(t, r2)
	c2 := newClient(t, r2)
	cluster.WaitFor(t, 10*time.Second, func() error {
		st := readStatus(t, c2)
		if st.Upstream != r1.Addr || st.DatasetID != rootID {
			return fmt.Errorf("r2 follows %q with dataset %q, want %s (r1) and %q", st.Upstream, st.DatasetID, r1.Addr, rootID)
		}
		if got := childAddrs(readStatus(t, c1)); !slices.Equal(got, []string{r2.Addr}) {
			return fmt.Errorf("r1's children are %v, want [%s]", got, r2.Addr)
		}
		return nil
	})

	across := startWatch(t, c2, "", 1)
	w := newWorkload(seed, rc, c2, workloadConfig{
		writers: 2, readers: 2, rywReaders: 1,
		duration: 7 * time.Second, maxOps: 20000,
	})
	w.start()
	defer w.halt() // if a Fatal ends the test early

	// Kill r1 mid-load.
	sleepUntil(w.t0.Add(1500 * time.Millisecond))
	before, err := r1.Status()
	if err != nil {
		t.Fatal(err)
	}
	r1.Kill()
	killed := time.Now()
	rootAtKill := readStatus(t, rc).AppliedIndex
	t.Logf("killed r1 at %v: r1 had applied %d, root at %d", killed.Sub(w.t0).Round(time.Millisecond), before.AppliedIndex, rootAtKill)

	// r2 moves to the root on the error, not after its stall timeout.
	var failover time.Duration
	cluster.WaitFor(t, 5*time.Second, func() error {
		st := readStatus(t, c2)
		if st.Upstream != root.Addr {
			return fmt.Errorf("r2 still follows %q, want the root %s", st.Upstream, root.Addr)
		}
		failover = time.Since(killed)
		return nil
	})
	if err := waitApplied(r2, uint64(rootAtKill)+1, 5*time.Second); err != nil {
		t.Errorf("r2 did not go past the root's index at the kill (%d) within 5 s of the failover: %v", rootAtKill, err)
	}
	t.Logf("r2 followed the root %v after the kill; past index %d %v after it", failover.Round(time.Millisecond), rootAtKill, time.Since(killed).Round(time.Millisecond))

	// Restart r1 under the load: it resumes from its own applied index.
	sleepUntil(w.t0.Add(3500 * time.Millisecond))
	r1.Start()
	back := r1.WaitReady(cluster.DefaultReadyTimeout)
	t.Logf("r1 back at %v with applied index %d (had %d before the kill)", time.Since(w.t0).Round(time.Millisecond), back.AppliedIndex, before.AppliedIndex)
	if back.AppliedIndex < before.AppliedIndex {
		t.Errorf("r1 restarted at applied index %d, below the %d it served before its kill -9", back.AppliedIndex, before.AppliedIndex)
	}
	if st := readStatus(t, rc); st.AppliedIndex > argent.Index(back.AppliedIndex) {
		if err := waitApplied(r1, uint64(st.AppliedIndex), 10*time.Second); err != nil {
			t.Errorf("r1 did not catch up with the root after its restart: %v", err)
		}
	}

	w.wait()
	w.logSummary(t)
	tr := finalTruth(t, w, root)
	final := tr.final()
	waitAllApplied(t, []*cluster.Node{root, r1, r2}, final, 30*time.Second)

	if !across.waitUntil(15*time.Second, reached(final)) {
		evs, err := across.snapshot()
		t.Errorf("%s: did not reach %d within 15 s; %d events, last %s, err %v", across.desc, final, len(evs), lastEvent(evs), err)
	}
	evs, err := across.stop()
	if err != nil {
		t.Errorf("%s ended by itself across r2's failover (it is served by r2, which stayed up): %v", across.desc, err)
	}
	checkStream(t, seed, across.desc+" spanning the failover", evs, tr.entries)
	t.Logf("%s: %d batches in order across the failover", across.desc, len(batchesOf(evs)))
	checkSameLog(t, tr, c1) // r1's own log survived its kill -9

	for _, tc := range []struct {
		name string
		n    *cluster.Node
	}{{"r1", r1}, {"r2", r2}} {
		m, err := scrapeMetrics(hc, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if v := m["argent_snapshots_loaded_total"]; v != 0 {
			t.Errorf("%s: argent_snapshots_loaded_total = %g, want 0 (it should resume from its own applied index)", tc.name, v)
		}
		t.Logf("%s: reconnects %g, upstream failures %g", tc.name, m["argent_upstream_reconnects_total"], m["argent_upstream_failures_total"])
	}
	if v := metric(t, hc, r2, "argent_upstream_reconnects_total"); v < 1 {
		t.Errorf("r2: argent_upstream_reconnects_total = %g, want >= 1 (its stream from r1 ended)", v)
	}
	if v := metric(t, hc, root, "argent_log_too_old_total"); v != 0 {
		t.Errorf("root: argent_log_too_old_total = %g, want 0", v)
	}
	if st := readStatus(t, c2); st.Upstream != root.Addr {
		t.Errorf("r2 follows %q at the end, want the root %s", st.Upstream, root.Addr)
	}
	if got := childAddrs(readStatus(t, rc)); !slices.Equal(got, sortedAddrs(r1, r2)) {
		t.Errorf("root: status children %v, want %v (r1 and r2)", got, sortedAddrs(r1, r2))
	}

	want := digestTruth(tr, final)
	checkDigests(t, final, &want, root, r1, r2)

	w.checkProblems(t)
	w.checkWrites(t, tr)
	w.checkReads(t, tr, "replica")
	w.checkMonotonic(t, "replica")
	w.mu.Lock()
	defer w.mu.Unlock()
	for class, n := range w.mu.readErrs["replica"].counts {
		if class != "timeout" {
			t.Errorf("%d reads at r2 failed with %s across its failover: %v", n, class, w.mu.readErrs["replica"])
		}
	}
}

func sortedAddrs(nodes ...*cluster.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Addr)
	}
	slices.Sort(out)
	return out
}

// TestTree_CutLongerThanLog cuts the link of a replica (through a fault
// proxy) to a parent with a 64 KiB log, writes until the parent's log no
// longer holds the replica's next index, and restores the link: the replica
// must recover by snapshot, serve nothing wrong or older meanwhile,
// converge to the same state, and then follow the log again. The parent is
// the root, or a replica between the root and the child (which then serves
// the snapshot).
func TestTree_CutLongerThanLog(t *testing.T) {
	skipShort(t)
	small := []string{"--log-bytes", "64KiB", "--trim-interval", "100ms"}
	t.Run("FromRoot", func(t *testing.T) {
		root := cluster.StartRoot(t, small...)
		cutLongerThanLog(t, root, root)
	})
	t.Run("FromReplica", func(t *testing.T) {
		root := cluster.StartRoot(t)
		mid := cluster.StartReplica(t, []string{root.Addr}, small...)
		cutLongerThanLog(t, root, mid)
	})
}

func cutLongerThanLog(t *testing.T, root, parent *cluster.Node) {
	p := faultproxy.Start(t, parent.Addr)
	replica := cluster.StartReplica(t, []string{p.Addr()})
	nodes := []*cluster.Node{root, replica}
	if parent != root {
		nodes = []*cluster.Node{root, parent, replica}
	}
	dumpOnFailure(t, nodes...)
	hc := rawHTTP(t)
	l := newSeqLog(t, root)

	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("c/%02d", i)
	}
	value := func(i argent.Index, k string) []byte { return paddedValue(fmt.Sprintf("%s@%d.", k, i), 1024) }
	round := func(i int) {
		// One batch: two puts; every fifth a delete, every 25th a
		// delete_prefix of a group that is filled again at once.
		next := l.final() + 1
		ops := []argent.Op{
			{Type: argent.OpPut, Key: []byte(keys[i%len(keys)]), Value: value(next, keys[i%len(keys)])},
			{Type: argent.OpPut, Key: []byte(keys[(i*7+3)%len(keys)]), Value: value(next, keys[(i*7+3)%len(keys)])},
		}
		if i%5 == 4 {
			ops = append(ops, argent.Op{Type: argent.OpDelete, Key: []byte(keys[(i*3+1)%len(keys)])})
		}
		if i%25 == 24 {
			g := fmt.Sprintf("c/%d", i/25%4)
			ops = append(ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(g)}, argent.Op{Type: argent.OpPut, Key: []byte(g + "0"), Value: value(next, g+"0")})
		}
		l.write(ops...)
	}
	for i := range 50 {
		round(i)
	}
	cluster.WaitApplied(t, replica, uint64(l.final()), 15*time.Second)
	probes := startProber(t, replica, []string{"c/00", "c/13", "c/27", "c/39"}, 5*time.Millisecond)

	p.Cut()
	cut := l.final()
	t.Logf("cut the link at index %d", cut)
	wrote := 0
	for i := 50; ; i++ {
		round(i)
		wrote++
		if wrote%20 != 0 {
			continue
		}
		if first := metric(t, hc, parent, "argent_log_first_index"); argent.Index(first) > cut+1 {
			t.Logf("after %d batches the parent's log starts at %g, past the replica's next index %d", wrote, first, cut+1)
			break
		}
		if wrote >= 2000 {
			t.Fatalf("after %d batches of 2 KiB the parent %s (--log-bytes 64KiB) still holds index %d: its log is not trimmed", wrote, parent.Name, cut+1)
		}
	}
	if st, err := replica.Status(); err != nil || argent.Index(st.AppliedIndex) != cut {
		t.Errorf("replica status while cut: %+v, %v; want applied index %d", st, err, cut)
	}
	p.Restore()
	restored := time.Now()
	final := l.final()
	waitAllApplied(t, []*cluster.Node{replica}, final, 30*time.Second)
	t.Logf("replica at %d %v after the link came back", final, time.Since(restored).Round(time.Millisecond))

	if v := metric(t, hc, replica, "argent_snapshots_loaded_total"); v < 1 {
		t.Errorf("replica: argent_snapshots_loaded_total = %g, want >= 1", v)
	}
	if v := metric(t, hc, parent, "argent_log_too_old_total"); v < 1 {
		t.Errorf("parent %s: argent_log_too_old_total = %g, want >= 1", parent.Name, v)
	}
	if v := metric(t, hc, parent, "argent_snapshots_served_total"); v < 1 {
		t.Errorf("parent %s: argent_snapshots_served_total = %g, want >= 1", parent.Name, v)
	}
	tr := l.truth()
	want := digestTruth(tr, final)
	checkDigests(t, final, &want, nodes...)

	// The log follows the snapshot.
	for i := range 20 {
		round(2000 + i)
	}
	final = l.final()
	waitAllApplied(t, []*cluster.Node{replica}, final, 15*time.Second)
	tr = l.truth()
	want = digestTruth(tr, final)
	checkDigests(t, final, &want, nodes...)
	if v := metric(t, hc, replica, "argent_snapshots_loaded_total"); v != 1 {
		t.Errorf("replica: argent_snapshots_loaded_total = %g after following the log again, want 1", v)
	}

	ps := probes.stopProbes()
	t.Logf("reads at the replica meanwhile: %s", probeSummary(ps))
	checkProbes(t, "reads at the replica across its cut and snapshot", tr, ps)
}

// TestTree_SnapshotCutResumes bootstraps a new replica (behind a fault
// proxy) from a root holding 20,000 keys of 1 KiB with snapshots limited to
// 2 MiB/s and a small log, cuts the link half-way through the transfer,
// writes more at the root, and restores it: the load must resume after the
// last key it stored (records received stay well below twice the keys),
// the replica must answer every read with 503 unavailable while it loads,
// and it must converge to the root's state.
func TestTree_SnapshotCutResumes(t *testing.T) {
	skipShort(t)
	const (
		nKeys     = 20000
		perBatch  = 500
		valueSize = 1024
		cutAt     = 6000 // records received when the link is cut
	)
	root := cluster.StartRoot(t, "--log-bytes", "64KiB", "--trim-interval", "100ms", "--snapshot-rate", "2MiB")
	dumpOnFailure(t, root)
	hc := rawHTTP(t)
	l := newSeqLog(t, root)
	key := bulkKey
	base := bulkLoad(t, l, root, nKeys, perBatch, valueSize)

	p := faultproxy.Start(t, root.Addr)
	replica := cluster.StartReplica(t, []string{p.Addr()})
	dumpOnFailure(t, replica)
	watched := []string{key(7), key(nKeys - 7), key(nKeys / 2)}
	probes := startProber(t, replica, watched, 10*time.Millisecond)

	// Wait for the transfer to be under way, past cutAt records.
	var loadingSeen time.Time
	var records float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := scrapeMetrics(hc, replica)
		if err != nil {
			t.Fatal(err)
		}
		records = m["argent_snapshot_records_received_total"]
		if records > 0 && loadingSeen.IsZero() {
			loadingSeen = time.Now()
		}
		if m["argent_snapshots_loaded_total"] > 0 {
			t.Fatalf("the snapshot finished loading (%g records) before the cut: is --snapshot-rate applied?", records)
		}
		if records >= cutAt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica received %g snapshot records in 30 s, want %d", records, cutAt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Cut()
	cutTime := time.Now()
	time.Sleep(100 * time.Millisecond)
	atCut := metric(t, hc, replica, "argent_snapshot_records_received_total")
	t.Logf("cut the link %v into the transfer, at %g records (%g after the cut settled)", cutTime.Sub(loadingSeen).Round(time.Millisecond), records, atCut)
	if v := metric(t, hc, replica, "argent_snapshot_loading"); v != 1 {
		t.Errorf("replica: argent_snapshot_loading = %g after the cut, want 1", v)
	}

	// More writes, on keys before and after the cut point, while cut. They
	// are small, so the root's 64 KiB log still holds them all.
	for i := range 20 {
		next := l.final() + 1
		ops := []argent.Op{
			{Type: argent.OpPut, Key: []byte(key(7)), Value: paddedValue(fmt.Sprintf("k7@%d.", next), 64)},
			{Type: argent.OpPut, Key: []byte(key(nKeys - 7)), Value: paddedValue(fmt.Sprintf("kz@%d.", next), 64)},
			{Type: argent.OpPut, Key: []byte(fmt.Sprintf("n/%02d", i)), Value: []byte(fmt.Sprintf("new@%d", next))},
		}
		switch i {
		case 5:
			ops = append(ops, argent.Op{Type: argent.OpDelete, Key: []byte(key(10))}, argent.Op{Type: argent.OpDelete, Key: []byte(key(nKeys - 10))})
		case 10:
			ops = append(ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(key(nKeys / 2)[:6])}) // 10 keys mid-way
		case 15:
			ops = append(ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(key(0)[:6])}) // k/0000x: 10 keys at the start
		}
		l.write(ops...)
	}
	final := l.final()
	rootFirst := metric(t, hc, root, "argent_log_first_index")
	t.Logf("wrote %d more batches while cut; root's log starts at %g (the load's base is %d)", final-base, rootFirst, base)
	if argent.Index(rootFirst) > base+1 {
		t.Logf("note: the root no longer holds index %d, so a load resumed from a newer state cannot replay the log to it", base+1)
	}
	time.Sleep(300 * time.Millisecond)
	p.Restore()
	restored := time.Now()

	waitAllApplied(t, []*cluster.Node{replica}, final, 60*time.Second)
	t.Logf("replica at %d %v after the link came back (%v since the transfer began)", final,
		time.Since(restored).Round(time.Millisecond), time.Since(loadingSeen).Round(time.Millisecond))
	m, err := scrapeMetrics(hc, replica)
	if err != nil {
		t.Fatal(err)
	}
	total := m["argent_snapshot_records_received_total"]
	t.Logf("replica: snapshots loaded %g, resumes %g, records received %g (at the cut %g), corrupt frames %g, reconnects %g",
		m["argent_snapshots_loaded_total"], m["argent_snapshot_resumes_total"], total, atCut, m["argent_corrupt_frames_total"], m["argent_upstream_reconnects_total"])
	if m["argent_snapshots_loaded_total"] < 1 {
		t.Errorf("replica: argent_snapshots_loaded_total = %g, want >= 1", m["argent_snapshots_loaded_total"])
	}
	if m["argent_snapshot_resumes_total"] < 1 {
		t.Errorf("replica: argent_snapshot_resumes_total = %g, want >= 1 (the cut load should resume)", m["argent_snapshot_resumes_total"])
	}
	// A resumed load receives each key about once; one started over
	// receives the first cutAt keys twice.
	if limit := float64(nKeys + 1000); total > limit {
		t.Errorf("replica received %g snapshot records for %d keys (%g before the cut): want at most %g, the load restarted instead of resuming", total, nKeys, atCut, limit)
	}
	if m["argent_snapshot_loading"] != 0 {
		t.Errorf("replica: argent_snapshot_loading = %g after catching up, want 0", m["argent_snapshot_loading"])
	}

	tr := l.truth()
	want := digestTruth(tr, final)
	checkDigests(t, final, &want, root, replica)

	// Reads: 503 unavailable while loading; once it serves, the truth at S
	// from a state no older than the snapshot's.
	ps := probes.stopProbes()
	t.Logf("reads at the replica: %s", probeSummary(ps))
	checkProbes(t, "reads at the replica while it bootstraps", tr, ps)
	unavailable := 0
	for _, pr := range ps {
		if pr.status == http.StatusServiceUnavailable {
			unavailable++
			continue
		}
		if pr.status == 0 || !pr.start.After(loadingSeen) {
			continue
		}
		if pr.s < base {
			t.Errorf("read sent after the snapshot load began (%v) was answered from S=%d, older than the snapshot (%d): %v",
				pr.start.Sub(loadingSeen).Round(time.Millisecond), pr.s, base, pr)
		}
	}
	if unavailable == 0 {
		t.Errorf("no read answered 503 unavailable while the replica loaded its snapshot")
	}
}

// TestTree_CorruptLinkDetected flips random bits in the bytes a root sends
// a replica (through a fault proxy) under a random workload with readers at
// the replica: the replica must detect the corrupt frames (and count them),
// never apply one, and converge to the root's state and log, and every read
// must pass the sequential-consistency checks.
func TestTree_CorruptLinkDetected(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	p := faultproxy.Start(t, root.Addr)
	p.Seed(seed)
	replica := cluster.StartReplica(t, []string{p.Addr()}, "--stall-timeout", "5s")
	dumpOnFailure(t, root, replica)
	rc, pc := newClient(t, root), newClient(t, replica)
	hc := rawHTTP(t)
	rootID := readStatus(t, rc).DatasetID
	cluster.WaitFor(t, 10*time.Second, func() error {
		if st := readStatus(t, pc); st.DatasetID != rootID {
			return fmt.Errorf("replica has dataset %q, want %q", st.DatasetID, rootID)
		}
		return nil
	})

	p.SetCorruptRate(0.05)
	w := newWorkload(seed, rc, pc, workloadConfig{
		writers: 4, readers: 4, rywReaders: 1,
		duration: 5 * time.Second, maxOps: 3000,
	})
	w.start()
	w.wait()
	w.logSummary(t)
	tr := finalTruth(t, w, root)
	final := tr.final()
	// Corruption stays on while it catches up.
	took := waitAllApplied(t, []*cluster.Node{replica}, final, 45*time.Second)
	stats := p.Stats()
	p.SetCorruptRate(0)
	m, err := scrapeMetrics(hc, replica)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for k, v := range m {
		if strings.HasPrefix(k, "argent_upstream_reconnects_total{") {
			reasons = append(reasons, fmt.Sprintf("%s=%g", strings.TrimPrefix(k, "argent_upstream_reconnects_total"), v))
		}
	}
	slices.Sort(reasons)
	t.Logf("replica at %d %v after the writes; proxy: %+v; replica: corrupt frames %g, reconnects %v, entries received %g",
		final, took.Round(time.Millisecond), stats, m["argent_corrupt_frames_total"], reasons, m["argent_log_entries_received_total"])
	if stats.Corrupted == 0 {
		t.Fatalf("the proxy corrupted no chunk (%+v): the test proves nothing", stats)
	}
	if m["argent_corrupt_frames_total"] == 0 {
		t.Errorf("replica: argent_corrupt_frames_total = 0, but the proxy flipped a bit in %d chunks", stats.Corrupted)
	}
	if s := m[`argent_upstream_reconnects_total{reason="stall"}`]; s > 0 {
		t.Logf("note: %g streams ended by the stall timeout: a flipped bit in a frame's length field (not covered by its CRC) makes the child wait for bytes that never come", s)
	}

	want := digestTruth(tr, final)
	checkDigests(t, final, &want, root, replica)
	checkSameLog(t, tr, pc)
	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, node := range []string{"replica", "root"} {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
}

// TestTree_StalledChildDoesNotSlowSiblings runs root -> r1 -> {c1, c2, c3},
// stops c1 with SIGSTOP, and writes about 200 batches/s of 16 KiB for 5 s
// (16 MiB, more than the socket buffers between r1 and c1 hold, so r1's
// stream to c1 blocks): c2 and c3 must stay close behind the root all along
// (their reported lag sampled from /v1/status, and their real staleness
// measured against the writes' acknowledgements), and c1 must catch up
// once continued.
func TestTree_StalledChildDoesNotSlowSiblings(t *testing.T) {
	skipShort(t)
	const (
		rate      = 200
		duration  = 5 * time.Second
		valueSize = 16 << 10
	)
	root := cluster.StartRoot(t)
	r1 := cluster.StartReplica(t, []string{root.Addr})
	c1 := cluster.StartReplica(t, []string{r1.Addr})
	c2 := cluster.StartReplica(t, []string{r1.Addr})
	c3 := cluster.StartReplica(t, []string{r1.Addr})
	dumpOnFailure(t, root, r1, c1, c2, c3)
	rc, cr1 := newClient(t, root), newClient(t, r1)
	hc := rawHTTP(t)

	idx, err := func() (argent.Index, error) {
		ctx, cancel := ctxTimeout(10 * time.Second)
		defer cancel()
		return rc.Put(ctx, []byte("warm"), []byte("up"))
	}()
	if err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, []*cluster.Node{r1, c1, c2, c3}, idx, 15*time.Second)
	cluster.WaitFor(t, 10*time.Second, func() error {
		if got, want := childAddrs(readStatus(t, cr1)), sortedAddrs(c1, c2, c3); !slices.Equal(got, want) {
			return fmt.Errorf("r1's children are %v, want %v", got, want)
		}
		return nil
	})

	c1.Pause()
	paused := time.Now()
	load := startPacedLoad(rc, rate, 4, valueSize, duration)
	defer load.halt()

	// Sample c2 and c3: the lag their status reports, and how stale they
	// really are (the oldest write acknowledged by the root before the
	// sample that they did not hold).
	type sample struct {
		at         time.Time
		applied    argent.Index
		lagSeconds float64
		lagIndexes uint64
	}
	samples := map[string][]sample{}
	var sampleErrs errSample
	var mu sync.Mutex
	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	for _, n := range []*cluster.Node{c2, c3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
				at := time.Now()
				st, err := n.Status()
				mu.Lock()
				if err != nil {
					sampleErrs.add(n.Name, err)
				} else {
					var li uint64
					if st.RootIndex > st.AppliedIndex {
						li = st.RootIndex - st.AppliedIndex
					}
					samples[n.Name] = append(samples[n.Name], sample{at, argent.Index(st.AppliedIndex), st.LagSeconds, li})
				}
				mu.Unlock()
			}
		}()
	}
	final := load.wait()
	close(stopSampling)
	wg.Wait()
	t.Logf("load while c1 was stopped: %v", load)
	if final == 0 {
		t.Fatal("no write was acknowledged")
	}
	if n := load.failed.Load(); n > 0 {
		t.Errorf("%d writes failed with c1 stopped: %v", n, load)
	}
	if got := load.acked.Load(); got < int64(rate*duration/time.Second)/2 {
		t.Errorf("only %d writes acknowledged in %v at %d/s asked: the root was slowed", got, duration, rate)
	}

	// The siblings: caught up at once, and close behind all along.
	caught := waitAllApplied(t, []*cluster.Node{r1, c2, c3}, final, 5*time.Second)
	t.Logf("r1, c2, c3 at %d %v after the last write", final, caught.Round(time.Millisecond))
	if caught > time.Second {
		t.Errorf("c2 and c3 took %v after the last write to reach it, want under 1 s", caught)
	}
	mu.Lock()
	for _, name := range []string{c2.Name, c3.Name} {
		ss := samples[name]
		if len(ss) < 20 {
			t.Errorf("%s: only %d lag samples", name, len(ss))
			continue
		}
		var secs, idxs, stale []float64
		for _, s := range ss {
			secs = append(secs, s.lagSeconds)
			idxs = append(idxs, float64(s.lagIndexes))
			stale = append(stale, load.staleness(s.at, s.applied).Seconds())
		}
		p50s, p99s, maxs := percentile(secs, 0.5), percentile(secs, 0.99), secs[len(secs)-1]
		p50i, p99i, maxi := percentile(idxs, 0.5), percentile(idxs, 0.99), idxs[len(idxs)-1]
		p50r, p99r, maxr := percentile(stale, 0.5), percentile(stale, 0.99), stale[len(stale)-1]
		t.Logf("%s: %d samples: reported lag_seconds p50 %.3f p99 %.3f max %.3f; reported lag (root_index-applied_index) p50 %.0f p99 %.0f max %.0f; measured staleness p50 %.3f p99 %.3f max %.3f s",
			name, len(ss), p50s, p99s, maxs, p50i, p99i, maxi, p50r, p99r, maxr)
		if p99s >= 0.5 {
			t.Errorf("%s: p99 of reported lag_seconds %.3f while its sibling c1 was stopped, want < 0.5", name, p99s)
		}
		if p99i >= rate/2 {
			t.Errorf("%s: p99 of reported lag in indexes %.0f while its sibling c1 was stopped, want < %d (half a second of writes)", name, p99i, rate/2)
		}
		if p99r >= 0.5 {
			t.Errorf("%s: p99 of measured staleness %.3f s while its sibling c1 was stopped, want < 0.5 s", name, p99r)
		}
	}
	if n := sampleErrs.total(); n > 0 {
		t.Errorf("%d status requests to c2/c3 failed: %v", n, &sampleErrs)
	}
	mu.Unlock()

	// c1 is behind: r1 still lists it, and its stream is stuck.
	for _, c := range readStatus(t, cr1).Children {
		t.Logf("r1's child %s: sent index %d (root at %d)", c.Addr, c.AppliedIndex, final)
	}
	for _, c := range readStatus(t, cr1).Children {
		if c.Addr == c1.Addr && c.AppliedIndex >= final {
			t.Logf("note: r1 sent c1 everything (%d) while it was stopped: the socket buffers held it all, so r1 never had to wait on c1", c.AppliedIndex)
		}
	}

	c1.Resume()
	resumed := time.Now()
	caught = waitAllApplied(t, []*cluster.Node{c1}, final, 20*time.Second)
	t.Logf("c1 stopped for %v; caught up with %d %v after SIGCONT", resumed.Sub(paused).Round(time.Millisecond), final, caught.Round(time.Millisecond))
	if v := metric(t, hc, c1, "argent_snapshots_loaded_total"); v != 0 {
		t.Logf("c1 caught up by snapshot (%g loaded)", v)
	}
	checkDigests(t, final, nil, root, r1, c1, c2, c3)
}

// TestTree_LagVisibleBehindSlowLink puts a replica behind a link that
// delays every byte by 400 ms and writes 100 batches/s at the root: the
// replica is then about 400 ms behind the root all along, and docs/CONTRACT.md
// section 3 promise 7 ("lag is visible") wants its lag_seconds to show it.
func TestTree_LagVisibleBehindSlowLink(t *testing.T) {
	skipShort(t)
	const delay = 400 * time.Millisecond
	root := cluster.StartRoot(t)
	p := faultproxy.Start(t, root.Addr)
	replica := cluster.StartReplica(t, []string{p.Addr()})
	dumpOnFailure(t, root, replica)
	rc := newClient(t, root)
	hc := rawHTTP(t)
	rootID := readStatus(t, rc).DatasetID
	cluster.WaitFor(t, 10*time.Second, func() error {
		if st, err := replica.Status(); err != nil || st.DatasetID != rootID {
			return fmt.Errorf("replica not following the root yet: %+v %v", st, err)
		}
		return nil
	})
	p.SetDelay(delay)
	load := startPacedLoad(rc, 100, 4, 64, 4*time.Second)
	defer load.halt()
	var reported, metricLag, stale []float64
	sampleErrs := 0
	time.Sleep(time.Second) // past the first delayed bytes
	for load.acked.Load() > 0 && time.Since(load.started) < 4*time.Second-100*time.Millisecond {
		at := time.Now()
		st, err := replica.Status()
		if err != nil {
			sampleErrs++
			continue
		}
		reported = append(reported, st.LagSeconds)
		stale = append(stale, load.staleness(at, argent.Index(st.AppliedIndex)).Seconds())
		if m, err := scrapeMetrics(hc, replica); err == nil {
			metricLag = append(metricLag, m["argent_lag_seconds"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	final := load.wait()
	t.Logf("load: %v", load)
	if len(stale) < 20 || sampleErrs > 0 {
		t.Fatalf("%d samples, %d status errors", len(stale), sampleErrs)
	}
	p.SetDelay(0)
	waitAllApplied(t, []*cluster.Node{replica}, final, 10*time.Second)
	realP50 := percentile(stale, 0.5)
	repP50, metP50 := percentile(reported, 0.5), percentile(metricLag, 0.5)
	t.Logf("replica behind a %v link: measured staleness p50 %.3f s p99 %.3f s; status lag_seconds p50 %.3f max %.3f; argent_lag_seconds p50 %.3f",
		delay, realP50, percentile(stale, 0.99), repP50, reported[len(reported)-1], metP50)
	if realP50 < delay.Seconds()/2 {
		t.Fatalf("the replica was only %.3f s behind (p50): the delay did not work", realP50)
	}
	if repP50 < realP50/2 {
		t.Errorf("the replica was %.3f s behind the root (p50), but its status reported lag_seconds %.3f (p50) and /metrics argent_lag_seconds %.3f: lag is not visible", realP50, repP50, metP50)
	}
}

// TestTree_CorruptFrameLengthDetected flips one bit in the length field of
// one frame of a replica's log stream (bit 20: the length grows by 1 MiB,
// still under the 80 MiB frame limit) and then writes a few batches: the
// corrupt frame must be detected and fetched again about as fast as any
// other corruption, not after the stall timeout (10 s here, 30 s by
// default) because the replica waits for a megabyte that never comes.
func TestTree_CorruptFrameLengthDetected(t *testing.T) {
	skipShort(t)
	const stall = 10 * time.Second
	root := cluster.StartRoot(t)
	p := startLengthFlipProxy(t, root.Addr, 3, 20)
	replica := cluster.StartReplica(t, []string{p.Addr()}, "--stall-timeout", stall.String())
	dumpOnFailure(t, root, replica)
	hc := rawHTTP(t)
	l := newSeqLog(t, root)
	for i := range 10 {
		l.write(argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("f/%d", i)), Value: []byte(fmt.Sprint(i))})
		time.Sleep(20 * time.Millisecond)
	}
	final := l.final()
	wrote := time.Now()
	cluster.WaitApplied(t, replica, uint64(final), stall+10*time.Second)
	took := time.Since(wrote)
	m, err := scrapeMetrics(hc, replica)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped: %v; replica at %d %v after the last write; corrupt frames %g, reconnects: corruption %g, stall %g, error %g",
		p.flipped.Load(), final, took.Round(time.Millisecond), m["argent_corrupt_frames_total"],
		m[`argent_upstream_reconnects_total{reason="corruption"}`], m[`argent_upstream_reconnects_total{reason="stall"}`], m[`argent_upstream_reconnects_total{reason="error"}`])
	if !p.flipped.Load() {
		t.Fatal("the proxy flipped no bit: the test proves nothing")
	}
	if took > 3*time.Second {
		t.Errorf("the replica took %v to get past a frame whose length field had one bit flipped (stall timeout %v): the length is not checked, so the corruption was found only by the stall watchdog", took.Round(time.Millisecond), stall)
	}
	if m["argent_corrupt_frames_total"] < 1 {
		t.Errorf("replica: argent_corrupt_frames_total = %g, want >= 1", m["argent_corrupt_frames_total"])
	}
	want := digestTruth(l.truth(), final)
	checkDigests(t, final, &want, root, replica)
}

// bulkKey is the i-th key bulkLoad writes.
func bulkKey(i int) string { return fmt.Sprintf("k/%05d", i) }

// bulkLoad writes n keys of valueSize bytes in batches of perBatch and
// waits for the root to trim its log past index 1, so that a new replica
// must take a snapshot. It returns the index of the last batch.
func bulkLoad(t *testing.T, l *seqLog, root *cluster.Node, n, perBatch, valueSize int) argent.Index {
	t.Helper()
	start := time.Now()
	for b := 0; b < n/perBatch; b++ {
		ops := make([]argent.Op, perBatch)
		for j := range ops {
			k := bulkKey(b*perBatch + j)
			ops[j] = argent.Op{Type: argent.OpPut, Key: []byte(k), Value: paddedValue(k+".", valueSize)}
		}
		l.write(ops...)
	}
	t.Logf("loaded %d keys x %d B in %d batches in %v", n, valueSize, l.final(), time.Since(start).Round(time.Millisecond))
	hc := rawHTTP(t)
	cluster.WaitFor(t, 10*time.Second, func() error {
		if first := metric(t, hc, root, "argent_log_first_index"); first <= 1 {
			return fmt.Errorf("root's log still starts at %g", first)
		}
		return nil
	})
	return l.final()
}

// TestTree_SnapshotCrashResumes is TestTree_SnapshotCutResumes with kill
// -9 of the replica instead of a cut link: restarted on its data directory,
// the replica must resume the load from the progress it stored (not start
// over), serve no read until it is done, and converge.
func TestTree_SnapshotCrashResumes(t *testing.T) {
	skipShort(t)
	const (
		nKeys     = 20000
		perBatch  = 500
		valueSize = 1024
		killAt    = 10000 // records received when the replica is killed
	)
	root := cluster.StartRoot(t, "--log-bytes", "64KiB", "--trim-interval", "100ms", "--snapshot-rate", "2MiB")
	dumpOnFailure(t, root)
	hc := rawHTTP(t)
	l := newSeqLog(t, root)
	base := bulkLoad(t, l, root, nKeys, perBatch, valueSize)

	replica := cluster.StartReplica(t, []string{root.Addr})
	dumpOnFailure(t, replica)
	probes := startProber(t, replica, []string{bulkKey(3), bulkKey(nKeys - 3)}, 10*time.Millisecond)
	var before float64
	loadingSeen := time.Time{}
	cluster.WaitFor(t, 30*time.Second, func() error {
		m, err := scrapeMetrics(hc, replica)
		if err != nil {
			return err
		}
		before = m["argent_snapshot_records_received_total"]
		if before > 0 && loadingSeen.IsZero() {
			loadingSeen = time.Now()
		}
		if before < killAt {
			return fmt.Errorf("replica received %g snapshot records, waiting for %d", before, killAt)
		}
		return nil
	})
	replica.Kill()
	t.Logf("killed the replica %v into the transfer, after at least %g records", time.Since(loadingSeen).Round(time.Millisecond), before)
	for i := range 5 {
		l.write(argent.Op{Type: argent.OpPut, Key: []byte(bulkKey(3)), Value: []byte(fmt.Sprintf("late-%d", i))},
			argent.Op{Type: argent.OpPut, Key: []byte(bulkKey(nKeys - 3)), Value: []byte(fmt.Sprintf("late-%d", i))})
	}
	final := l.final()
	replica.Start()
	st := replica.WaitReady(cluster.DefaultReadyTimeout)
	t.Logf("replica restarted: status applied %d root %d", st.AppliedIndex, st.RootIndex)
	waitAllApplied(t, []*cluster.Node{replica}, final, 60*time.Second)
	m, err := scrapeMetrics(hc, replica)
	if err != nil {
		t.Fatal(err)
	}
	after := m["argent_snapshot_records_received_total"]
	t.Logf("after the restart: snapshots loaded %g, resumes %g, records received %g (%g before the kill)",
		m["argent_snapshots_loaded_total"], m["argent_snapshot_resumes_total"], after, before)
	if m["argent_snapshot_resumes_total"] < 1 {
		t.Errorf("replica: argent_snapshot_resumes_total = %g after its restart, want >= 1 (the load should resume from its stored progress)", m["argent_snapshot_resumes_total"])
	}
	// Progress is stored every 4 MiB of records (about 4,000 here): a
	// resumed load gets at most that many again.
	if limit := float64(nKeys) - before + 5000; after > limit {
		t.Errorf("replica received %g records after its restart, %g before: want at most %g, the load started over", after, before, limit)
	}
	tr := l.truth()
	want := digestTruth(tr, final)
	checkDigests(t, final, &want, root, replica)
	ps := probes.stopProbes()
	t.Logf("reads at the replica: %s", probeSummary(ps))
	checkProbes(t, "reads at the replica across its kill -9 mid-snapshot", tr, ps)
	for _, pr := range ps {
		if pr.status != 0 && pr.status != http.StatusServiceUnavailable && pr.start.After(loadingSeen) && pr.s < base {
			t.Errorf("read sent after the snapshot load began was answered from S=%d, older than the snapshot (%d): %v", pr.s, base, pr)
		}
	}
}

// TestTree_StalledIntermediateFailover runs root -> r1 -> r2 with r2's
// --upstream r1,root and a 2 s stall timeout, writes 100 batches/s, and
// stops r1 with SIGSTOP: its connections stay open but say nothing, so r2
// must move to the root after its stall timeout and go on without a gap
// (a watch at r2 from 1 checks it); once r1 is continued, it catches up.
func TestTree_StalledIntermediateFailover(t *testing.T) {
	skipShort(t)
	const stall = 2 * time.Second
	root := cluster.StartRoot(t)
	r1 := cluster.StartReplica(t, []string{root.Addr})
	dumpOnFailure(t, root, r1)
	rc, c1 := newClient(t, root), newClient(t, r1)
	rootID := readStatus(t, rc).DatasetID
	cluster.WaitFor(t, 10*time.Second, func() error {
		if st := readStatus(t, c1); st.DatasetID != rootID {
			return fmt.Errorf("r1 has dataset %q, want %q", st.DatasetID, rootID)
		}
		return nil
	})
	r2 := cluster.StartReplica(t, []string{r1.Addr, root.Addr}, "--stall-timeout", stall.String())
	dumpOnFailure(t, r2)
	c2 := newClient(t, r2)
	cluster.WaitFor(t, 10*time.Second, func() error {
		if st := readStatus(t, c2); st.Upstream != r1.Addr {
			return fmt.Errorf("r2 follows %q, want r1 %s", st.Upstream, r1.Addr)
		}
		return nil
	})
	watch := startWatch(t, c2, "", 1)
	load := startPacedLoad(rc, 100, 2, 64, 5*time.Second)
	defer load.halt()

	time.Sleep(time.Second)
	r1.Pause()
	paused := time.Now()
	var failover time.Duration
	cluster.WaitFor(t, stall+5*time.Second, func() error {
		if st := readStatus(t, c2); st.Upstream != root.Addr {
			return fmt.Errorf("r2 follows %q %v after r1 was stopped, want the root %s", st.Upstream, time.Since(paused).Round(time.Millisecond), root.Addr)
		}
		failover = time.Since(paused)
		return nil
	})
	rootNow := readStatus(t, rc).AppliedIndex
	if err := waitApplied(r2, uint64(rootNow), 3*time.Second); err != nil {
		t.Errorf("r2 did not catch up with the root after moving to it: %v", err)
	}
	t.Logf("r2 moved to the root %v after r1 was stopped (stall timeout %v); at the root's index %d %v after the stop",
		failover.Round(time.Millisecond), stall, rootNow, time.Since(paused).Round(time.Millisecond))

	final := load.wait()
	t.Logf("load: %v", load)
	r1.Resume()
	waitAllApplied(t, []*cluster.Node{root, r1, r2}, final, 15*time.Second)
	entries, err := fetchLog(rc, final, 30*time.Second)
	if err != nil {
		t.Fatalf("root's log: %v", err)
	}
	if !watch.waitUntil(10*time.Second, reached(final)) {
		evs, err := watch.snapshot()
		t.Errorf("%s: did not reach %d; %d events, last %s, err %v", watch.desc, final, len(evs), lastEvent(evs), err)
	}
	evs, err := watch.stop()
	if err != nil {
		t.Errorf("%s ended by itself across r2's failover: %v", watch.desc, err)
	}
	checkStream(t, 0, watch.desc+" spanning the stall failover", evs, entries)
	want := digestTruth(newTruth(entries), final)
	checkDigests(t, final, &want, root, r1, r2)
	hc := rawHTTP(t)
	if v := metric(t, hc, r2, `argent_upstream_reconnects_total{reason="stall"}`); v < 1 {
		t.Errorf("r2: no reconnect for a stall (reconnects by reason: %s)", describeNode(hc, r2))
	}
}
