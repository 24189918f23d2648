package tests

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// keySpace returns the keys of the random workloads: 200 keys in groups
// and subgroups that share prefixes ("a/3/k7"), one key that is a prefix of
// another, and a few keys with bytes that need escaping in URLs.
func keySpace() []string {
	var ks []string
	for _, g := range []string{"a", "b", "c", "d"} {
		for s := range 5 {
			for k := range 10 {
				ks = append(ks, fmt.Sprintf("%s/%d/k%d", g, s, k))
			}
		}
	}
	return append(ks, "a/0/k1/sub", "e/ü/1", "e/sp ace", "e/pct%2F", "e/q?x=1&y", "e/#frag", "e/../x")
}

// outcome is what a client learned of a write.
type outcome int

const (
	acked    outcome = iota // 200 with an index
	rejected                // 4xx: certainly not committed
	unknown                 // transport error, 5xx, timeout: may or may not have committed
)

func (o outcome) String() string {
	return [...]string{"acked", "rejected", "unknown"}[o]
}

// writeRec is one write a workload sent to the root.
type writeRec struct {
	worker     string
	kind       string // put, delete, delete_prefix, txn, cas, ryw
	batch      argent.Batch
	start, end time.Time
	index      argent.Index // when acked
	outcome    outcome
	err        error
}

// readRec is one successful read a workload made.
type readRec struct {
	node       string // "replica", "root" or the name of a node of readAt
	worker     string
	kind       string // get, mget, scan
	keys       []string
	prefix     string
	after      string
	limit      int // 0: the node's default
	minIndex   argent.Index
	start, end time.Time
	s          argent.Index // Argent-Index / index of the answer
	items      []client.Item
	next       string
}

// workloadConfig sizes a workload.
type workloadConfig struct {
	writers, readers, rywReaders, rootReaders int
	duration                                  time.Duration
	maxOps                                    int // per worker
}

// workload runs random writes at the root and reads at a replica (and
// optionally the root), and records everything for the checks.
type workload struct {
	seed    uint64
	keys    []string
	root    *client.Client // writes go here, unless writeTo is set
	replica *client.Client // reads
	// writeTo, when set, are the members of a root group: each write goes
	// to one of them at random, and root is only read.
	writeTo []*client.Client
	// readAt, when set, replaces replica: each read of the readers and
	// read-your-writes readers goes to one of these nodes at random and is
	// recorded under its name, so each is checked on its own (monotonic
	// reads hold per node, not across nodes).
	readAt []readTarget
	t0     time.Time
	cfg    workloadConfig
	stop   atomic.Bool

	valSeq   atomic.Uint64
	maxAcked atomic.Uint64

	mu struct {
		sync.Mutex
		writes    []*writeRec
		reads     map[string][]*readRec
		readErrs  map[string]*errSample
		writeErrs errSample
		problems  []string // violations seen while running
	}
	wg sync.WaitGroup
}

func newWorkload(seed uint64, root, replica *client.Client, cfg workloadConfig) *workload {
	w := &workload{seed: seed, keys: keySpace(), root: root, replica: replica, cfg: cfg}
	w.mu.reads = map[string][]*readRec{}
	w.mu.readErrs = map[string]*errSample{"replica": {}, "root": {}}
	return w
}

// readTarget is a node the reads of a workload may go to, and the name its
// reads are recorded under.
type readTarget struct {
	node string
	c    *client.Client
}

// newSpreadWorkload returns a workload whose reads (but the root readers')
// are spread over several nodes, each checked under its own name.
func newSpreadWorkload(seed uint64, root *client.Client, at []readTarget, cfg workloadConfig) *workload {
	w := newWorkload(seed, root, nil, cfg)
	w.readAt = at
	for _, t := range at {
		w.mu.readErrs[t.node] = &errSample{}
	}
	return w
}

// pickReader returns the node a reader's next read goes to: the replica,
// or one of readAt at random.
func (w *workload) pickReader(rng *rand.Rand) (string, *client.Client) {
	if len(w.readAt) == 0 {
		return "replica", w.replica
	}
	t := w.readAt[rng.IntN(len(w.readAt))]
	return t.node, t.c
}

// start starts the workers; they run until cfg.duration has passed, each
// has done cfg.maxOps operations, or Stop.
func (w *workload) start() {
	w.t0 = time.Now()
	deadline := w.t0.Add(w.cfg.duration)
	id := 0
	spawn := func(f func(name string, rng *rand.Rand, deadline time.Time)) func(string) {
		return func(name string) {
			rng := newRand(w.seed, id)
			id++
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				f(name, rng, deadline)
			}()
		}
	}
	for i := range w.cfg.writers {
		spawn(w.writer)(fmt.Sprintf("writer-%d", i))
	}
	for i := range w.cfg.readers {
		spawn(func(name string, rng *rand.Rand, deadline time.Time) {
			w.reader(name, w.pickReader, rng, deadline)
		})(fmt.Sprintf("reader-%d", i))
	}
	for i := range w.cfg.rootReaders {
		spawn(func(name string, rng *rand.Rand, deadline time.Time) {
			w.reader(name, func(*rand.Rand) (string, *client.Client) { return "root", w.root }, rng, deadline)
		})(fmt.Sprintf("root-reader-%d", i))
	}
	for i := range w.cfg.rywReaders {
		spawn(w.rywReader)(fmt.Sprintf("ryw-%d", i))
	}
}

// wait waits for every worker to end.
func (w *workload) wait() { w.wg.Wait() }

// halt stops the workers and waits for them to end: defer it where a
// Fatal may end the test early, so that no worker writes while the
// test's cleanups stop the nodes.
func (w *workload) halt() {
	w.stop.Store(true)
	w.wg.Wait()
}

func (w *workload) running(n int, deadline time.Time) bool {
	return n < w.cfg.maxOps && time.Now().Before(deadline) && !w.stop.Load()
}

func (w *workload) randKey(rng *rand.Rand) string { return w.keys[rng.IntN(len(w.keys))] }

// randPrefix returns a prefix of a random key at least minLen bytes long
// (or the whole key if it is shorter).
func (w *workload) randPrefix(rng *rand.Rand, minLen int) string {
	k := w.randKey(rng)
	if len(k) <= minLen {
		return k
	}
	n := minLen + rng.IntN(len(k)-minLen+1)
	for n < len(k) && !utf8Start(k[n]) {
		n++ // do not cut a UTF-8 sequence
	}
	return k[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// value returns a value no other write of the process uses.
func (w *workload) value(rng *rand.Rand) []byte {
	v := fmt.Sprintf("v%d.", w.valSeq.Add(1))
	n := rng.IntN(48)
	if rng.IntN(50) == 0 {
		n = 4096
	}
	b := make([]byte, len(v)+n)
	copy(b, v)
	for i := len(v); i < len(b); i++ {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return b
}

func (w *workload) noteAcked(i argent.Index) {
	for {
		cur := w.maxAcked.Load()
		if uint64(i) <= cur || w.maxAcked.CompareAndSwap(cur, uint64(i)) {
			return
		}
	}
}

func (w *workload) problemf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.mu.problems) < 50 {
		w.mu.problems = append(w.mu.problems, fmt.Sprintf(format, args...))
	}
}

// randomBatch returns a random batch that needs no read first, and its kind.
func (w *workload) randomBatch(rng *rand.Rand) (string, argent.Batch) {
	p := rng.IntN(85)
	switch {
	case p < 40:
		return "put", argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(w.randKey(rng)), Value: w.value(rng)}}}
	case p < 55:
		return "delete", argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte(w.randKey(rng))}}}
	case p < 60:
		return "delete_prefix", argent.Batch{Ops: []argent.Op{w.deletePrefixOp(rng)}}
	default:
		n := 2 + rng.IntN(5)
		var b argent.Batch
		for range n {
			switch q := rng.IntN(10); {
			case q < 7:
				b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(w.randKey(rng)), Value: w.value(rng)})
			case q < 9:
				b.Ops = append(b.Ops, argent.Op{Type: argent.OpDelete, Key: []byte(w.randKey(rng))})
			default:
				b.Ops = append(b.Ops, w.deletePrefixOp(rng))
			}
		}
		return "txn", b
	}
}

// deletePrefixOp deletes a subgroup ("a/3" or longer) mostly, and rarely a
// whole group ("b/").
func (w *workload) deletePrefixOp(rng *rand.Rand) argent.Op {
	p := w.randPrefix(rng, 3)
	if rng.IntN(20) == 0 {
		p = w.randKey(rng)[:2]
	}
	return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)}
}

// send sends b as the kind says and fills rec.
func (w *workload) send(rec *writeRec, rng *rand.Rand) {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	c := w.root
	if len(w.writeTo) > 0 {
		c = w.writeTo[rng.IntN(len(w.writeTo))]
	}
	rec.start = time.Now()
	switch rec.kind {
	case "put", "ryw":
		op := rec.batch.Ops[0]
		rec.index, rec.err = c.Put(ctx, op.Key, op.Value)
	case "delete":
		rec.index, rec.err = c.Delete(ctx, rec.batch.Ops[0].Key)
	default:
		rec.index, rec.err = c.Txn(ctx, rec.batch)
	}
	rec.end = time.Now()
	switch {
	case rec.err == nil:
		rec.outcome = acked
		w.noteAcked(rec.index)
	case definiteFailure(rec.err):
		rec.outcome = rejected
		full := statusOf(rec.err) == http.StatusInsufficientStorage // a fault the test injects
		if !full && (rec.kind != "cas" || !errors.Is(rec.err, argent.ErrConditionFailed)) {
			w.problemf("%s: %s %s rejected: %v", rec.worker, rec.kind, fmtOps(rec.batch.Ops), rec.err)
		}
	default:
		rec.outcome = unknown
	}
	w.mu.Lock()
	w.mu.writes = append(w.mu.writes, rec)
	switch {
	case rec.outcome == unknown:
		w.mu.writeErrs.add("unknown", rec.err)
	case statusOf(rec.err) == http.StatusInsufficientStorage:
		w.mu.writeErrs.add("insufficient_storage", rec.err)
	}
	w.mu.Unlock()
}

func (w *workload) writer(name string, rng *rand.Rand, deadline time.Time) {
	for n := 0; w.running(n, deadline); n++ {
		rec := &writeRec{worker: name}
		if rng.IntN(100) < 15 {
			if !w.casBatch(rec, rng) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		} else {
			rec.kind, rec.batch = w.randomBatch(rng)
		}
		w.send(rec, rng)
		if rec.outcome == unknown || statusOf(rec.err) == http.StatusInsufficientStorage {
			time.Sleep(20 * time.Millisecond) // the root may be down, or its disk full
		}
	}
}

// casBatch makes a conditional txn on a key's mod index as read at the root
// (sometimes a wrong one, to see it refused).
func (w *workload) casBatch(rec *writeRec, rng *rand.Rand) bool {
	k := []byte(w.randKey(rng))
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	v, err := w.root.Get(ctx, k, client.ReadOptions{})
	if err != nil && !errors.Is(err, argent.ErrNotFound) {
		return false
	}
	mod := v.ModIndex
	if rng.IntN(5) == 0 {
		mod += argent.Index(1 + rng.IntN(3))
	}
	rec.kind = "cas"
	rec.batch = argent.Batch{
		Conditions: []argent.Condition{{Key: k, ModIndex: mod}},
		Ops:        []argent.Op{{Type: argent.OpPut, Key: k, Value: w.value(rng)}},
	}
	if rng.IntN(2) == 0 {
		rec.batch.Ops = append(rec.batch.Ops, argent.Op{Type: argent.OpPut, Key: []byte(w.randKey(rng)), Value: w.value(rng)})
	}
	return true
}

// reader reads until the workload ends, each read at the node pick gives.
func (w *workload) reader(name string, pick func(*rand.Rand) (string, *client.Client), rng *rand.Rand, deadline time.Time) {
	for n := 0; w.running(n, deadline); n++ {
		node, c := pick(rng)
		var minIdx argent.Index
		if rng.IntN(4) == 0 {
			minIdx = argent.Index(w.maxAcked.Load())
		}
		if w.readOnce(name, node, c, rng, minIdx, "") == nil {
			time.Sleep(10 * time.Millisecond) // the node may be down
		}
	}
}

// rywReader writes at the root and reads the key back at the replica with
// min_index set to the write's index.
func (w *workload) rywReader(name string, rng *rand.Rand, deadline time.Time) {
	for n := 0; w.running(n, deadline); n++ {
		k := w.randKey(rng)
		rec := &writeRec{worker: name, kind: "ryw", batch: argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: w.value(rng)}}}}
		w.send(rec, rng)
		if rec.outcome != acked {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		node, c := w.pickReader(rng)
		r := w.readOnce(name, node, c, rng, rec.index, k)
		if r == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if r.s < rec.index {
			w.problemf("read-your-writes: put %q at index %d, then %s", k, rec.index, w.fmtRead(r))
		}
	}
}

// readOnce makes one random read (a scan may take several pages, each
// recorded) at c and returns its record, or nil if it failed. A non-empty
// focus key is part of the read.
func (w *workload) readOnce(name, node string, c *client.Client, rng *rand.Rand, minIdx argent.Index, focus string) *readRec {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	opts := client.ReadOptions{MinIndex: minIdx}
	rec := &readRec{node: node, worker: name, minIndex: minIdx}
	var err error
	switch p := rng.IntN(10); {
	case p < 4:
		k := focus
		if k == "" {
			k = w.randKey(rng)
		}
		rec.kind, rec.keys = "get", []string{k}
		rec.start = time.Now()
		var v client.Value
		v, err = c.Get(ctx, []byte(k), opts)
		rec.end = time.Now()
		rec.s = v.Index
		switch {
		case err == nil:
			rec.items = []client.Item{{Key: k, Value: v.Value, ModIndex: v.ModIndex}}
		case errors.Is(err, argent.ErrNotFound):
			err = nil
			rec.items = []client.Item{{Key: k, Absent: true}}
			if v.ModIndex != 0 {
				w.problemf("%s: 404 for %q carries Argent-Mod-Index %d", name, k, v.ModIndex)
			}
		}
	case p < 7:
		n := 10 + rng.IntN(41)
		keys := make([][]byte, n)
		rec.kind, rec.keys = "mget", make([]string, n)
		for i := range keys {
			rec.keys[i] = w.randKey(rng)
			if i == 0 && focus != "" {
				rec.keys[i] = focus
			}
			keys[i] = []byte(rec.keys[i])
		}
		rec.start = time.Now()
		rec.s, rec.items, err = c.MGet(ctx, keys, opts)
		rec.end = time.Now()
	default:
		prefix := w.randPrefix(rng, 0)
		if focus != "" {
			prefix = focus[:strings.LastIndexByte(focus, '/')+1]
		}
		limit := 1 + rng.IntN(30)
		if rng.IntN(10) == 0 {
			limit = 0
		}
		var first *readRec
		after := ""
		for page := 0; page < 4; page++ {
			r := &readRec{node: node, worker: name, kind: "scan", prefix: prefix, after: after, limit: limit, minIndex: opts.MinIndex}
			r.start = time.Now()
			var pg client.Page
			pg, err = c.Scan(ctx, []byte(prefix), []byte(after), limit, opts)
			r.end = time.Now()
			if err != nil {
				break
			}
			r.s, r.items, r.next = pg.Index, pg.Items, string(pg.Next)
			w.addRead(r)
			if first == nil {
				first = r
			}
			if r.next == "" {
				break
			}
			after = r.next
			opts.MinIndex = max(opts.MinIndex, pg.Index)
		}
		if first != nil {
			return first
		}
	}
	if err != nil {
		w.mu.Lock()
		class := "transport"
		switch {
		case errors.Is(err, argent.ErrTimeout):
			class = "timeout"
		case statusOf(err) != 0:
			class = fmt.Sprint(statusOf(err))
		}
		w.mu.readErrs[node].add(class, err)
		w.mu.Unlock()
		return nil
	}
	w.addRead(rec)
	return rec
}

func (w *workload) addRead(r *readRec) {
	w.mu.Lock()
	w.mu.reads[r.node] = append(w.mu.reads[r.node], r)
	w.mu.Unlock()
}

// fmtRead describes a read for failure messages.
func (w *workload) fmtRead(r *readRec) string {
	var what string
	switch r.kind {
	case "get":
		what = fmt.Sprintf("get %q", r.keys[0])
	case "mget":
		what = fmt.Sprintf("mget of %d keys", len(r.keys))
	case "scan":
		what = fmt.Sprintf("scan prefix=%q after=%q limit=%d", r.prefix, r.after, r.limit)
	}
	s := fmt.Sprintf("%s by %s at the %s [%v..%v after start] min_index=%d -> S=%d", what, r.worker, r.node,
		r.start.Sub(w.t0).Round(time.Microsecond), r.end.Sub(w.t0).Round(time.Microsecond), r.minIndex, r.s)
	if r.kind == "scan" {
		s += fmt.Sprintf(" next=%q", r.next)
	}
	if r.kind != "mget" {
		s += " " + fmtItems(r.items)
	}
	return s
}

// maxReadS returns the largest index any read was answered from.
func (w *workload) maxReadS() argent.Index {
	w.mu.Lock()
	defer w.mu.Unlock()
	var m argent.Index
	for _, rs := range w.mu.reads {
		for _, r := range rs {
			m = max(m, r.s)
		}
	}
	return m
}

// reporter caps the violations a check reports one by one.
type reporter struct {
	t    testing.TB
	what string
	seed uint64
	n    int
}

const maxReported = 10

func (r *reporter) errorf(format string, args ...any) {
	r.t.Helper()
	r.n++
	if r.n <= maxReported {
		r.t.Errorf("%s (seed %d): %s", r.what, r.seed, fmt.Sprintf(format, args...))
	}
}

func (r *reporter) done() {
	r.t.Helper()
	if r.n > maxReported {
		r.t.Errorf("%s (seed %d): %d violations in all, first %d shown", r.what, r.seed, r.n, maxReported)
	}
}

// logSummary logs what the workload did.
func (w *workload) logSummary(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var counts [3]int
	kinds := map[string]int{}
	for _, wr := range w.mu.writes {
		counts[wr.outcome]++
		kinds[wr.kind]++
	}
	t.Logf("writes: %d acked, %d rejected, %d unknown; by kind %v; errors: %v",
		counts[acked], counts[rejected], counts[unknown], kinds, &w.mu.writeErrs)
	for node, rs := range w.mu.reads {
		byKind := map[string]int{}
		for _, r := range rs {
			byKind[r.kind]++
		}
		t.Logf("reads at the %s: %d ok %v; errors: %v", node, len(rs), byKind, w.mu.readErrs[node])
	}
}

// checkProblems fails t with the violations seen while the workload ran.
func (w *workload) checkProblems(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.mu.problems {
		t.Errorf("seed %d: %s", w.seed, p)
	}
}

// checkWrites checks the writes against the root's log. An entry may hold
// several client batches (a merged batch, docs/CONTRACT.md section 1): every
// entry's ops must be exactly a concatenation of whole client batches, in
// the order the log shows, made of every batch acknowledged with its index
// and of batches whose outcome the client did not learn, each of which
// commits at most once; each batch's conditions held against the state the
// batches before it left (see entrymatch_test.go). So every acknowledged
// write is whole at its index, no rejected write committed, and the log
// holds nothing no client sent.
func (w *workload) checkWrites(t testing.TB, tr *truth) {
	t.Helper()
	rep := &reporter{t: t, what: "writes vs the root's log", seed: w.seed}
	defer rep.done()
	w.mu.Lock()
	writes := append([]*writeRec(nil), w.mu.writes...)
	w.mu.Unlock()
	ackedAt := map[argent.Index][]*writeRec{}
	var unknowns []*writeRec
	for _, wr := range writes {
		switch wr.outcome {
		case acked:
			if wr.index == 0 || wr.index > tr.final() {
				rep.errorf("%s: acknowledged %s %s at index %d, but the root's log ends at %d: an acknowledged write was lost",
					wr.worker, wr.kind, fmtOps(wr.batch.Ops), wr.index, tr.final())
				continue
			}
			ackedAt[wr.index] = append(ackedAt[wr.index], wr)
		case unknown:
			unknowns = append(unknowns, wr)
		}
	}
	pool := newWritePool(unknowns)
	diag := &entryDiagnosis{rep: rep, writes: writes, pool: pool}
	committedUnknown, merged := 0, 0
	for _, e := range tr.entries {
		must := ackedAt[e.Index]
		order, ok, decided := matchEntry(tr, e, must, pool, true)
		if !ok && decided {
			// The ops split, but not with every condition holding.
			if order, ok, decided = matchEntry(tr, e, must, pool, false); ok {
				reportConditions(rep, tr, e, order)
			}
		}
		switch {
		case !decided:
			rep.errorf("index %d holds %d ops; could not tell in %d steps how they split into client batches: %s",
				e.Index, len(e.Ops), maxMatchSteps, fmtOps(e.Ops))
			continue
		case !ok:
			diag.entry(e, must)
			continue
		}
		for _, wr := range order {
			if wr.outcome == unknown {
				pool.take(wr)
				committedUnknown++
			}
		}
		if len(order) > 1 {
			merged++
		}
	}
	t.Logf("unacknowledged writes with unknown outcome: %d, of which %d committed; entries merging several client batches: %d",
		len(unknowns), committedUnknown, merged)
}

// checkReads checks every read recorded at node against the truth at its
// index S, and that no min_index read was answered from an older state.
func (w *workload) checkReads(t testing.TB, tr *truth, node string) {
	t.Helper()
	rep := &reporter{t: t, what: "reads at the " + node, seed: w.seed}
	defer rep.done()
	w.mu.Lock()
	reads := append([]*readRec(nil), w.mu.reads[node]...)
	w.mu.Unlock()
	for _, r := range reads {
		if r.s < r.minIndex {
			rep.errorf("answered from S=%d < min_index=%d: %s", r.s, r.minIndex, w.fmtRead(r))
			continue
		}
		if r.s > tr.final() {
			rep.errorf("answered from S=%d beyond the end of the root's log (%d): %s", r.s, tr.final(), w.fmtRead(r))
			continue
		}
		switch r.kind {
		case "get", "mget":
			if len(r.items) != len(r.keys) {
				rep.errorf("%d items for %d keys: %s", len(r.items), len(r.keys), w.fmtRead(r))
				continue
			}
			for i, k := range r.keys {
				want := tr.item(k, r.s)
				got := r.items[i]
				if got.Key != k || !itemEqual(got, want) {
					rep.errorf("key %d of %d: got %s, want %s at S=%d: %s\n  %s",
						i, len(r.keys), fmtItem(got), fmtItem(want), r.s, w.fmtRead(r), tr.describe(k, r.s, got.Value))
					break
				}
			}
		case "scan":
			w.checkScan(rep, tr, r)
		}
	}
}

func (w *workload) checkScan(rep *reporter, tr *truth, r *readRec) {
	limit := r.limit
	if limit == 0 {
		limit = len(r.items) // the node's default; judge the page by its length
	}
	want, more := tr.scan(r.prefix, r.after, limit, r.s)
	if len(r.items) != len(want) {
		rep.errorf("page has %d items, want %s at S=%d: %s", len(r.items), fmtItems(want), r.s, w.fmtRead(r))
		return
	}
	for i := range want {
		if !itemEqual(r.items[i], want[i]) {
			k := min(want[i].Key, r.items[i].Key)
			rep.errorf("item %d: got %s, want %s at S=%d: %s\n  %s", i, fmtItem(r.items[i]), fmtItem(want[i]), r.s, w.fmtRead(r), tr.describe(k, r.s, r.items[i].Value))
			return
		}
	}
	// next must lead the following page to the rest of the keys.
	rest, _ := tr.scan(r.prefix, lastKey(r.items, r.after), 1, r.s)
	switch {
	case more && r.next == "":
		rep.errorf("page says it is the last (no next), but %s follows at S=%d: %s", fmtItems(rest), r.s, w.fmtRead(r))
	case r.next != "" && len(r.items) > 0 && r.next < r.items[len(r.items)-1].Key:
		rep.errorf("next %q is before the page's last key: %s", r.next, w.fmtRead(r))
	case r.next != "" && len(rest) > 0 && r.next >= rest[0].Key:
		rep.errorf("next %q skips key %q present at S=%d: %s", r.next, rest[0].Key, r.s, w.fmtRead(r))
	}
}

func lastKey(items []client.Item, after string) string {
	if len(items) == 0 {
		return after
	}
	return items[len(items)-1].Key
}

// checkMonotonic checks that reads at one node ordered in real time never go
// back: r1.end < r2.start implies S(r2) >= S(r1).
func (w *workload) checkMonotonic(t testing.TB, node string) {
	t.Helper()
	rep := &reporter{t: t, what: "monotonic reads at the " + node, seed: w.seed}
	defer rep.done()
	w.mu.Lock()
	byStart := append([]*readRec(nil), w.mu.reads[node]...)
	w.mu.Unlock()
	byEnd := append([]*readRec(nil), byStart...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].start.Before(byStart[j].start) })
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].end.Before(byEnd[j].end) })
	var top *readRec // the read with the highest S among those that ended
	j := 0
	for _, r := range byStart {
		for ; j < len(byEnd) && byEnd[j].end.Before(r.start); j++ {
			if top == nil || byEnd[j].s > top.s {
				top = byEnd[j]
			}
		}
		if top != nil && r.s < top.s {
			rep.errorf("S went back from %d to %d:\n  earlier: %s\n  later:   %s", top.s, r.s, w.fmtRead(top), w.fmtRead(r))
		}
	}
}

// readsAround returns the reads at node that ended before t1 (before) and
// those that started after t2 (after).
func (w *workload) readsAround(node string, t1, t2 time.Time) (before, after []*readRec) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.mu.reads[node] {
		if r.end.Before(t1) {
			before = append(before, r)
		}
		if r.start.After(t2) {
			after = append(after, r)
		}
	}
	return before, after
}
