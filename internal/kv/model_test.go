package kv_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// opsGen draws one or two ops on the test key space; two ops are on one key
// (put then delete, or delete then put).
var opsGen = rapid.Custom(func(t *rapid.T) []argent.Op {
	key := []byte(rapid.SampledFrom(testKeys).Draw(t, "key"))
	val := []byte(rapid.SampledFrom([]string{"", "v1", "v2", "v3", "v4", "a longer value"}).Draw(t, "value"))
	put := argent.Op{Type: argent.OpPut, Key: key, Value: val}
	del := argent.Op{Type: argent.OpDelete, Key: key}
	switch rapid.IntRange(0, 6).Draw(t, "kind") {
	case 0, 1, 2:
		return []argent.Op{put}
	case 3:
		return []argent.Op{del}
	case 4:
		return []argent.Op{{Type: argent.OpDeletePrefix, Key: []byte(rapid.SampledFrom(testPrefixes).Draw(t, "prefix"))}}
	case 5:
		return []argent.Op{put, del}
	default:
		return []argent.Op{del, put}
	}
})

// batchGen draws the ops of one batch.
var batchGen = rapid.Custom(func(t *rapid.T) []argent.Op {
	var ops []argent.Op
	for _, part := range rapid.SliceOfN(opsGen, 1, 4).Draw(t, "parts") {
		ops = append(ops, part...)
	}
	return ops
})

// storeMachine drives a Store and a model with the same random actions.
type storeMachine struct {
	s     *kv.Store
	dir   string
	m     *model
	opts  *kv.Options
	clock *fakeClock
	page  int
	dirs  int // stores made so far, for unique directory names
}

// TestStore_Model runs random sequences of commits (in groups of entries per
// Writer), discarded Writers, trims under small time and byte windows,
// clock jumps, reopens and moves to a replica restored from a snapshot, and
// checks every read, at every index the store keeps, against the model.
func TestStore_Model(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clock := newFakeClock()
		opts := &kv.Options{
			FS:              vfs.NewMem(),
			Now:             clock.Now,
			HistoryDuration: rapid.SampledFrom([]time.Duration{5 * time.Second, 30 * time.Second, time.Hour}).Draw(rt, "historyDuration"),
			HistoryBytes:    rapid.SampledFrom([]int64{1 << 40, 150, 600}).Draw(rt, "historyBytes"),
			LogDuration:     rapid.SampledFrom([]time.Duration{5 * time.Second, 30 * time.Second, time.Hour}).Draw(rt, "logDuration"),
			LogBytes:        rapid.SampledFrom([]int64{1 << 40, 200, 800}).Draw(rt, "logBytes"),
		}
		s, err := kv.Open("db", opts)
		if err != nil {
			rt.Fatalf("Open: %v", err)
		}
		sm := &storeMachine{s: s, dir: "db", m: newModel(), opts: opts, clock: clock, page: rapid.IntRange(1, 3).Draw(rt, "page")}
		defer func() { _ = sm.s.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			// Three names for commit, so that histories grow long enough
			// for the windows to matter: actions are picked uniformly.
			"commit":  sm.commit,
			"commit2": sm.commit,
			"commit3": sm.commit,
			"discard": sm.discard,
			"trim":    sm.trim,
			"reopen":  sm.reopen,
			"advance": sm.advance,
			"restore": sm.restore,
			"":        sm.check,
		})
		checkStore(rt, sm.s, sm.m, sm.page)
	})
}

// commit appends 1..4 batches in one Writer and commits them, checking the
// Writer's view of mod indexes along the way.
func (sm *storeMachine) commit(t *rapid.T) {
	n := rapid.IntRange(1, 4).Draw(t, "entries")
	w := sm.s.NewWriter()
	defer w.Discard()
	for range n {
		ops := batchGen.Draw(t, "batch")
		now := sm.clock.Advance(time.Duration(rapid.IntRange(0, 3000).Draw(t, "advanceMs")) * time.Millisecond)
		if rapid.IntRange(0, 9).Draw(t, "skew") == 0 {
			now = now.Add(-10 * time.Second) // a clock going back: Append keeps times monotonic
		}
		want := sm.m.next(ops, now)
		if w.Next() != want.Index {
			t.Fatalf("Writer.Next = %d, want %d", w.Next(), want.Index)
		}
		e, err := w.Append(ops, now)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if e.Index != want.Index || e.Time != want.Time || e.Chain != want.Chain {
			t.Fatalf("Append = %d/%d/%x, want %d/%d/%x", e.Index, e.Time, e.Chain[:4], want.Index, want.Time, want.Chain[:4])
		}
		sm.m.add(e)
		for _, k := range testKeys {
			got, err := w.ModIndex([]byte(k))
			if want := sm.m.states[e.Index][k].mod; err != nil || got != want {
				t.Fatalf("Writer.ModIndex(%q) after entry %d = %d, %v; want %d", k, e.Index, got, err, want)
			}
		}
		// Readers do not see uncommitted entries.
		if sm.s.Applied() != e.Index-argent.Index(w.Len()) {
			t.Fatalf("Applied = %d while a Writer holds %d entries up to %d", sm.s.Applied(), w.Len(), e.Index)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatalf("second Commit succeeded")
	}
}

// discard appends entries and drops them.
func (sm *storeMachine) discard(t *rapid.T) {
	before := sm.s.State()
	w := sm.s.NewWriter()
	for range rapid.IntRange(0, 3).Draw(t, "entries") {
		if _, err := w.Append(batchGen.Draw(t, "batch"), sm.clock.Now()); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	w.Discard()
	w.Discard()
	if got := sm.s.State(); got != before {
		t.Fatalf("State after Discard = %+v, want %+v", got, before)
	}
}

func (sm *storeMachine) advance(t *rapid.T) {
	sm.clock.Advance(time.Duration(rapid.IntRange(0, 60).Draw(t, "advanceS")) * time.Second)
}

// trim runs Trim until it changes nothing and checks where the windows
// ended.
func (sm *storeMachine) trim(t *rapid.T) {
	s, m := sm.s, sm.m
	oldHorizon, oldFirst := s.Horizon(), s.LogFirst()
	now := sm.clock.Now()
	histCutoff := now.Add(-sm.opts.HistoryDuration).UnixNano()
	logCutoff := now.Add(-sm.opts.LogDuration).UnixNano()
	for i := 0; ; i++ {
		r, err := s.Trim()
		if err != nil {
			t.Fatalf("Trim: %v", err)
		}
		if !r.Progress() {
			break
		}
		if i > 10 {
			t.Fatalf("Trim keeps dropping: %+v", r)
		}
	}
	h, first := s.Horizon(), s.LogFirst()
	if h < oldHorizon || h > s.Applied() {
		t.Fatalf("Horizon moved from %d to %d with applied %d", oldHorizon, h, s.Applied())
	}
	// The horizon is at least the last index older than the history
	// window, and the history after it fits the byte budget.
	for i := m.applied(); i > h; i-- {
		if m.times[i] < histCutoff {
			t.Fatalf("Horizon = %d after Trim, but entry %d is older than the history window", h, i)
		}
	}
	if b := s.HistoryBytes(); b > uint64(sm.opts.HistoryBytes) {
		t.Fatalf("HistoryBytes = %d after Trim, over the budget of %d", b, sm.opts.HistoryBytes)
	}
	// The log window starts at the first entry inside the window whose
	// suffix fits the byte budget. The log never drops an entry of its
	// window, and keeps at most twice its budgets: it may wait for the
	// horizon before it drops what reads at the horizon still need.
	want := m.applied() + 1
	for i := oldFirst; i <= m.applied(); i++ {
		if m.times[i] >= logCutoff && m.logHeld(i) <= uint64(sm.opts.LogBytes) {
			want = i
			break
		}
	}
	if first < oldFirst || first > want {
		t.Fatalf("LogFirst after Trim = %d, want %d..%d (applied %d)", first, oldFirst, want, m.applied())
	}
	if first <= m.applied() {
		if held := m.logHeld(first); held > 2*uint64(sm.opts.LogBytes) {
			t.Fatalf("the log holds %d bytes from %d after Trim, over twice its budget of %d", held, first, sm.opts.LogBytes)
		}
		if m.times[first] < now.Add(-2*sm.opts.LogDuration).UnixNano() {
			t.Fatalf("the log holds entry %d, older than twice its window", first)
		}
	}
	if h+1 < first {
		t.Fatalf("Horizon %d below the log's first entry %d", h, first)
	}
	// With the log inside its budgets, only the history window moves the
	// horizon.
	if first == oldFirst && want == oldFirst {
		limit := max(oldHorizon, first-1)
		for i := m.applied(); i >= 1; i-- {
			if m.times[i] < histCutoff {
				limit = max(limit, i)
				break
			}
		}
		for i := argent.Index(0); i <= m.applied(); i++ {
			if m.logHeld(i+1) <= uint64(sm.opts.HistoryBytes) {
				limit = max(limit, i)
				break
			}
		}
		if h > limit {
			t.Fatalf("Horizon moved to %d, beyond the history window's %d", h, limit)
		}
	}
	checkStore(t, s, m, sm.page)
}

// reopen closes and opens the store and checks that nothing changed.
func (sm *storeMachine) reopen(t *rapid.T) {
	before := fmt.Sprintf("state %+v horizon %d logFirst %d histBytes %d logBytes %d dataset %s node %x",
		sm.s.State(), sm.s.Horizon(), sm.s.LogFirst(), sm.s.HistoryBytes(), sm.s.LogBytes(), sm.s.Dataset(), sm.s.NodeID())
	sm.s = reopen(t, sm.s, sm.dir, sm.opts)
	after := fmt.Sprintf("state %+v horizon %d logFirst %d histBytes %d logBytes %d dataset %s node %x",
		sm.s.State(), sm.s.Horizon(), sm.s.LogFirst(), sm.s.HistoryBytes(), sm.s.LogBytes(), sm.s.Dataset(), sm.s.NodeID())
	if before != after {
		t.Fatalf("reopen changed the store:\n before %s\n after  %s", before, after)
	}
	checkStore(t, sm.s, sm.m, sm.page)
}

// restore moves the machine to another store: one that followed the log up
// to some older index, then loaded a snapshot of the current store. The
// load may be cut (and the replica reopened), the source may move on, and
// the load then resumes from the source's newer state and replays the log.
func (sm *storeMachine) restore(t *rapid.T) {
	sm.dirs++
	dir := fmt.Sprint("replica", sm.dirs)
	r, err := kv.Open(dir, sm.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() {
		if r != sm.s {
			_ = r.Close()
		}
	}()
	if n := rapid.IntRange(0, int(sm.m.applied())).Draw(t, "replicaAt"); n > 0 {
		w := r.NewWriter()
		for i := range n {
			if err := w.AppendEntry(&sm.m.entries[i]); err != nil {
				w.Discard()
				t.Fatalf("AppendEntry %d: %v", i+1, err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	sn, err := sm.s.NewSnapshot()
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	base := sn.State
	rs, err := r.BeginRestore(sn.Dataset, sn.State)
	if err != nil {
		_ = sn.Close()
		t.Fatalf("BeginRestore: %v", err)
	}
	errCut := errors.New("cut")
	cutAfter := rapid.IntRange(0, len(testKeys)).Draw(t, "cutAfter")
	err = sn.Records(nil, func(k []byte, mod argent.Index, v []byte) error {
		if rs.Records() == uint64(cutAfter) {
			return errCut
		}
		return rs.Add(k, mod, v)
	})
	_ = sn.Close()
	switch {
	case err == nil:
		if err := rs.Finish(rs.Records()); err != nil {
			t.Fatalf("Finish: %v", err)
		}
	case errors.Is(err, errCut):
		rs.Abort()
		if rapid.Bool().Draw(t, "reopenCut") {
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r, err = kv.Open(dir, sm.opts); err != nil {
				t.Fatalf("reopen: %v", err)
			}
		}
		// The source may move on before the load resumes.
		for range rapid.IntRange(0, 2).Draw(t, "commitsDuringCut") {
			sm.commit(t)
		}
		sm.resume(t, r, base)
	default:
		rs.Abort()
		t.Fatalf("Records: %v", err)
	}
	if r.State() != sm.s.State() || r.Restoring() {
		t.Fatalf("restored store: state %+v restoring %v; want state %+v", r.State(), r.Restoring(), sm.s.State())
	}
	if err := sm.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sm.s, sm.dir = r, dir
	checkStore(t, sm.s, sm.m, sm.page)
}

// resume finishes r's cut load of a snapshot at base from the source's
// current state, replaying the log up to it if the source moved on.
func (sm *storeMachine) resume(t *rapid.T, r *kv.Store, base argent.State) {
	p, ok := r.RestoreProgress()
	if !ok || p.Base != base || !r.Restoring() {
		t.Fatalf("RestoreProgress of a cut load = %+v, %v", p, ok)
	}
	sn, err := sm.s.NewSnapshot()
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	defer sn.Close()
	rs, err := r.ResumeRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatalf("ResumeRestore: %v", err)
	}
	if err := sn.Records(p.LastKey, rs.Add); err != nil {
		rs.Abort()
		t.Fatalf("Records after %q: %v", p.LastKey, err)
	}
	if err := rs.Finish(rs.Records()); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if sn.State.Index == base.Index {
		return
	}
	if !r.Restoring() {
		t.Fatalf("a load resumed from %d serves before replaying from %d", sn.State.Index, base.Index)
	}
	w := r.NewWriter()
	for i := base.Index + 1; i <= sn.State.Index; i++ {
		if err := w.AppendEntry(&sm.m.entries[i-1]); err != nil {
			w.Discard()
			t.Fatalf("replay entry %d: %v", i, err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// check runs after every action: reads at the applied index and the
// horizon, and the log's byte count.
func (sm *storeMachine) check(t *rapid.T) {
	s, m := sm.s, sm.m
	if s.Applied() != m.applied() {
		t.Fatalf("Applied = %d, want %d", s.Applied(), m.applied())
	}
	checkGet(t, s, m, s.Applied())
	checkScan(t, s, m, s.Applied())
	checkGet(t, s, m, s.Horizon())
	if first := s.LogFirst(); first <= m.applied() {
		if got, want := s.LogBytes(), m.logHeld(first); got != want {
			t.Fatalf("LogBytes = %d, want %d", got, want)
		}
	} else if got := s.LogBytes(); got != 0 {
		t.Fatalf("LogBytes with an empty log = %d", got)
	}
}
