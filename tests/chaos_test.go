package tests

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

var chaosFlag = flag.Duration("chaos", 20*time.Second, "how long TestChaos injects faults (make chaos: DURATION)")

// chaosTree is the whole tree under chaos: a three-member root group with
// a fault proxy on every link between members (the third on a small
// disk); two replicas, each
// following the members through links of its own; a relay of DC dc1
// following the replicas through links; three proxies of dc1 following
// the relay through links (and a replica as a second upstream). Every
// link can be cut, stalled, delayed or made to flip bits.
type chaosTree struct {
	g        *cluster.Group
	replicas []*cluster.Node
	relay    *cluster.Node
	proxies  []*cluster.Node
	links    []chaosLink
	disks    []tmpfsDisk
}

// smallDisk mounts a tmpfs of size bytes on n's data directory (before n
// starts), for the full-disk fault. It needs root; without, it logs why
// and the schedule has no full-disk faults on n.
func (ct *chaosTree) smallDisk(t *testing.T, n *cluster.Node, size int64) bool {
	t.Helper()
	d, err := mountTmpfs(t, n, size)
	if err != nil {
		t.Logf("no full-disk faults on %s: %v", n.Name, err)
		return false
	}
	ct.disks = append(ct.disks, d)
	return true
}

// chaosLink is a fault proxy between a child and one of its upstreams.
type chaosLink struct {
	name string // "child->upstream"
	p    *faultproxy.Proxy
}

// The full-disk fault's tmpfs and the floor of its nodes: filled, a disk
// keeps half the floor free, so the node is below its floor but Pebble
// still has room for what it writes while it waits. A group member's disk
// is larger: its two Pebble databases preallocate about 110 MiB of
// write-ahead log, and up to as much again once they moved on to new
// logs, which on the smaller disk takes it below the floor with no filler.
const (
	chaosDiskSize       = 256 << 20
	chaosMemberDiskSize = 512 << 20
	chaosDiskFloor      = 48 << 20
)

func startChaosTree(t *testing.T, seed uint64) *chaosTree {
	t.Helper()
	ct := &chaosTree{g: cluster.NewGroup(t, 3, cluster.GroupOptions{Proxies: true})}
	if m := ct.g.Members[2]; ct.smallDisk(t, m, chaosMemberDiskSize) {
		m.Args = append(m.Args, "--min-free-disk", fmt.Sprint(chaosDiskFloor))
	}
	for _, m := range ct.g.Members {
		m.Start()
	}
	for _, m := range ct.g.Members {
		m.WaitReady(cluster.DefaultReadyTimeout)
	}
	ct.g.WaitLeader(cluster.DefaultReadyTimeout)
	link := func(child string, up *cluster.Node) string {
		p := faultproxy.Start(t, up.Addr)
		p.Seed(seed + uint64(len(ct.links)))
		ct.links = append(ct.links, chaosLink{name: child + "->" + up.Name, p: p})
		return p.Addr()
	}
	for i := range 2 {
		var ups []string
		for j := range ct.g.Members {
			m := ct.g.Members[(i+j)%len(ct.g.Members)]
			ups = append(ups, link(fmt.Sprintf("replica%d", i+1), m))
		}
		r := cluster.NewNode(t, "replica", "--upstream", strings.Join(ups, ","), "--stall-timeout", "3s")
		if i == 1 && ct.smallDisk(t, r, chaosDiskSize) {
			r.Args = append(r.Args, "--min-free-disk", fmt.Sprint(chaosDiskFloor))
		}
		r.Start()
		ct.replicas = append(ct.replicas, r)
	}
	for _, r := range ct.replicas {
		r.WaitReady(cluster.DefaultReadyTimeout)
	}
	ct.relay = cluster.NewNode(t, "relay", "--upstream", link("relay", ct.replicas[0])+","+link("relay", ct.replicas[1]),
		"--dc", dcName, "--stall-timeout", "3s")
	ct.relay.Start()
	ct.relay.WaitReady(cluster.DefaultReadyTimeout)
	var addrs []string
	for i := range 3 {
		name := fmt.Sprintf("proxy%d", i+1)
		px := cluster.NewNode(t, "proxy", "--upstream", link(name, ct.relay)+","+link(name, ct.replicas[i%2]),
			"--dc", dcName, "--cache-size", "64KiB", "--window-bytes", "8KiB", "--l2-timeout", "200ms",
			"--miss-wait", "5s", "--stall-timeout", "3s")
		if i == 2 && ct.smallDisk(t, px, chaosDiskSize) {
			px.Args = append(px.Args, "--free-disk-floor", fmt.Sprint(chaosDiskFloor))
		}
		ct.proxies = append(ct.proxies, px)
		addrs = append(addrs, px.Addr)
	}
	for _, px := range ct.proxies {
		px.Args = append(px.Args, "--dc-peers", strings.Join(addrs, ","))
		px.Start()
	}
	for _, px := range ct.proxies {
		px.WaitReady(cluster.DefaultReadyTimeout)
		px.WaitFirstState(cluster.DefaultReadyTimeout)
	}
	dumpOnFailure(t, ct.nodes()...)
	return ct
}

func (ct *chaosTree) nodes() []*cluster.Node {
	out := slices.Clone(ct.g.Members)
	out = append(out, ct.replicas...)
	out = append(out, ct.relay)
	return append(out, ct.proxies...)
}

// chaosFault is one fault of a schedule: what it does to whom, for how
// long, and how it is undone.
type chaosFault struct {
	kind   string
	target string
	undo   func()
	hold   time.Duration
}

// nextFault picks a fault at random: kill -9 or SIGSTOP of any node, a
// member isolated from the others, a full disk at a group member, a replica
// or a proxy, or
// a link cut, stalled, delayed or made to flip bits. Faults run one at a time, so a majority of the group is up
// and connected whenever no fault runs on it.
func (ct *chaosTree) nextFault(t *testing.T, rng *rand.Rand) chaosFault {
	hold := time.Duration(300+rng.IntN(1700)) * time.Millisecond
	// The first replica carries the run's watch, which must span the run
	// in one stream: its process is spared (its links are not).
	nodes := slices.DeleteFunc(ct.nodes(), func(n *cluster.Node) bool { return n == ct.replicas[0] })
	switch k := rng.IntN(100); {
	case k < 22:
		n := nodes[rng.IntN(len(nodes))]
		n.Kill()
		return chaosFault{kind: "kill -9", target: n.Name, hold: hold, undo: func() {
			n.Start()
			n.WaitReady(cluster.DefaultReadyTimeout)
		}}
	case k < 40:
		n := nodes[rng.IntN(len(nodes))]
		n.Pause()
		return chaosFault{kind: "sigstop", target: n.Name, hold: hold, undo: n.Resume}
	case k < 52:
		m := ct.g.Members[rng.IntN(len(ct.g.Members))]
		ct.g.Isolate(m)
		return chaosFault{kind: "partition member", target: m.Name, hold: hold, undo: func() { ct.g.Heal(m) }}
	case k < 60 && len(ct.disks) > 0:
		d := ct.disks[rng.IntN(len(ct.disks))]
		undo, err := d.fill(chaosDiskFloor / 2)
		if err != nil {
			t.Fatalf("fill the disk of %s: %v", d.node.Name, err)
		}
		return chaosFault{kind: "full disk", target: d.node.Name, hold: 2 * hold, undo: undo}
	}
	l := ct.links[rng.IntN(len(ct.links))]
	switch k := rng.IntN(4); k {
	case 0:
		l.p.Cut()
		return chaosFault{kind: "cut link", target: l.name, hold: hold, undo: l.p.Restore}
	case 1:
		l.p.Blackhole()
		return chaosFault{kind: "stall link", target: l.name, hold: hold, undo: l.p.Restore}
	case 2:
		d := time.Duration(20+rng.IntN(180)) * time.Millisecond
		l.p.SetDelay(d)
		return chaosFault{kind: "delay link", target: fmt.Sprintf("%s (%v)", l.name, d), hold: 2 * hold, undo: func() { l.p.SetDelay(0) }}
	default:
		l.p.SetCorruptRate(0.05)
		return chaosFault{kind: "flip bits", target: l.name, hold: 2 * hold, undo: func() { l.p.SetCorruptRate(0) }}
	}
}

// TestChaos runs a seeded, random schedule of faults (kill -9, SIGSTOP,
// a member partitioned from the group, a full disk (a small tmpfs) at a
// group member, a replica and a proxy, links cut, stalled, delayed or flipping bits) across every role of a tree, one fault at a time, for
// -chaos (20 s by default; `make chaos` runs it for DURATION), while
// writers go to the group's members and readers (gets, mgets, scans, with
// and without min_index) to the replicas and proxies, with a watch at a
// replica. Then every fault is undone and the whole run is checked:
// every acknowledged write in the log, every read equal to the truth at
// its index, reads monotonic at every node, the watch stream equal to the
// log, and every node at the same state. Rerun a schedule with -seed.
func TestChaos(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	rng := newRand(seed, 1<<20)
	ct := startChaosTree(t, seed)
	var targets []readTarget
	for _, n := range append(slices.Clone(ct.replicas), ct.proxies...) {
		targets = append(targets, readTarget{node: n.Name, c: newClient(t, n)})
	}
	mc := groupClients(t, ct.g)
	w := newSpreadWorkload(seed, mc[0], targets, workloadConfig{
		writers: 4, readers: 6, rywReaders: 2, rootReaders: 1,
		duration: *chaosFlag, maxOps: 1 << 22,
	})
	w.writeTo = mc
	watch := startWatch(t, newClient(t, ct.replicas[0]), "", 1)
	w.start()
	defer w.halt() // if a Fatal ends the test early

	kinds := map[string]int{}
	for n := 1; time.Until(w.t0.Add(*chaosFlag)) > 2*time.Second; n++ {
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		f := ct.nextFault(t, rng)
		start := time.Now()
		time.Sleep(f.hold)
		f.undo()
		kinds[f.kind]++
		t.Logf("fault %d at %v: %s of %s for %v, undone in %v", n, start.Sub(w.t0).Round(time.Millisecond), f.kind, f.target,
			f.hold, time.Since(start.Add(f.hold)).Round(time.Millisecond))
	}
	w.wait()
	w.logSummary(t)
	var summary []string
	for k, n := range kinds {
		summary = append(summary, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(summary)
	t.Logf("faults injected by kind: %s", strings.Join(summary, ", "))
	if len(kinds) == 0 {
		t.Fatalf("no fault was injected in %v", *chaosFlag)
	}

	all := ct.nodes()
	tr := finalTruth(t, w, ct.g.Members[0])
	final := tr.final()
	took := waitAllApplied(t, all, final, 60*time.Second)
	t.Logf("all %d nodes at index %d %v after the writes ended", len(all), final, took.Round(time.Millisecond))
	if !watch.waitUntil(15*time.Second, reached(final)) {
		evs, err := watch.snapshot()
		t.Errorf("%s: did not reach %d within 15 s; %d events, last %s, err %v", watch.desc, final, len(evs), lastEvent(evs), err)
	}
	evs, err := watch.stop()
	if err != nil {
		t.Logf("%s ended during the run: %v", watch.desc, err)
	}
	checkStream(t, seed, watch.desc+" under chaos", evs, tr.entries)
	want := digestTruth(tr, final)
	checkDigests(t, final, &want, slices.DeleteFunc(all, func(n *cluster.Node) bool { return n == ct.relay })...) // a relay holds no keys
	w.checkProblems(t)
	w.checkWrites(t, tr)
	for _, tg := range append([]readTarget{{node: "root"}}, targets...) {
		w.checkReads(t, tr, tg.node)
		w.checkMonotonic(t, tg.node)
	}
	var corrupted int64
	for _, l := range ct.links {
		corrupted += l.p.Stats().Corrupted
	}
	t.Logf("chunks damaged on links: %d", corrupted)
	if !t.Failed() {
		w.mu.Lock()
		nAcked := 0
		for _, wr := range w.mu.writes {
			if wr.outcome == acked {
				nAcked++
			}
		}
		w.mu.Unlock()
		t.Logf("chaos summary: %v of faults, %d faults; violations 0; acknowledged writes lost 0 of %d", *chaosFlag, faults(kinds), nAcked)
	}
}

func faults(kinds map[string]int) int {
	n := 0
	for _, k := range kinds {
		n += k
	}
	return n
}
