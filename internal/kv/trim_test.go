package kv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// trimAll runs Trim until it drops nothing and returns the totals.
func trimAll(t *testing.T, s *kv.Store) kv.TrimResult {
	t.Helper()
	var total kv.TrimResult
	for range 100 {
		r, err := s.Trim()
		if err != nil {
			t.Fatalf("Trim: %v", err)
		}
		if r.Versions == 0 && r.LogEntries == 0 {
			return total
		}
		total.Versions += r.Versions
		total.LogEntries += r.LogEntries
	}
	t.Fatal("Trim keeps dropping")
	return total
}

// commitAt commits one entry per batch, each at the given offset from the
// clock's start.
func commitAt(t *testing.T, s *kv.Store, m *model, start time.Time, at time.Duration, batches ...[]argent.Op) {
	t.Helper()
	commitAll(t, s, m, batches, 1, func() time.Time { return start.Add(at) })
}

func TestStore_TrimHistoryByTime(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: time.Minute})
	m := newModel()
	commitAt(t, s, m, t0, 0, []argent.Op{put("k", "1"), put("j", "1")}) // 1
	commitAt(t, s, m, t0, time.Second, []argent.Op{put("k", "2")})      // 2: supersedes k@1
	commitAt(t, s, m, t0, 100*time.Second, []argent.Op{put("k", "3")})  // 3: supersedes k@2
	commitAt(t, s, m, t0, 101*time.Second, []argent.Op{put("x", "4")})  // 4: supersedes nothing

	// Inside the window nothing goes.
	clock.Advance(30 * time.Second)
	if r := trimAll(t, s); r.Versions != 0 || s.Horizon() != 0 {
		t.Fatalf("Trim inside the window dropped %+v, horizon %d", r, s.Horizon())
	}
	// At t0+120s the cutoff is t0+60s: the version superseded at t0+1s
	// goes, the one superseded at t0+100s stays.
	clock.Advance(90 * time.Second)
	if r := trimAll(t, s); r.Versions != 1 {
		t.Fatalf("Trim dropped %d versions, want 1", r.Versions)
	}
	if h := s.Horizon(); h != 2 {
		t.Fatalf("Horizon = %d, want 2", h)
	}
	if _, err := s.Get([]byte("k"), 1); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("Get(k) at 1: error = %v, want ErrCompacted", err)
	}
	checkStore(t, s, m, 1)
	// Much later everything superseded goes; the horizon stops at the last
	// index that superseded something.
	clock.Advance(time.Hour)
	trimAll(t, s)
	if h, b := s.Horizon(), s.HistoryBytes(); h != 3 || b != 0 {
		t.Fatalf("Horizon, HistoryBytes = %d, %d; want 3, 0", h, b)
	}
	checkStore(t, s, m, 1)
}

// TestStore_TrimTombstoneAccounting is a regression test: the GC entries of
// tombstones are not part of HistoryBytes, and counting them as freed made
// the remaining byte count wrap below zero, so Trim dropped history that
// was still inside the time window.
func TestStore_TrimTombstoneAccounting(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: time.Minute})
	m := newModel()
	commitAt(t, s, m, t0, 0, []argent.Op{put("k1", ""), put("k2", ""), put("k3", ""), put("k4", "")}) // 1
	commitAt(t, s, m, t0, 0, []argent.Op{delPrefix("k")})                                             // 2: four tombstones
	commitAt(t, s, m, t0, 100*time.Second, []argent.Op{put("a", "1")})                                // 3
	commitAt(t, s, m, t0, 100*time.Second, []argent.Op{put("a", "2")})                                // 4: supersedes a@3
	clock.Advance(110 * time.Second)
	trimAll(t, s)
	if h := s.Horizon(); h != 2 {
		t.Fatalf("Horizon = %d, want 2: index 4 is inside the history window", h)
	}
	if got, err := s.Get([]byte("a"), 3); err != nil || string(got.Value) != "1" {
		t.Fatalf("Get(a) at 3 = %q, %v; want 1", got.Value, err)
	}
	if s.HistoryBytes() == 0 {
		t.Fatal("HistoryBytes = 0 while a@3 is still kept")
	}
	checkStore(t, s, m, 2)
}

func TestStore_TrimHistoryByBytes(t *testing.T) {
	clock := newFakeClock()
	value := strings.Repeat("v", 100)
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryBytes: 300})
	m := newModel()
	var batches [][]argent.Op
	for i := range 10 {
		batches = append(batches, []argent.Op{put("k", fmt.Sprint(i, value))})
	}
	commitAll(t, s, m, batches, 3, clock.Now)
	before := s.HistoryBytes()
	if before < 9*100 {
		t.Fatalf("HistoryBytes = %d with 9 superseded values of 100 bytes", before)
	}
	trimAll(t, s)
	// Each superseded version costs a bit over 100 bytes: two fit.
	if h := s.Horizon(); h != 8 {
		t.Fatalf("Horizon = %d, want 8", h)
	}
	if b := s.HistoryBytes(); b == 0 || b > 300 {
		t.Fatalf("HistoryBytes = %d, want 1..300", b)
	}
	checkStore(t, s, m, 1)
}

func TestStore_TrimDropsTombstones(t *testing.T) {
	clock := newFakeClock()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: time.Second})
	m := newModel()
	commitAll(t, s, m, [][]argent.Op{
		{put("a", "1"), put("b", "1"), put("c", "1")},
		{del("a"), put("b", "2"), del("c")},
		{put("c", "3")}, // replaces the tombstone of c
	}, 1, clock.Now)
	clock.Advance(time.Minute)
	trimAll(t, s)
	if h := s.Horizon(); h != 3 {
		t.Fatalf("Horizon = %d, want 3", h)
	}
	checkStore(t, s, m, 1)
	// Writing over a key whose tombstone was dropped starts a new history.
	commitAll(t, s, m, [][]argent.Op{{put("a", "4")}, {put("a", "5"), del("c")}, {put("c", "6"), del("c")}}, 3, clock.Now)
	checkStore(t, s, m, 1)
}

func TestStore_TrimLog(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	fs := vfs.NewMem()
	opts := &kv.Options{FS: fs, Now: clock.Now, LogDuration: time.Minute}
	s := mustOpen(t, "db", opts)
	m := newModel()
	for i := range 10 {
		commitAt(t, s, m, t0, time.Duration(i)*10*time.Second, []argent.Op{put("k", fmt.Sprint(i))})
	}
	if got, want := s.LogBytes(), m.logHeld(1); got != want {
		t.Fatalf("LogBytes = %d, want %d", got, want)
	}
	// At t0+100s the cutoff is t0+40s: entries 1-4 (t0..t0+30s) go.
	clock.Advance(100 * time.Second)
	if r := trimAll(t, s); r.LogEntries != 4 {
		t.Fatalf("Trim dropped %d log entries, want 4", r.LogEntries)
	}
	if first := s.LogFirst(); first != 5 {
		t.Fatalf("LogFirst = %d, want 5", first)
	}
	if got, want := s.LogBytes(), m.logHeld(5); got != want {
		t.Fatalf("LogBytes = %d, want %d", got, want)
	}
	if _, err := s.ReadLog(4, 0, func(*kv.LogEntry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("ReadLog(4): error = %v, want ErrCompacted", err)
	}
	checkStore(t, s, m, 1)
	// The log can empty out entirely; the store still knows its state.
	clock.Advance(time.Hour)
	trimAll(t, s)
	if first := s.LogFirst(); first != 11 || s.LogBytes() != 0 {
		t.Fatalf("LogFirst, LogBytes = %d, %d; want 11, 0", first, s.LogBytes())
	}
	checkStore(t, s, m, 1)
	s = reopen(t, s, "db", opts)
	defer func() { _ = s.Close() }()
	checkStore(t, s, m, 1)
	// New entries after an empty log count from zero again.
	commitAt(t, s, m, clock.Now(), 0, []argent.Op{put("k", "new")}, []argent.Op{del("k")})
	if got, want := s.LogBytes(), m.logHeld(11); got != want {
		t.Fatalf("LogBytes after refilling = %d, want %d", got, want)
	}
	checkStore(t, s, m, 1)
}

func TestStore_TrimLogByBytes(t *testing.T) {
	clock := newFakeClock()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, LogBytes: 1000})
	m := newModel()
	var batches [][]argent.Op
	for i := range 20 {
		batches = append(batches, []argent.Op{put(fmt.Sprint("k", i), strings.Repeat("x", 100))})
	}
	commitAll(t, s, m, batches, 5, clock.Now)
	trimAll(t, s)
	want := m.applied() + 1
	for i := argent.Index(1); i <= m.applied(); i++ {
		if m.logHeld(i) <= 1000 {
			want = i
			break
		}
	}
	if got := s.LogFirst(); got != want || s.LogBytes() > 1000 {
		t.Fatalf("LogFirst = %d, LogBytes = %d; want %d, <= 1000", got, s.LogBytes(), want)
	}
	checkStore(t, s, m, 3)
}

// TestStore_TrimBounded checks that one Trim call does a bounded amount of
// work, in whole groups of one superseding index, and that calling it again
// finishes the job.
func TestStore_TrimBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes 36,000 keys: slow with -short or -race")
	}
	clock := newFakeClock()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: time.Second})
	const groups, perGroup = 3, 12000
	w := s.NewWriter()
	for g := range groups {
		ops := make([]argent.Op, perGroup)
		for i := range ops {
			ops[i] = put(fmt.Sprintf("g%d/%05d", g, i), "v")
		}
		if _, err := w.Append(ops, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for g := range groups {
		if _, err := w.Append([]argent.Op{delPrefix(fmt.Sprintf("g%d/", g))}, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	var calls []int
	for {
		r, err := s.Trim()
		if err != nil {
			t.Fatal(err)
		}
		if r.Versions == 0 {
			break
		}
		calls = append(calls, r.Versions)
	}
	// Each delete leaves a history version and a tombstone: 24,000 GC
	// entries per group. Trim stops at the first group boundary past its
	// limit, so each call takes exactly one group here.
	if len(calls) != groups {
		t.Fatalf("Trim calls dropped %v, want %d calls", calls, groups)
	}
	for i, n := range calls {
		if n != 2*perGroup {
			t.Fatalf("Trim call %d dropped %d, want %d", i, n, 2*perGroup)
		}
	}
	if h := s.Horizon(); h != 2*groups {
		t.Fatalf("Horizon = %d, want %d", h, 2*groups)
	}
	items, _, err := s.Scan(nil, nil, 10, s.Applied())
	if err != nil || len(items) != 0 {
		t.Fatalf("Scan after trimming everything = %d items, %v", len(items), err)
	}
}
