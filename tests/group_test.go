package tests

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// The tests of this file check that a root group (argent root --id N
// --peers ..., three members) keeps the promises of docs/CONTRACT.md
// section 3 while its members fail: kill -9 and SIGSTOP of the leader, a
// partition that isolates it (a faultproxy on every link between members),
// and kill -9 of a follower. Helpers are in group_helpers_test.go.

// TestGroup_LeaderKills runs eight writers that put unique keys at random
// members, with short timeouts and a retry of every failed put, and kills
// -9 the leader 20 times, restarting it each time. It measures the resume
// time of each kill (from the kill to the first acknowledgement, by a
// surviving member, of a put sent after it) and checks at the end that
// every acknowledged put is in every member's log at its index and in each
// member's state, read with ?linearizable=true and as the member's own
// state once the group has converged, and that the argent log is dense and
// the same on every member.
func TestGroup_LeaderKills(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	const (
		writers    = 8
		rounds     = 20
		putTimeout = time.Second
		resumeWant = 1500 * time.Millisecond // the target
		resumeMax  = 3 * time.Second         // the bound the test enforces, for a loaded machine
	)
	g := cluster.StartGroup(t, 3, cluster.GroupOptions{})
	dumpOnFailure(t, g.Members...)
	clients := groupClients(t, g)

	type put struct {
		key, val   string
		index      argent.Index
		member     int
		start, end time.Time
		attempts   int
	}
	var (
		mu       sync.Mutex
		acks     []put
		errs     errSample
		problems []string
		maxAcked atomic.Uint64
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	// resume is armed at each kill: the first put sent after it and
	// acknowledged by another member ends the wait.
	var resume struct {
		sync.Mutex
		armed  bool
		killAt time.Time
		killed int
		done   chan time.Time
	}
	acked := func(p put) {
		mu.Lock()
		acks = append(acks, p)
		mu.Unlock()
		for {
			cur := maxAcked.Load()
			if uint64(p.index) <= cur || maxAcked.CompareAndSwap(cur, uint64(p.index)) {
				break
			}
		}
		resume.Lock()
		if resume.armed && p.member != resume.killed && p.start.After(resume.killAt) {
			resume.armed = false
			resume.done <- p.end
		}
		resume.Unlock()
	}
	for id := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(seed, id)
			for n := 0; !stop.Load(); n++ {
				p := put{key: fmt.Sprintf("lk/%d/%06d", id, n), val: fmt.Sprintf("w%d.%d", id, n)}
				for !stop.Load() {
					p.attempts++
					p.member = rng.IntN(len(clients))
					ctx, cancel := ctxTimeout(putTimeout)
					p.start = time.Now()
					idx, err := clients[p.member].Put(ctx, []byte(p.key), []byte(p.val))
					p.end = time.Now()
					cancel()
					if err == nil {
						p.index = idx
						acked(p)
						break
					}
					mu.Lock()
					errs.add(errClass(err), err)
					if definiteFailure(err) && len(problems) < 10 {
						problems = append(problems, fmt.Sprintf("put %q at %s: %v", p.key, g.Members[p.member].Name, err))
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // a new attempt, maybe at another member
				}
			}
		}()
	}
	halt := func() { stop.Store(true); wg.Wait() }
	defer halt() // if a Fatal ends the test early

	var resumes durations
	t0 := time.Now()
	for round := range rounds {
		leader := g.WaitLeader(10 * time.Second)
		killed := slices.Index(g.Members, leader)
		done := make(chan time.Time, 1)
		resume.Lock()
		resume.armed, resume.killAt, resume.killed, resume.done = true, time.Now(), killed, done
		killAt := resume.killAt
		resume.Unlock()
		leader.Kill()
		var took time.Duration
		select {
		case at := <-done:
			took = at.Sub(killAt)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no put was acknowledged within 10 s of the kill of the leader %s", round, leader.Name)
		}
		resumes = append(resumes, took)
		next, err := g.Leader()
		nextName := fmt.Sprint(err)
		if err == nil {
			nextName = next.Name
		}
		t.Logf("round %d: killed the leader %s; a put was acknowledged %v later; leader now %s", round, leader.Name, took.Round(time.Millisecond), nextName)

		// Back, and caught up, before the next kill.
		leader.Start()
		leader.WaitReady(cluster.DefaultReadyTimeout)
		want := maxAcked.Load()
		if err := waitApplied(leader, want, 15*time.Second); err != nil {
			t.Fatalf("round %d: %s did not catch up to index %d after its restart: %v", round, leader.Name, want, err)
		}
	}
	halt()
	elapsed := time.Since(t0)

	final := g.WaitConverged(30 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	retried := 0
	for _, p := range acks {
		if p.attempts > 1 {
			retried++
		}
	}
	t.Logf("%d kills in %v: %d puts acknowledged (%d after a failed attempt), final index %d; failed attempts: %v",
		rounds, elapsed.Round(time.Millisecond), len(acks), retried, final, &errs)
	t.Logf("resume time after kill -9 of the leader: %v (target p99 <= %v)", resumes, resumeWant)
	for _, p := range problems {
		t.Errorf("a put was refused: %s", p)
	}
	if p99 := resumes.percentile(0.99); p99 > resumeMax {
		t.Errorf("p99 of the resume time after kill -9 of the leader is %v, above the bound of %v (target %v)", p99.Round(time.Millisecond), resumeMax, resumeWant)
	} else if p99 > resumeWant {
		t.Logf("note: p99 of the resume time %v is above the target of %v", p99.Round(time.Millisecond), resumeWant)
	}
	if m := argent.Index(maxAcked.Load()); argent.Index(final) < m {
		t.Fatalf("the converged group is at index %d, below the acknowledged index %d", final, m)
	}

	// The log: dense, the same on every member, and every acknowledged
	// put in it at its index.
	var logs [][]logEntry
	for i, c := range clients {
		entries, err := fetchLog(c, argent.Index(final), 60*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", g.Members[i].Name, err)
		}
		if i > 0 {
			if err := compareLogs(logs[0], entries); err != nil {
				t.Errorf("%s's log differs from %s's: %v", g.Members[i].Name, g.Members[0].Name, err)
			}
		}
		logs = append(logs, entries)
	}
	tr := newTruth(logs[0])
	rep := &reporter{t: t, what: "acknowledged puts vs the log", seed: seed}
	lost := 0
	for _, p := range acks {
		want := []argent.Op{{Type: argent.OpPut, Key: []byte(p.key), Value: []byte(p.val)}}
		if p.index == 0 || p.index > tr.final() || !containsRun(tr.entries[p.index-1].Ops, want) {
			lost++
			rep.errorf("put %q=%q acknowledged by %s at index %d is not in entry %d of the log", p.key, p.val, g.Members[p.member].Name, p.index, p.index)
		}
	}
	rep.done()

	// Every member's state: read with ?linearizable=true, and its own
	// state at the final index, which must equal the log's.
	hc := rawHTTP(t)
	for _, m := range g.Members {
		items, s, err := linScan(hc, m.Addr, "lk/")
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if s < argent.Index(final) {
			t.Errorf("%s: linearizable scan answered from S=%d, below the converged index %d", m.Name, s, final)
		}
		missing := 0
		for _, p := range acks {
			want := tr.item(p.key, s)
			if got, ok := items[p.key]; !ok || !itemEqual(got, want) || string(got.Value) != p.val {
				missing++
				if missing <= maxReported {
					t.Errorf("%s: linearizable scan: %q is %s, want %q as acknowledged at index %d (%s at S=%d)", m.Name, p.key, fmtItem(got), p.val, p.index, fmtItem(want), s)
				}
			}
		}
		lost = max(lost, missing)
	}
	want := digestTruth(tr, argent.Index(final))
	checkDigests(t, argent.Index(final), &want, g.Members...)
	t.Logf("acknowledged puts lost: %d of %d", lost, len(acks))
}

// groupLinFault injects one fault into a running group and heals it before
// it returns, or changes the group's members. The clients send to the
// members in targets; a change of members updates them.
type groupLinFault func(t *testing.T, g *cluster.Group, targets *linTargets)

// TestGroup_Linearizable checks docs/CONTRACT.md section 3 promise 1 for a
// root group with porcupine: six clients put, delete, compare-and-set (a
// txn conditioned on the mod index) and read with ?linearizable=true a few
// keys, each request at a random member, while one fault is injected and
// healed, or the members change (group_members_test.go); the history must
// be linearizable, and every acknowledged write in the log. A write whose
// outcome a client did not learn is recorded as such; the log tells
// afterwards whether a put or a compare-and-set (their values are unique)
// took effect.
func TestGroup_Linearizable(t *testing.T) {
	skipShort(t)
	faults := []struct {
		name  string
		args  []string // of every member
		fault groupLinFault
	}{
		{"LeaderKill", nil, func(t *testing.T, g *cluster.Group, _ *linTargets) {
			l := g.WaitLeader(10 * time.Second)
			l.Kill()
			t.Logf("killed the leader %s", l.Name)
			waitNewLeader(t, g, l)
			time.Sleep(time.Second)
			l.Start()
			l.WaitReady(cluster.DefaultReadyTimeout)
		}},
		{"LeaderPause", nil, func(t *testing.T, g *cluster.Group, _ *linTargets) {
			l := g.WaitLeader(10 * time.Second)
			l.Pause()
			t.Logf("stopped the leader %s", l.Name)
			waitNewLeader(t, g, l)
			time.Sleep(time.Second)
			l.Resume()
		}},
		{"LeaderPartition", nil, func(t *testing.T, g *cluster.Group, _ *linTargets) {
			l := g.WaitLeader(10 * time.Second)
			g.Isolate(l)
			t.Logf("isolated the leader %s", l.Name)
			waitNewLeader(t, g, l)
			time.Sleep(time.Second)
			g.Heal(l)
		}},
		{"FollowerKill", nil, func(t *testing.T, g *cluster.Group, _ *linTargets) {
			l := g.WaitLeader(10 * time.Second)
			f := g.Members[(slices.Index(g.Members, l)+1)%len(g.Members)]
			f.Kill()
			t.Logf("killed the follower %s", f.Name)
			time.Sleep(1500 * time.Millisecond)
			f.Start()
			f.WaitReady(cluster.DefaultReadyTimeout)
		}},
		{"RemoveAndAddFollower", nil, removeAndAddFollower},
		{"TransferAndRemoveLeader", nil, transferAndRemoveLeader},
		// A Raft log of 5 entries past the snapshot, compacted every
		// 100 ms: the new member loads a snapshot.
		{"JoinAfterCompaction", []string{"--raft-log-keep", "5", "--raft-compact-interval", "100ms"}, joinAfterCompaction},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) { groupLinearizable(t, tc.args, tc.fault) })
	}
}

// waitNewLeader waits until a majority follows a leader other than old,
// and logs how long that took.
func waitNewLeader(t *testing.T, g *cluster.Group, old *cluster.Node) {
	t.Helper()
	start := time.Now()
	var l *cluster.Node
	cluster.WaitFor(t, 10*time.Second, func() error {
		var err error
		if l, err = g.Leader(); err != nil {
			return err
		}
		if l == old {
			return fmt.Errorf("%s still leads", old.Name)
		}
		return nil
	})
	t.Logf("%s leads %v later", l.Name, time.Since(start).Round(time.Millisecond))
}

func groupLinearizable(t *testing.T, args []string, fault groupLinFault) {
	seed := testSeed(t)
	g := cluster.StartGroup(t, 3, cluster.GroupOptions{Proxies: true, Args: args})
	dumpOnFailure(t, g.Members...)
	targets := newLinTargets(t, g)
	hc := &http.Client{Transport: client.NewHTTPClient().Transport}
	t.Cleanup(hc.CloseIdleConnections)

	const (
		nClients  = 6
		opTimeout = 2 * time.Second
		before    = time.Second             // of clean operation before the fault
		after     = 1500 * time.Millisecond // after it is healed
	)
	keys := []string{"glin/0", "glin/1", "glin/2", "glin/3", "glin/4", "glin/5"}
	t0 := time.Now()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		errs    errSample
		refused int
		valSeq  atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for id := range nClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(seed, id)
			lastMod := map[string]argent.Index{}
			for !stop.Load() {
				in := linOp(rng, keys[rng.IntN(len(keys))], fmt.Sprintf("c%d-%d", id, valSeq.Add(1)), lastMod)
				m, c := targets.pick(rng)
				ctx, cancel := ctxTimeout(opTimeout)
				call := time.Since(t0).Nanoseconds()
				var (
					out linOutput
					ok  bool
					err error
				)
				if in.op == "get" {
					out, ok, err = linGet(ctx, hc, m.Addr, in.key)
				} else {
					out, ok, err = linDoContext(ctx, c, in)
				}
				ret := time.Since(t0).Nanoseconds()
				cancel()
				if err != nil {
					mu.Lock()
					errs.add(in.op+" "+errClass(err), err)
					if notSent(err) {
						refused++
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // the member may be down
				}
				if !ok || notSent(err) {
					continue // a failed read, or a write that never left: no effect
				}
				op := recordLin(lastMod, id, in, out, call, ret)
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}
	halt := func() { stop.Store(true); wg.Wait() }
	defer halt()

	time.Sleep(before)
	fault(t, g, targets)
	time.Sleep(after)
	halt()
	elapsed := time.Since(t0)

	final := g.WaitConverged(30 * time.Second)
	clients := groupClients(t, g) // the members now
	entries, err := fetchLog(clients[0], argent.Index(final), 30*time.Second)
	if err != nil {
		t.Fatalf("seed %d: %s's log: %v", seed, g.Members[0].Name, err)
	}
	for i, c := range clients[1:] {
		m := g.Members[i+1]
		from := argent.Index(1)
		other, err := fetchLog(c, argent.Index(final), 30*time.Second)
		if errors.Is(err, argent.ErrCompacted) {
			// A member that loaded a snapshot keeps the log from it on.
			from = argent.Index(metric(t, rawHTTP(t), m, "argent_log_first_index"))
			t.Logf("%s's log starts at %d", m.Name, from)
			other, err = fetchLogFrom(c, from, argent.Index(final), 30*time.Second)
		}
		if err != nil {
			t.Errorf("%s's log: %v", m.Name, err)
		} else if err := compareLogs(entries[from-1:], other); err != nil {
			t.Errorf("%s's log differs from %s's: %v", m.Name, g.Members[0].Name, err)
		}
	}
	want := digestTruth(newTruth(entries), argent.Index(final))
	checkDigests(t, argent.Index(final), &want, g.Members...)
	history, applied, dropped := resolveUnknownWrites(history, entries)
	unknownLeft := 0
	for _, op := range history {
		if op.Output.(linOutput).unknown {
			unknownLeft++
		}
	}
	t.Logf("%d operations in %v; writes of unknown outcome: %d took effect, %d did not, %d deletes stay unknown; refused (never sent): %d; errors: %v",
		len(history), elapsed.Round(time.Millisecond), applied, dropped, unknownLeft, refused, &errs)

	checkReadIndexes(t, seed, history)
	placeWrites(t, history, entries)
	model := kvModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable")
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("argent-group-linearizability-%s-%d.html", filepath.Base(t.Name()), seed))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Logf("visualize: %v", err)
		}
		t.Errorf("seed %d: the group's history of %d operations is not linearizable; see %s", seed, len(history), path)
	default:
		t.Errorf("seed %d: porcupine could not decide in time (%v)", seed, res)
	}
}

// resolveUnknownWrites looks up in the log every put and compare-and-set
// of history whose outcome the client did not learn (their values are
// unique): one the log holds took effect at its entry's index, and is given
// that index, though its return time stays unknown; one it does not hold
// never took effect and is left out, as a write that was refused. Deletes
// stay unknown. It returns the new history and the two counts.
func resolveUnknownWrites(history []porcupine.Operation, entries []logEntry) (out []porcupine.Operation, applied, dropped int) {
	at := map[string]argent.Index{} // key and value of a put -> its entry
	for _, e := range entries {
		for _, op := range e.Ops {
			if op.Type == argent.OpPut {
				at[string(op.Key)+"\x00"+string(op.Value)] = e.Index
			}
		}
	}
	for _, op := range history {
		in, o := op.Input.(linInput), op.Output.(linOutput)
		if !o.unknown || in.op == "delete" {
			out = append(out, op)
			continue
		}
		i, ok := at[in.key+"\x00"+in.val]
		if !ok {
			dropped++
			continue
		}
		applied++
		op.Output = linOutput{index: i}
		out = append(out, op)
	}
	return out, applied, dropped
}

// TestGroup_TreeUnderLeaderKills runs the random workload of the tree
// tests against a tree whose root is a three-member group: two replicas
// with every member in --upstream (in opposite orders), and a proxy below
// each of them. Writes go to random members, reads to a proxy (and plain
// reads to member 1), with a watch at a replica and probes at both
// replicas and the other proxy, while the leader is killed -9 five times and
// restarted. Every read must be the truth at its index and never go back
// at a node, the watch must show the whole log in order, and every node
// must converge to the same state.
func TestGroup_TreeUnderLeaderKills(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	const kills = 5
	g := cluster.StartGroup(t, 3, cluster.GroupOptions{})
	addrs := g.Addrs()
	r1 := cluster.StartReplica(t, addrs, "--stall-timeout", "3s")
	r2 := cluster.StartReplica(t, []string{addrs[2], addrs[1], addrs[0]}, "--stall-timeout", "3s")
	startProxy := func(upstreams ...*cluster.Node) *cluster.Node {
		px := cluster.NewNode(t, "proxy", "--upstream", upstreams[0].Addr+","+upstreams[1].Addr, "--cache-size", "4KiB",
			"--window-bytes", "8KiB", "--miss-wait", "5s", "--stall-timeout", "3s")
		px.Start()
		px.WaitReady(cluster.DefaultReadyTimeout)
		px.WaitFirstState(cluster.DefaultReadyTimeout)
		return px
	}
	px1, px2 := startProxy(r1, r2), startProxy(r2, r1)
	all := append(slices.Clone(g.Members), r1, r2, px1, px2)
	dumpOnFailure(t, all...)
	mc := groupClients(t, g)
	c1 := newClient(t, r1)

	w := newWorkload(seed, mc[0], newClient(t, px1), workloadConfig{
		writers: 4, readers: 4, rywReaders: 1, rootReaders: 1,
		duration: 2*kills*time.Second + 3*time.Second, maxOps: 1 << 20,
	})
	w.writeTo = mc
	watch := startWatch(t, c1, "", 1)
	probeKeys := []string{w.keys[0], w.keys[57], w.keys[123], w.keys[len(w.keys)-1]}
	probed := []*cluster.Node{r1, r2, px2}
	var probes []*prober
	for _, n := range probed {
		probes = append(probes, startProber(t, n, probeKeys, 5*time.Millisecond))
	}
	w.start()
	defer w.halt() // if a Fatal ends the test early

	for i := range kills {
		sleepUntil(w.t0.Add(time.Duration(2*i+1) * time.Second))
		l := g.WaitLeader(10 * time.Second)
		l.Kill()
		killed := time.Now()
		time.Sleep(700 * time.Millisecond)
		l.Start()
		l.WaitReady(cluster.DefaultReadyTimeout)
		t.Logf("kill %d: killed the leader %s at %v, back %v later", i+1, l.Name, killed.Sub(w.t0).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	}
	w.wait()
	w.logSummary(t)

	tr := finalTruth(t, w, g.Members[0])
	final := tr.final()
	took := waitAllApplied(t, all, final, 30*time.Second)
	t.Logf("all %d nodes at index %d %v after the writes ended", len(all), final, took.Round(time.Millisecond))
	if !watch.waitUntil(15*time.Second, reached(final)) {
		evs, err := watch.snapshot()
		t.Errorf("%s: did not reach %d within 15 s; %d events, last %s, err %v", watch.desc, final, len(evs), lastEvent(evs), err)
	}
	evs, err := watch.stop()
	if err != nil {
		t.Errorf("%s ended by itself across the leader kills: %v", watch.desc, err)
	}
	checkStream(t, seed, watch.desc+" across the leader kills", evs, tr.entries)
	for _, m := range g.Members[1:] {
		checkSameLog(t, tr, newClient(t, m))
	}
	checkSameLog(t, tr, newClient(t, r2))

	want := digestTruth(tr, final)
	checkDigests(t, final, &want, all...)
	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, node := range []string{"replica", "root"} {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
	for i, p := range probes {
		ps := p.stopProbes()
		desc := fmt.Sprintf("reads at %s across the leader kills", probed[i].Name)
		t.Logf("%s: %s", desc, probeSummary(ps))
		checkProbes(t, desc, tr, ps)
	}
	hc := rawHTTP(t)
	for _, n := range []*cluster.Node{r1, r2, px1, px2} {
		t.Logf("%s", describeNode(hc, n))
	}
}
