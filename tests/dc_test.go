package tests

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/dcshard"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// dcTree is a v2 data center under a root: replica A follows the root
// directly, replica B behind a 40 ms link (so B lags); a relay of DC dc1
// follows them and feeds four proxies of dc1, which share the DC's 1,024
// L2 shards. Each proxy's cache and window are small, so that reads miss,
// ask the shard's owner (L2), and go on to the relay and replicas (L3).
type dcTree struct {
	root, a, b *cluster.Node
	relay      *cluster.Node
	proxies    []*cluster.Node
}

const dcName = "dc1"

func startDC(t *testing.T) *dcTree {
	t.Helper()
	d := &dcTree{root: cluster.StartRoot(t)}
	d.a = cluster.StartReplica(t, []string{d.root.Addr})
	link := faultproxy.Start(t, d.root.Addr)
	link.SetDelay(40 * time.Millisecond)
	d.b = cluster.StartReplica(t, []string{link.Addr()})
	d.relay = cluster.NewNode(t, "relay", "--upstream", d.b.Addr+","+d.a.Addr, "--dc", dcName, "--stall-timeout", "5s")
	d.relay.Start()
	d.relay.WaitReady(cluster.DefaultReadyTimeout)
	// Every proxy's address is chosen (NewNode takes a free one) before
	// any starts, so each gets the whole DC in --dc-peers, itself included.
	var addrs []string
	for range 4 {
		px := cluster.NewNode(t, "proxy", "--upstream", d.relay.Addr, "--dc", dcName,
			"--cache-size", "64KiB", "--window-bytes", "8KiB", "--l2-timeout", "200ms",
			"--miss-wait", "5s", "--stall-timeout", "5s")
		d.proxies = append(d.proxies, px)
		addrs = append(addrs, px.Addr)
	}
	for _, px := range d.proxies {
		px.Args = append(px.Args, "--dc-peers", strings.Join(addrs, ","))
		px.Start()
	}
	for _, px := range d.proxies {
		px.WaitReady(cluster.DefaultReadyTimeout)
		px.WaitFirstState(cluster.DefaultReadyTimeout)
	}
	dumpOnFailure(t, d.nodes()...)
	return d
}

func (d *dcTree) nodes() []*cluster.Node {
	return append([]*cluster.Node{d.root, d.a, d.b, d.relay}, d.proxies...)
}

// readTargets returns one read target per proxy, named by the proxy's
// node name.
func (d *dcTree) readTargets(t *testing.T) []readTarget {
	var ts []readTarget
	for _, px := range d.proxies {
		ts = append(ts, readTarget{node: px.Name, c: newClient(t, px)})
	}
	return ts
}

// checkDCRun checks a workload whose reads were spread over the proxies
// of d: the writes against the root's log, and at every proxy (each on
// its own) and the root, that every read equals the truth at its index,
// that indexes never go back and that min_index is honoured. Without
// faults no read may fail but by a min_index wait running out.
func checkDCRun(t *testing.T, w *workload, d *dcTree, faults bool) *truth {
	t.Helper()
	tr := finalTruth(t, w, d.root)
	w.checkProblems(t)
	w.checkWrites(t, tr)
	nodes := []string{"root"}
	for _, px := range d.proxies {
		nodes = append(nodes, px.Name)
	}
	for _, node := range nodes {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, node := range nodes {
		if len(w.mu.reads[node]) == 0 {
			t.Errorf("no read succeeded at the %s", node)
		}
	}
	if faults {
		return tr
	}
	for node, errs := range w.mu.readErrs {
		for class, n := range errs.counts {
			if class != "timeout" {
				t.Errorf("%d reads at the %s failed with %s (no node was killed): %v", n, node, class, errs)
			}
		}
	}
	return tr
}

// dcTiers is how the proxies of a DC answered, summed over the proxies.
type dcTiers struct {
	l2, l3, prefetched, l2Served float64
}

// logDCTiers logs how each proxy of d answered its reads, by tier, and
// what it took from the miss stream and served as an L2 owner, and
// returns the sums over the proxies.
func logDCTiers(t *testing.T, d *dcTree) dcTiers {
	t.Helper()
	hc := rawHTTP(t)
	var sum dcTiers
	for _, px := range d.proxies {
		m, err := scrapeMetrics(hc, px)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		t.Logf("%s (%s): reads window %g, cache %g, filter %g, l2 %g, l3 %g; prefetched %g, l2 served %g, admitted %g, failed misses %g, applied %g",
			px.Name, px.Addr, m["argent_proxy_reads_window_total"], m["argent_proxy_reads_cache_total"], m["argent_proxy_reads_filter_total"],
			m["argent_proxy_reads_l2_total"], m["argent_proxy_reads_l3_total"], m["argent_proxy_prefetched_total"],
			m["argent_proxy_l2_served_total"], m["argent_proxy_admitted_total"], m["argent_proxy_miss_failures_total"],
			m["argent_applied_index"])
		sum.l2 += m["argent_proxy_reads_l2_total"]
		sum.l3 += m["argent_proxy_reads_l3_total"]
		sum.prefetched += m["argent_proxy_prefetched_total"]
		sum.l2Served += m["argent_proxy_l2_served_total"]
	}
	if m, err := scrapeMetrics(hc, d.relay); err == nil {
		t.Logf("%s: lookups %g, upstream lookups %g, shared %g, misses published %g, subscribers %g, subscriber drops %g, children %g",
			d.relay.Name, m["argent_relay_lookups_total"], m["argent_relay_upstream_lookups_total"], m["argent_relay_lookup_shared_total"],
			m["argent_relay_misses_published_total"], m["argent_relay_subscribers"], m["argent_relay_subscriber_drops_total"], m["argent_children"])
	} else {
		t.Logf("relay metrics: %v", err)
	}
	return sum
}

// readAtLeast reads key at c with min_index idx, trying again until
// timeout, and returns the index of the answer or the last error.
func readAtLeast(c *client.Client, key string, idx argent.Index, timeout time.Duration) (argent.Index, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := ctxTimeout(6 * time.Second)
		v, err := c.Get(ctx, []byte(key), client.ReadOptions{MinIndex: idx, Wait: 5 * time.Second})
		cancel()
		if errors.Is(err, argent.ErrNotFound) {
			err = nil
		}
		switch {
		case err == nil && v.Index < idx:
			return v.Index, fmt.Errorf("answered from %d < min_index %d", v.Index, idx)
		case err == nil:
			return v.Index, nil
		case time.Now().After(deadline):
			return 0, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDC_CheckerAtEveryProxy runs the consistency checker at every proxy
// of a v2 data center (promises 2, 3 and 5): writers at the root, readers
// (gets, mgets and scans, with and without min_index) spread over the four
// proxies, each proxy checked on its own. Mid-run one proxy is paused
// (SIGSTOP) for a second, so it falls behind the owners it asks and the
// proxies asking it wait at most --l2-timeout; its reads after it resumes
// must still be right. No read may fail (but a min_index read whose wait
// ran out), and the DC's L2 path must have answered reads. Then a key
// resolved at L3 while its owner is paused reaches the owner through the
// relay's miss stream.
func TestDC_CheckerAtEveryProxy(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	d := startDC(t)
	w := newSpreadWorkload(seed, newClient(t, d.root), d.readTargets(t), workloadConfig{
		writers: 4, readers: 8, rywReaders: 2, rootReaders: 1,
		duration: 8 * time.Second, maxOps: 4000,
	})
	w.start()
	defer w.halt() // if a Fatal ends the test early

	paused := d.proxies[2]
	sleepUntil(w.t0.Add(3 * time.Second))
	pausedIdx := w.maxAcked.Load()
	paused.Pause()
	pausedAt := time.Now()
	time.Sleep(time.Second)
	rootSt, rootErr := d.root.Status()
	paused.Resume()
	resumedAt := time.Now()
	t.Logf("%s paused at %v at index %d, resumed at %v with the root at %d (%v)", paused.Name, pausedAt.Sub(w.t0),
		pausedIdx, resumedAt.Sub(w.t0), rootSt.AppliedIndex, rootErr)

	w.wait()
	w.logSummary(t)
	checkDCRun(t, w, d, false)
	if _, after := w.readsAround(paused.Name, pausedAt, resumedAt); len(after) == 0 {
		t.Errorf("no read succeeded at %s after it resumed", paused.Name)
	}
	sum := logDCTiers(t, d)
	if sum.l2 == 0 {
		t.Errorf("no proxy answered a read from L2 (a DC peer owning the key's shard): %+v", sum)
	}
	checkPrefetchReachesOwner(t, d)
}

// checkPrefetchReachesOwner has a proxy resolve, at L3, a key whose shard
// another proxy owns, while that owner is paused: the relay publishes the
// miss, and the owner, once resumed, takes it from the miss stream
// (reactive prefetch), so the DC's next read of the key is an L2 hit.
func checkPrefetchReachesOwner(t *testing.T, d *dcTree) {
	t.Helper()
	var addrs []string
	for _, px := range d.proxies {
		addrs = append(addrs, px.Addr)
	}
	ring := dcshard.NewRing(addrs)
	owner, asker := d.proxies[1], d.proxies[0]
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("prefetch/%d", i); ownerOf(ring, k) == owner.Addr {
			key = k
		}
	}
	rc := newClient(t, d.root)
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	if _, err := rc.Put(ctx, []byte(key), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Push the key out of every proxy's 8 KiB window, so that a read of it
	// misses.
	var last argent.Index
	for i := range 24 {
		idx, err := rc.Put(ctx, []byte(fmt.Sprintf("filler/%d", i)), make([]byte, 1024))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	if _, err := readAtLeast(newClient(t, owner), "filler/0", last, 20*time.Second); err != nil {
		t.Fatalf("%s did not reach %d: %v", owner.Name, last, err)
	}
	hc := rawHTTP(t)
	before, err := scrapeMetrics(hc, owner)
	if err != nil {
		t.Fatal(err)
	}
	owner.Pause()
	v, err := newClient(t, asker).Get(ctx, []byte(key), client.ReadOptions{MinIndex: last})
	owner.Resume()
	if err != nil || string(v.Value) != "v" || v.Tier != "l3" {
		t.Fatalf("read of %s at %s with its owner paused: %+v, %v; want v from l3", key, asker.Name, v, err)
	}
	cluster.WaitFor(t, 10*time.Second, func() error {
		m, err := scrapeMetrics(hc, owner)
		if err != nil {
			return err
		}
		if m["argent_proxy_prefetched_total"] <= before["argent_proxy_prefetched_total"] {
			return fmt.Errorf("%s took no key from the miss stream", owner.Name)
		}
		return nil
	})
	v, err = newClient(t, d.proxies[2]).Get(ctx, []byte(key), client.ReadOptions{MinIndex: last})
	if err != nil || string(v.Value) != "v" || v.Tier != "l2" {
		t.Errorf("read of %s at %s after its owner took it from the miss stream: %+v, %v; want v from l2", key, d.proxies[2].Name, v, err)
	}
}

func ownerOf(r *dcshard.Ring, key string) string {
	o, _ := r.Owner(dcshard.Of([]byte(key)), nil)
	return o
}

// TestDC_OwnerAndRelayKilled kills -9 one proxy (the owner of about a
// quarter of the DC's L2 shards), restarts it, then kills -9 the relay and
// restarts it at the same address, while the workload runs. Reads at
// every proxy stay equal to the truth at their index and never go back
// (also across the proxy's restart); faults may fail reads, never make
// them wrong. While the relay is dead the proxies follow the replicas they
// learned from its status, so their applied indexes move on: each
// surviving proxy answers a min_index read of an index written after the
// relay died. After the restarts every proxy and the relay answer again.
func TestDC_OwnerAndRelayKilled(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	d := startDC(t)
	targets := d.readTargets(t)
	w := newSpreadWorkload(seed, newClient(t, d.root), targets, workloadConfig{
		writers: 4, readers: 8, rywReaders: 2, rootReaders: 1,
		duration: 14 * time.Second, maxOps: 8000,
	})
	w.start()
	defer w.halt()

	owner := d.proxies[1]
	sleepUntil(w.t0.Add(2 * time.Second))
	owner.Kill()
	ownerKilled := time.Now()
	time.Sleep(time.Second)
	owner.Start()
	owner.WaitReady(cluster.DefaultReadyTimeout)
	ownerBack := time.Now()
	t.Logf("%s killed at %v, ready again at %v", owner.Name, ownerKilled.Sub(w.t0), ownerBack.Sub(w.t0))

	sleepUntil(w.t0.Add(5 * time.Second))
	d.relay.Kill()
	relayKilled := time.Now()
	killIdx := argent.Index(w.maxAcked.Load())
	t.Logf("%s killed at %v, after index %d was acknowledged", d.relay.Name, relayKilled.Sub(w.t0), killIdx)
	// Wait for writes past the kill, then for every surviving proxy to
	// answer at or past them: its log follower moved to a replica.
	cluster.WaitFor(t, 10*time.Second, func() error {
		if argent.Index(w.maxAcked.Load()) < killIdx+20 {
			return fmt.Errorf("acknowledged index %d, want %d", w.maxAcked.Load(), killIdx+20)
		}
		return nil
	})
	target := argent.Index(w.maxAcked.Load())
	for i, px := range d.proxies {
		if px == owner {
			continue
		}
		s, err := readAtLeast(targets[i].c, "a/0/k0", target, 15*time.Second)
		if err != nil {
			t.Errorf("%s with the relay dead: a read with min_index %d (written after the relay died at %d): %v", px.Name, target, killIdx, err)
			continue
		}
		st, err := px.Status()
		if err != nil {
			t.Errorf("%s with the relay dead: %v", px.Name, err)
			continue
		}
		if argent.Index(st.AppliedIndex) < target {
			t.Errorf("%s with the relay dead: answered min_index %d at %d, but its status says applied_index %d", px.Name, target, s, st.AppliedIndex)
		}
		t.Logf("%s with the relay dead: answered min_index %d at %d, %v after the kill; follows %s",
			px.Name, target, s, time.Since(relayKilled).Round(time.Millisecond), st.Upstream)
	}
	sleepUntil(w.t0.Add(9 * time.Second))
	d.relay.Start()
	d.relay.WaitReady(cluster.DefaultReadyTimeout)
	relayBack := time.Now()
	t.Logf("%s ready again at %v", d.relay.Name, relayBack.Sub(w.t0))

	w.wait()
	w.logSummary(t)
	tr := checkDCRun(t, w, d, true)

	// A fault may make reads fail, but only as unavailable (503) or out of
	// time; at a proxy that was not killed the connection never fails.
	w.mu.Lock()
	for _, px := range d.proxies {
		errs := w.mu.readErrs[px.Name]
		for class, n := range errs.counts {
			if class != "timeout" && class != "503" && (px != owner || class != "transport") {
				t.Errorf("%d reads at %s failed with %s: %v", n, px.Name, class, errs)
			}
		}
	}
	w.mu.Unlock()
	if _, after := w.readsAround(owner.Name, ownerKilled, ownerBack); len(after) == 0 {
		t.Errorf("no read succeeded at %s after its restart", owner.Name)
	}
	// Everything answers again: the relay follows the log to the end, and
	// every proxy answers at the end of the log.
	cluster.WaitApplied(t, d.relay, uint64(tr.final()), 20*time.Second)
	for i, px := range d.proxies {
		if _, err := readAtLeast(targets[i].c, "b/1/k1", tr.final(), 20*time.Second); err != nil {
			t.Errorf("%s after the restarts: a read with min_index %d: %v", px.Name, tr.final(), err)
		}
	}
	hc := rawHTTP(t)
	resp, err := hc.Get(fmt.Sprintf("%s/internal/v1/lookup?key=a%%2F0%%2Fk0&at=%d", d.relay.URL(), tr.final()))
	if err != nil {
		t.Errorf("lookup at the restarted relay: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Errorf("lookup at the restarted relay: %s", resp.Status)
		}
	}
	logDCTiers(t, d)
}
