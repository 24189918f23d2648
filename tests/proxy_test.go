package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// proxyTree starts a root, a replica A that follows it directly and a
// replica B behind a 40 ms link (so B lags), and a proxy with a small cache
// and window that follows the healthiest of them and resolves its misses at
// B first, then A: B's answers come from behind the proxy's index and must
// be proven by the window, A's from ahead, by MVCC history.
func proxyTree(t *testing.T, cacheSize string) (root, a, b, px *cluster.Node) {
	t.Helper()
	root = cluster.StartRoot(t)
	a = cluster.StartReplica(t, []string{root.Addr})
	link := faultproxy.Start(t, root.Addr)
	link.SetDelay(40 * time.Millisecond)
	b = cluster.StartReplica(t, []string{link.Addr()})
	px = cluster.NewNode(t, "proxy", "--upstream", b.Addr+","+a.Addr, "--cache-size", cacheSize,
		"--window-bytes", "8KiB", "--miss-wait", "5s", "--stall-timeout", "5s")
	px.Start()
	px.WaitReady(cluster.DefaultReadyTimeout)
	px.WaitFirstState(cluster.DefaultReadyTimeout)
	return root, a, b, px
}

// checkProxyRun runs the usual checks of a workload whose reads went to a
// proxy: every read equals the truth at its index, indexes never go back,
// min_index is honoured, and (without faults) no read failed.
func checkProxyRun(t *testing.T, w *workload, root *cluster.Node, faults bool) {
	t.Helper()
	tr := finalTruth(t, w, root)
	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, node := range []string{"replica", "root"} {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
	if faults {
		return
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
}

// TestProxy_SequentialConsistency checks promises 2, 3 and 5 at proxies
// whose caches hold about 1% and 10% of the data, under concurrent writes,
// with one replica behind the proxy and one ahead of it.
func TestProxy_SequentialConsistency(t *testing.T) {
	skipShort(t)
	// About 200 keys of ~30-byte values and ~100 bytes of overhead each:
	// 256 B holds 1-2 keys, 4 KiB about 20.
	for _, tc := range []struct{ name, cache string }{{"cache1pct", "256B"}, {"cache10pct", "4KiB"}} {
		t.Run(tc.name, func(t *testing.T) {
			seed := testSeed(t)
			root, _, _, px := proxyTree(t, tc.cache)
			rc, pc := newClient(t, root), newClient(t, px)
			w := newWorkload(seed, rc, pc, workloadConfig{
				writers: 6, readers: 8, rywReaders: 2, rootReaders: 1,
				duration: 5 * time.Second, maxOps: 4000,
			})
			watch := startWatch(t, pc, "", 1) // from the proxy's recent log
			w.start()
			w.wait()
			w.logSummary(t)
			checkProxyRun(t, w, root, false)
			tr := finalTruth(t, w, root)
			if !watch.waitUntil(15*time.Second, reached(tr.final())) {
				t.Errorf("%s: did not reach %d within 15 s", watch.desc, tr.final())
			}
			evs, err := watch.stop()
			if err != nil {
				t.Errorf("%s: %v", watch.desc, err)
			}
			checkStream(t, seed, "watch of the proxy from 1", evs, tr.entries)
			logProxyTiers(t, px)
		})
	}
}

// TestProxy_KillRestart kills -9 the proxy, then the replica it follows,
// while the workload runs: the proxy's reads never go back (also across its
// restart, where it reopens its cache at its own index), and stay equal to
// the truth at their index.
func TestProxy_KillRestart(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root, a, _, px := proxyTree(t, "1KiB")
	rc, pc := newClient(t, root), newClient(t, px)
	w := newWorkload(seed, rc, pc, workloadConfig{
		writers: 4, readers: 6, rywReaders: 2, rootReaders: 1,
		duration: 9 * time.Second, maxOps: 8000,
	})
	w.start()
	defer w.halt() // if a Fatal ends the test early

	sleepUntil(w.t0.Add(2 * time.Second))
	pxKilled := time.Now()
	px.Kill()
	time.Sleep(300 * time.Millisecond)
	px.Start()
	px.WaitReady(cluster.DefaultReadyTimeout)
	pxBack := time.Now()
	t.Logf("proxy killed at %v, ready again at %v", pxKilled.Sub(w.t0), pxBack.Sub(w.t0))

	sleepUntil(w.t0.Add(5 * time.Second))
	a.Kill()
	t.Logf("killed replica A at %v", time.Since(w.t0))
	time.Sleep(time.Second)
	a.Start()
	a.WaitReady(cluster.DefaultReadyTimeout)

	w.wait()
	w.logSummary(t)
	checkProxyRun(t, w, root, true)

	before, after := w.readsAround("replica", pxKilled, pxBack)
	var maxBefore uint64
	for _, r := range before {
		maxBefore = max(maxBefore, uint64(r.s))
	}
	for _, r := range after {
		if uint64(r.s) < maxBefore {
			t.Errorf("after its restart the proxy answered at %d, below the %d it answered at before", r.s, maxBefore)
			break
		}
	}
	if len(after) == 0 {
		t.Error("no read succeeded at the proxy after its restart")
	}
	logProxyTiers(t, px)
}

// logProxyTiers logs how a proxy's reads were answered.
func logProxyTiers(t *testing.T, px *cluster.Node) {
	t.Helper()
	resp, err := http.Get(px.URL() + "/metrics")
	if err != nil {
		t.Logf("proxy metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && strings.HasPrefix(name, "argent_proxy_") {
			m[name] = v
		}
	}
	t.Logf("proxy reads: window %v, cache %v, filter %v, l2 %v, l3 %v; admitted %v, failed misses %v",
		m["argent_proxy_reads_window_total"], m["argent_proxy_reads_cache_total"], m["argent_proxy_reads_filter_total"],
		m["argent_proxy_reads_l2_total"], m["argent_proxy_reads_l3_total"], m["argent_proxy_admitted_total"], m["argent_proxy_miss_failures_total"])
}

// TestProxy_LearnsReplicas gives a proxy one replica, A, in --upstream and
// kills A for good once the proxy has had time to learn the rest of the
// tree from the nodes' status (A's upstream, the root, names its children):
// the proxy goes on following the log and answering misses through B.
func TestProxy_LearnsReplicas(t *testing.T) {
	skipShort(t)
	root := cluster.StartRoot(t)
	a := cluster.StartReplica(t, []string{root.Addr})
	b := cluster.StartReplica(t, []string{root.Addr})
	px := cluster.NewNode(t, "proxy", "--upstream", a.Addr, "--cache-size", "4KiB", "--window-bytes", "1KiB", "--stall-timeout", "2s")
	px.Start()
	px.WaitReady(cluster.DefaultReadyTimeout)
	rc, pc := newClient(t, root), newClient(t, px)
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	for i := range 50 {
		if _, err := rc.Put(ctx, []byte(fmt.Sprintf("before/%d", i)), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(7 * time.Second) // three status rounds: A, then the root, then B
	a.Kill()
	var last argent.Index
	for i := range 50 {
		last, _ = rc.Put(ctx, []byte(fmt.Sprintf("after/%d", i)), []byte("2"))
	}
	cluster.WaitApplied(t, b, uint64(last), 10*time.Second)
	cluster.WaitApplied(t, px, uint64(last), 20*time.Second)
	for i := range 50 {
		for _, k := range []string{fmt.Sprintf("before/%d", i), fmt.Sprintf("after/%d", i)} {
			v, err := pc.Get(ctx, []byte(k), client.ReadOptions{MinIndex: last})
			want := "1"
			if k[0] == 'a' {
				want = "2"
			}
			if err != nil || string(v.Value) != want {
				t.Fatalf("read %q at the proxy after A died: %q, %v", k, v.Value, err)
			}
		}
	}
	logProxyTiers(t, px)
}
