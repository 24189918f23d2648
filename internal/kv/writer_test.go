package kv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/wire"
)

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }

func delPrefix(p string) argent.Op { return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)} }

// sourceEntries commits batches on a fresh store, one entry each, and
// returns the entries as ReadLog gives them, with the model.
func sourceEntries(t *testing.T, batches ...[]argent.Op) ([]argent.Entry, *model) {
	t.Helper()
	s := mustOpen(t, "src", nil)
	m := newModel()
	clock := newFakeClock()
	commitAll(t, s, m, batches, 1, func() time.Time { return clock.Advance(time.Second) })
	var out []argent.Entry
	if _, err := s.ReadLog(1, 0, func(e *logstore.Entry) bool {
		// Entries alias the iterator: copy through the wire encoding.
		d, err := wire.DecodeEntry(append([]byte(nil), e.Raw...))
		if err != nil {
			t.Fatalf("DecodeEntry: %v", err)
		}
		out = append(out, d)
		return true
	}); err != nil {
		t.Fatalf("ReadLog: %v", err)
	}
	return out, m
}

func TestWriter_AppendEntry(t *testing.T) {
	entries, m := sourceEntries(t,
		[]argent.Op{put("a", "1"), put("b", "1")},
		[]argent.Op{put("a", "2"), del("b")},
		[]argent.Op{put("c", "3"), delPrefix("a")},
	)
	s := mustOpen(t, "replica", nil)
	w := s.NewWriter()
	for i := range entries {
		if err := w.AppendEntry(&entries[i]); err != nil {
			t.Fatalf("AppendEntry %d: %v", entries[i].Index, err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkStore(t, s, m, 2)
}

// TestWriter_AppendEntryRefused checks that an entry with the wrong index
// or chain, or a damaged one, is refused and changes nothing: neither the
// Writer's position, nor what a later Commit writes.
func TestWriter_AppendEntryRefused(t *testing.T) {
	entries, m := sourceEntries(t,
		[]argent.Op{put("a", "1"), put("b", "1")},
		[]argent.Op{put("a", "2"), put("x", "2"), del("b")},
		[]argent.Op{put("c", "3")},
	)
	e1, e2 := entries[0], entries[1]
	withChain := func(e argent.Entry, prev argent.Hash) argent.Entry {
		e.Chain = wire.NextChain(prev, &e)
		return e
	}
	tests := []struct {
		name  string
		entry argent.Entry
		want  error
	}{
		{name: "IndexRepeated", entry: e1, want: argent.ErrCorruption},
		{name: "IndexGap", entry: entries[2], want: argent.ErrCorruption},
		{name: "IndexZero", entry: withChain(argent.Entry{Index: 0, Ops: e2.Ops}, m.chains[1]), want: argent.ErrCorruption},
		{name: "WrongChain", entry: func() argent.Entry { e := e2; e.Chain[0] ^= 1; return e }(), want: argent.ErrChainMismatch},
		{name: "ChainOfOtherHistory", entry: withChain(e2, argent.Hash{1}), want: argent.ErrChainMismatch},
		{name: "OpsChanged", entry: func() argent.Entry {
			e := e2
			e.Ops = append([]argent.Op(nil), e2.Ops...)
			e.Ops[0] = put("a", "tampered")
			return e
		}(), want: argent.ErrChainMismatch},
		{name: "TimeChanged", entry: func() argent.Entry { e := e2; e.Time++; return e }(), want: argent.ErrChainMismatch},
		{name: "UnknownOpType", entry: func() argent.Entry {
			// A valid chain over a bad op: the damage is in the op itself.
			e := e2
			e.Ops = []argent.Op{put("x", "bad"), {Type: 9, Key: []byte("y")}}
			return withChain(e, m.chains[1])
		}(), want: argent.ErrCorruption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, "replica", nil)
			w := s.NewWriter()
			if err := w.AppendEntry(&e1); err != nil {
				t.Fatalf("AppendEntry 1: %v", err)
			}
			err := w.AppendEntry(&tc.entry)
			if !errors.Is(err, tc.want) {
				w.Discard()
				t.Fatalf("AppendEntry error = %v, want %v", err, tc.want)
			}
			if w.Next() != 2 || w.Len() != 1 {
				w.Discard()
				t.Fatalf("after a refused entry Next = %d, Len = %d; want 2, 1", w.Next(), w.Len())
			}
			if mod, err := w.ModIndex([]byte("x")); err != nil || mod != 0 {
				w.Discard()
				t.Fatalf("Writer.ModIndex(x) after a refused entry = %d, %v; want 0", mod, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			// The store holds entry 1 and nothing of the refused entry.
			m1 := newModel()
			m1.add(m.entries[0])
			checkStore(t, s, m1, 1)
			// The right entry still follows.
			w = s.NewWriter()
			if err := w.AppendEntry(&e2); err != nil {
				w.Discard()
				t.Fatalf("AppendEntry 2 after the refusal: %v", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			m1.add(m.entries[1])
			checkStore(t, s, m1, 1)
		})
	}
}

func TestWriter_AppendRefusesUnknownOp(t *testing.T) {
	s := mustOpen(t, "db", nil)
	w := s.NewWriter()
	if _, err := w.Append([]argent.Op{put("k", "v"), {Type: 0, Key: []byte("k2")}}, time.Now()); !errors.Is(err, argent.ErrCorruption) {
		w.Discard()
		t.Fatalf("Append of an unknown op: error = %v, want ErrCorruption", err)
	}
	if mod, err := w.ModIndex([]byte("k")); err != nil || mod != 0 {
		w.Discard()
		t.Fatalf("ModIndex(k) after a refused Append = %d, %v; want 0", mod, err)
	}
	if _, err := w.Append([]argent.Op{put("j", "v")}, time.Now()); err != nil {
		w.Discard()
		t.Fatalf("Append after a refused one: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), []byte("k"), 1); !errors.Is(err, argent.ErrNotFound) {
		t.Fatalf("Get(k) = %v, want ErrNotFound: the refused Append leaked into the commit", err)
	}
}

func TestWriter_ModIndex(t *testing.T) {
	s := mustOpen(t, "db", nil)
	w := s.NewWriter()
	steps := []struct {
		name string
		ops  []argent.Op
		want map[string]argent.Index
	}{
		{name: "Put", ops: []argent.Op{put("a", "1"), put("b", "1")}, want: map[string]argent.Index{"a": 1, "b": 1, "c": 0}},
		{name: "Overwrite", ops: []argent.Op{put("a", "2")}, want: map[string]argent.Index{"a": 2, "b": 1}},
		{name: "Delete", ops: []argent.Op{del("a")}, want: map[string]argent.Index{"a": 0, "b": 1}},
		{name: "DeleteAbsent", ops: []argent.Op{del("zz")}, want: map[string]argent.Index{"a": 0, "zz": 0}},
		{name: "PutThenDelete", ops: []argent.Op{put("c", "1"), del("c")}, want: map[string]argent.Index{"c": 0}},
		{name: "DeleteThenPut", ops: []argent.Op{del("b"), put("b", "x")}, want: map[string]argent.Index{"b": 6}},
		{name: "DeletePrefixThenPut", ops: []argent.Op{delPrefix(""), put("d", "1")}, want: map[string]argent.Index{"b": 0, "d": 7}},
	}
	for i, st := range steps {
		if _, err := w.Append(st.ops, time.Now()); err != nil {
			w.Discard()
			t.Fatalf("%s: Append: %v", st.name, err)
		}
		for k, want := range st.want {
			if got, err := w.ModIndex([]byte(k)); err != nil || got != want {
				w.Discard()
				t.Fatalf("%s (entry %d): ModIndex(%q) = %d, %v; want %d", st.name, i+1, k, got, err, want)
			}
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// A new Writer sees the committed mod indexes.
	w = s.NewWriter()
	defer w.Discard()
	for k, want := range map[string]argent.Index{"a": 0, "b": 0, "d": 7} {
		if got, err := w.ModIndex([]byte(k)); err != nil || got != want {
			t.Fatalf("ModIndex(%q) in a new Writer = %d, %v; want %d", k, got, err, want)
		}
	}
}

func TestWriter_TimeIsMonotonic(t *testing.T) {
	s := mustOpen(t, "db", nil)
	base := time.Unix(1_700_000_000, 0)
	w := s.NewWriter()
	e1, _ := w.Append([]argent.Op{put("a", "1")}, base)
	e2, _ := w.Append([]argent.Op{put("a", "2")}, base.Add(-time.Hour))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w = s.NewWriter()
	e3, _ := w.Append([]argent.Op{put("a", "3")}, base.Add(-time.Minute))
	e4, _ := w.Append([]argent.Op{put("a", "4")}, base.Add(time.Second))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	want := []int64{base.UnixNano(), base.UnixNano(), base.UnixNano(), base.Add(time.Second).UnixNano()}
	for i, e := range []argent.Entry{e1, e2, e3, e4} {
		if e.Time != want[i] {
			t.Fatalf("entry %d time = %d, want %d", e.Index, e.Time, want[i])
		}
	}
	if got := s.State().Time; got != want[3] {
		t.Fatalf("State().Time = %d, want %d", got, want[3])
	}
	if ct := e4.CommitTime(); !ct.Equal(base.Add(time.Second)) {
		t.Fatalf("CommitTime = %v", ct)
	}
}

func TestWriter_CommitAndDiscard(t *testing.T) {
	s := mustOpen(t, "db", nil)
	// An empty Writer commits nothing and publishes nothing.
	ch := s.Changed()
	w := s.NewWriter()
	if err := w.Commit(); err != nil {
		t.Fatalf("empty Commit: %v", err)
	}
	select {
	case <-ch:
		t.Fatal("an empty Commit woke waiters")
	default:
	}
	// A discarded Writer leaves nothing behind, and the next Writer reuses
	// the index.
	w = s.NewWriter()
	if _, err := w.Append([]argent.Op{put("a", "1")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Discard()
	if s.Applied() != 0 {
		t.Fatalf("Applied after Discard = %d", s.Applied())
	}
	if _, err := s.Get(context.Background(), []byte("a"), 0); !errors.Is(err, argent.ErrNotFound) {
		t.Fatalf("Get after Discard: %v", err)
	}
	w = s.NewWriter()
	e, err := w.Append([]argent.Op{put("b", "1")}, time.Now())
	if err != nil || e.Index != 1 {
		t.Fatalf("Append after Discard = %d, %v; want index 1", e.Index, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Commit did not close the Changed channel")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	w.Discard() // safe after Commit
	if _, err := s.Get(context.Background(), []byte("b"), 1); err != nil {
		t.Fatalf("Get(b): %v", err)
	}
}

// TestWriter_HistoryAcrossEntriesOfOneWriter checks reads at indexes in the
// middle of one Writer's entries.
func TestWriter_HistoryAcrossEntriesOfOneWriter(t *testing.T) {
	s := mustOpen(t, "db", nil)
	m := newModel()
	now := time.Unix(1_700_000_000, 0)
	commitAll(t, s, m, [][]argent.Op{
		{put("k", "1")},
		{put("k", "2"), put("j", "2")},
		{del("k")},
		{put("k", "4"), del("j")},
		{delPrefix(""), put("j", "5")},
		{put("j", "6"), del("j"), put("j", "6b")},
	}, 6, func() time.Time { return now })
	checkStore(t, s, m, 1)
}

// TestWriter_FollowDeleteWithValue checks that a replica can follow an
// entry whose delete carries a value (which the log encoding drops): the
// chain hash must not depend on it.
func TestWriter_FollowDeleteWithValue(t *testing.T) {
	entries, m := sourceEntries(t,
		[]argent.Op{put("a", "1")},
		[]argent.Op{{Type: argent.OpDelete, Key: []byte("a"), Value: []byte("stray")}, {Type: argent.OpDeletePrefix, Key: []byte("b"), Value: []byte("x")}},
	)
	s := mustOpen(t, "replica", nil)
	w := s.NewWriter()
	for i := range entries {
		if err := w.AppendEntry(&entries[i]); err != nil {
			w.Discard()
			t.Fatalf("AppendEntry %d: %v", i+1, err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, s, m, 1)
}

// TestWriter_CommitNoSync checks that entries written by CommitNoSync are
// invisible to readers (Get, Scan, ReadLog, Trim) until SyncAndPublish, while
// the next Writer already builds on them.
func TestWriter_CommitNoSync(t *testing.T) {
	clock := newFakeClock()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: time.Second, LogDuration: time.Second})
	m := newModel()
	commitAll(t, s, m, [][]argent.Op{{put("a", "1"), put("b", "1")}, {put("a", "2")}}, 1, clock.Now)

	// Two more groups, committed without sync.
	var states []argent.State
	for _, ops := range [][]argent.Op{{put("a", "3"), del("b"), put("c", "3")}, {delPrefix("")}} {
		w := s.NewWriter()
		if w.Next() != m.applied()+1 {
			t.Fatalf("Next = %d after an unpublished commit, want %d", w.Next(), m.applied()+1)
		}
		want := m.next(ops, clock.Now())
		e, err := w.Append(ops, clock.Now())
		if err != nil || e.Chain != want.Chain {
			w.Discard()
			t.Fatalf("Append: %v", err)
		}
		m.add(e)
		st, err := w.CommitNoSync()
		if err != nil || st.Index != e.Index || st.Chain != e.Chain {
			t.Fatalf("CommitNoSync = %+v, %v", st, err)
		}
		states = append(states, st)
	}
	// Readers stay at 2, with every read exact there, even with the clock
	// far past the windows.
	clock.Advance(time.Hour)
	trimAll(t, s)
	published := &model{states: m.states[:3], entries: m.entries[:2], chains: m.chains[:3], times: m.times[:3]}
	if s.Applied() != 2 || s.Horizon() > 2 || s.LogFirst() > 3 {
		t.Fatalf("Applied %d Horizon %d LogFirst %d; want 2, <= 2, <= 3", s.Applied(), s.Horizon(), s.LogFirst())
	}
	checkGet(t, s, published, 2)
	checkScan(t, s, published, 2)
	if _, err := s.Get(context.Background(), []byte("a"), 3); !errors.Is(err, argent.ErrFuture) {
		t.Fatalf("Get at an unpublished index: error = %v, want ErrFuture", err)
	}
	// Publishing an older state does nothing; the newest publishes all.
	if err := s.SyncAndPublish(states[0]); err != nil {
		t.Fatal(err)
	}
	if s.Applied() != 3 {
		t.Fatalf("Applied after SyncAndPublish(3) = %d", s.Applied())
	}
	if err := s.SyncAndPublish(states[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncAndPublish(states[0]); err != nil || s.Applied() != 4 {
		t.Fatalf("SyncAndPublish of an older state: Applied = %d, %v; want 4", s.Applied(), err)
	}
	trimAll(t, s)
	checkStore(t, s, m, 1)
}

// TestStore_SnapshotOfUnsyncedState checks that a snapshot never holds
// state a crash could take back: it is taken of everything committed,
// including a CommitNoSync not yet synced, so it must make that durable.
// Otherwise a child could load index N that its parent, after a crash,
// reassigns to another batch.
func TestStore_SnapshotOfUnsyncedState(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, "db", &kv.Options{FS: fs})
	m := newModel()
	commitAll(t, s, m, [][]argent.Op{{put("a", "1")}}, 1, time.Now)
	w := s.NewWriter()
	if _, err := w.Append([]argent.Op{put("a", "2")}, time.Now()); err != nil {
		w.Discard()
		t.Fatal(err)
	}
	if _, err := w.CommitNoSync(); err != nil {
		t.Fatal(err)
	}
	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	got := records(t, sn, nil)
	_ = sn.Close()
	crashed, err := kv.Open("db", &kv.Options{FS: fs.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = crashed.Close() }()
	if crashed.Applied() < sn.State.Index {
		t.Fatalf("snapshot at %d (records %v), but a crash right after leaves the store at %d", sn.State.Index, got, crashed.Applied())
	}
}
