package kv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
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
		if !r.Progress() {
			return total
		}
		total.Horizon += r.Horizon
		total.Tombstones += r.Tombstones
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
	if r := trimAll(t, s); r.Progress() || s.Horizon() != 0 {
		t.Fatalf("Trim inside the window did %+v, horizon %d", r, s.Horizon())
	}
	// At t0+120s the cutoff is t0+60s: the version superseded at t0+1s
	// goes, the one superseded at t0+100s stays.
	clock.Advance(90 * time.Second)
	if r := trimAll(t, s); r.Horizon != 2 {
		t.Fatalf("Trim moved the horizon by %d, want 2", r.Horizon)
	}
	if h := s.Horizon(); h != 2 {
		t.Fatalf("Horizon = %d, want 2", h)
	}
	if _, err := s.Get(context.Background(), []byte("k"), 1); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("Get(k) at 1: error = %v, want ErrCompacted", err)
	}
	checkStore(t, s, m, 1)
	// Much later every entry is older than the window: reads as of the
	// applied index only.
	clock.Advance(time.Hour)
	trimAll(t, s)
	if h, b := s.Horizon(), s.HistoryBytes(); h != 4 || b != 0 {
		t.Fatalf("Horizon, HistoryBytes = %d, %d; want 4, 0", h, b)
	}
	checkStore(t, s, m, 1)
}

// TestStore_TrimTombstoneAccounting checks that tombstones left by a
// delete_prefix do not move the horizon past what the time window keeps.
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
	if got, err := s.Get(context.Background(), []byte("a"), 3); err != nil || string(got.Value) != "1" {
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
	if before < 10*100 {
		t.Fatalf("HistoryBytes = %d with 10 entries of 100-byte values", before)
	}
	trimAll(t, s)
	// Each entry costs a bit over 100 bytes: two fit.
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
	// At t0+100s the cutoff is t0+40s: entries 1-4 (t0..t0+30s) are out
	// of the window. The history cannot reach below the log's window, but
	// the log keeps them until no read at the horizon needs them: k@4 was
	// superseded at 5, after the horizon, and its value is in entry 4.
	clock.Advance(100 * time.Second)
	trimAll(t, s)
	if first, h := s.LogFirst(), s.Horizon(); first != 1 || h != 4 {
		t.Fatalf("LogFirst, Horizon = %d, %d; want 1, 4", first, h)
	}
	if got, err := s.Get(context.Background(), []byte("k"), 4); err != nil || string(got.Value) != "3" {
		t.Fatalf("Get(k) at 4 = %q, %v; want 3", got.Value, err)
	}
	checkStore(t, s, m, 1)
	// At t0+131s entry 1 is older than twice the window: the log stops
	// waiting, gives up the history before its last index and keeps its
	// window, entries 9 and 10 (from t0+80s).
	clock.Advance(31 * time.Second)
	if r := trimAll(t, s); r.LogEntries != 8 {
		t.Fatalf("Trim dropped %d log entries, want 8", r.LogEntries)
	}
	if first, h := s.LogFirst(), s.Horizon(); first != 9 || h != 10 {
		t.Fatalf("LogFirst, Horizon = %d, %d; want 9, 10", first, h)
	}
	if got, want := s.LogBytes(), m.logHeld(9); got != want {
		t.Fatalf("LogBytes = %d, want %d", got, want)
	}
	if _, err := s.ReadLog(8, 0, func(*logstore.Entry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("ReadLog(8): error = %v, want ErrCompacted", err)
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
	// New entries after an empty log count from zero again, and the
	// versions they supersede, whose entries are gone, are copied.
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

// TestStore_TrimBounded checks that one Trim call drops a bounded number
// of tombstones and that calling it again finishes the job.
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
		if !r.Progress() {
			break
		}
		calls = append(calls, r.Tombstones)
	}
	want := []int{20000, groups*perGroup - 20000}
	if !slices.Equal(calls, want) {
		t.Fatalf("Trim calls handled %v tombstones, want %v", calls, want)
	}
	if h := s.Horizon(); h != 2*groups {
		t.Fatalf("Horizon = %d, want %d", h, 2*groups)
	}
	items, _, err := s.Scan(context.Background(), nil, nil, 10, s.Applied())
	if err != nil || len(items) != 0 {
		t.Fatalf("Scan after trimming everything = %d items, %v", len(items), err)
	}
}
