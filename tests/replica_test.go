package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// TestReplica_SequentialConsistency checks docs/CONTRACT.md section 3 promises 2
// and 3 at a replica under a concurrent random workload: every read equals
// the root's state at the index S it reports (mget: all keys at one S; scan:
// the page of that state), S never goes back in real time, and a read with
// min_index=N is answered from S >= N. It also checks the writes against the
// root's log (promise 1's durability half) and that the replica's log equals
// the root's.
func TestReplica_SequentialConsistency(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	replica := cluster.StartReplica(t, []string{root.Addr})
	rc, pc := newClient(t, root), newClient(t, replica)

	w := newWorkload(seed, rc, pc, workloadConfig{
		writers: 8, readers: 8, rywReaders: 2, rootReaders: 1,
		duration: 5 * time.Second, maxOps: 5000,
	})
	w.start()
	w.wait()
	w.logSummary(t)

	tr := finalTruth(t, w, root)
	cluster.WaitApplied(t, replica, uint64(tr.final()), 30*time.Second)
	checkSameLog(t, tr, pc)

	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, node := range []string{"replica", "root"} {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for node, errs := range w.mu.readErrs {
		for class, n := range errs.counts {
			if class != "timeout" {
				t.Errorf("%d reads at the %s failed with %s (no faults were injected): %v", n, node, class, errs)
			}
		}
	}
	if n := w.mu.writeErrs.total(); n > 0 {
		t.Errorf("%d writes failed without a 4xx (no faults were injected): %v", n, &w.mu.writeErrs)
	}
}

// TestReplica_KillRestart runs the workload of
// TestReplica_SequentialConsistency and kills -9 first the replica, then the
// root (with writes in flight), restarting each on its data directory. Reads
// at the replica must never go back (also across its restart), every
// acknowledged write must be in the root's log after its restart, an
// unacknowledged write is there once or not at all, and every read still
// equals the truth at its S.
func TestReplica_KillRestart(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	replica := cluster.StartReplica(t, []string{root.Addr}, "--stall-timeout", "5s")
	rc, pc := newClient(t, root), newClient(t, replica)

	w := newWorkload(seed, rc, pc, workloadConfig{
		writers: 6, readers: 6, rywReaders: 2, rootReaders: 1,
		duration: 9 * time.Second, maxOps: 10000,
	})
	watch1 := startWatch(t, pc, "", 1)
	w.start()
	defer w.halt() // if a Fatal ends the test early

	sleepUntil(w.t0.Add(2 * time.Second))
	replicaKilled := time.Now()
	replica.Kill()
	t.Logf("killed the replica at %v", replicaKilled.Sub(w.t0))
	time.Sleep(300 * time.Millisecond)
	replica.Start()
	replica.WaitReady(cluster.DefaultReadyTimeout)
	replicaBack := time.Now()
	t.Logf("replica ready again at %v", replicaBack.Sub(w.t0))

	// The watch broke with the replica; resume it from the next index.
	watched, err := watch1.stop()
	t.Logf("watch of the replica ended with its kill after %d events: %v", len(watched), err)
	var resumeFrom argent.Index = 1
	if b := batchesOf(watched); len(b) > 0 {
		resumeFrom = b[len(b)-1].Index + 1
	}
	watch2 := startWatch(t, pc, "", resumeFrom)
	// It must resume pulling: reach the root's index of now.
	if st, err := root.Status(); err != nil {
		t.Errorf("root status: %v", err)
	} else if err := waitApplied(replica, st.AppliedIndex, 5*time.Second); err != nil {
		t.Errorf("the replica did not resume following the root after its restart: %v", err)
	}

	sleepUntil(w.t0.Add(5 * time.Second))
	st, err := root.Status()
	if err != nil {
		t.Fatal(err)
	}
	rootKilled := time.Now()
	root.Kill()
	t.Logf("killed the root at %v (applied index about %d, %d acked so far)", rootKilled.Sub(w.t0), st.AppliedIndex, w.maxAcked.Load())
	time.Sleep(300 * time.Millisecond)
	root.Start()
	root.WaitReady(cluster.DefaultReadyTimeout)
	t.Logf("root ready again at %v", time.Since(w.t0))

	w.wait()
	w.logSummary(t)

	tr := finalTruth(t, w, root)
	cluster.WaitApplied(t, replica, uint64(tr.final()), 30*time.Second)
	checkSameLog(t, tr, pc)

	// The watch, resumed after the replica's restart, shows the whole log.
	if !watch2.waitUntil(15*time.Second, reached(tr.final())) {
		t.Errorf("%s: did not reach %d within 15 s", watch2.desc, tr.final())
	}
	resumed, err := watch2.stop()
	if err != nil {
		t.Errorf("%s: %v", watch2.desc, err)
	}
	checkStream(t, seed, "watch of the replica from 1, resumed after its restart from "+fmt.Sprint(resumeFrom),
		append(watched, resumed...), tr.entries)

	// Reads never go back across the replica's restart.
	before, after := w.readsAround("replica", replicaKilled, replicaBack)
	var maxBefore argent.Index
	for _, r := range before {
		maxBefore = max(maxBefore, r.s)
	}
	bad := 0
	for _, r := range after {
		if r.s < maxBefore {
			if bad++; bad <= maxReported {
				t.Errorf("seed %d: the replica answered from S=%d before its kill -9, and from S=%d after its restart: %s", seed, maxBefore, r.s, w.fmtRead(r))
			}
		}
	}
	if len(after) == 0 {
		t.Errorf("no successful read at the replica after its restart")
	}
	t.Logf("replica: max S before kill %d; %d reads before, %d after restart", maxBefore, len(before), len(after))

	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, node := range []string{"replica", "root"} {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
}

// finalTruth waits until the root's log covers every acknowledged write and
// every read's S, fetches it with a watch from 1, and replays it.
func finalTruth(t *testing.T, w *workload, root *cluster.Node) *truth {
	t.Helper()
	st, err := root.Status()
	if err != nil {
		t.Fatal(err)
	}
	final := max(argent.Index(st.AppliedIndex), argent.Index(w.maxAcked.Load()), w.maxReadS())
	if final > argent.Index(st.AppliedIndex) {
		t.Logf("root's applied index %d is below the highest acked index or read S (%d); waiting for it", st.AppliedIndex, final)
	}
	entries, err := fetchLog(w.root, final, 30*time.Second)
	if err != nil {
		t.Fatalf("seed %d: root's log: %v", w.seed, err)
	}
	t.Logf("root's log: %d batches", len(entries))
	return newTruth(entries)
}

// checkSameLog fetches the log of the node behind c up to the truth's end
// and compares it with the root's.
func checkSameLog(t *testing.T, tr *truth, c *client.Client) {
	t.Helper()
	entries, err := fetchLog(c, tr.final(), 30*time.Second)
	if err != nil {
		t.Errorf("log of %s: %v", c.Addr(), err)
	}
	if err := compareLogs(tr.entries, entries); err != nil {
		t.Errorf("log of %s differs from the root's: %v", c.Addr(), err)
	}
}

// waitApplied polls n's status until applied_index >= index, and returns
// an error if that has not happened within timeout.
func waitApplied(n *cluster.Node, index uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := n.Status()
		if err == nil && st.AppliedIndex >= index {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s: applied_index %d after %v, want >= %d", n.Name, st.AppliedIndex, timeout, index)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readStatus returns c's status, failing t on error.
func readStatus(t *testing.T, c *client.Client) client.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
