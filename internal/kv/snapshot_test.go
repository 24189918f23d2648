package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
)

type record struct {
	key   string
	mod   argent.Index
	value string
}

// records returns what sn.Records(after) passes to fn.
func records(t *testing.T, sn *kv.Snapshot, after []byte) []record {
	t.Helper()
	var out []record
	err := sn.Records(after, func(key []byte, mod argent.Index, value []byte) error {
		out = append(out, record{string(key), mod, string(value)})
		return nil
	})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	return out
}

// modelRecords returns the live keys of the model at index at, in order.
func modelRecords(m *model, at argent.Index) []record {
	var out []record
	for _, it := range m.scan("", at) {
		out = append(out, record{string(it.Key), it.ModIndex, string(it.Value.Value)})
	}
	return out
}

// sourceStore returns a store with a random history of n entries and a
// dataset ID, and its model.
func sourceStore(t *testing.T, seed uint64, n int) (*kv.Store, *model) {
	t.Helper()
	s := mustOpen(t, "src", nil)
	if _, err := s.InitDataset(); err != nil {
		t.Fatal(err)
	}
	m := newModel()
	rng := rand.New(rand.NewPCG(seed, 0))
	var batches [][]argent.Op
	for range n {
		batches = append(batches, randomOps(rng, 6))
	}
	clock := newFakeClock()
	commitAll(t, s, m, batches, 3, func() time.Time { return clock.Advance(time.Second) })
	return s, m
}

// restore loads sn into dst with records from Records and returns the
// number of records.
func restore(t *testing.T, dst *kv.Store, sn *kv.Snapshot) uint64 {
	t.Helper()
	r, err := dst.BeginRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatalf("BeginRestore: %v", err)
	}
	if err := sn.Records(nil, r.Add); err != nil {
		r.Abort()
		t.Fatalf("Records into Add: %v", err)
	}
	n := r.Records()
	if err := r.Finish(n); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return n
}

// checkRestored checks a store just restored from a snapshot at the model's
// index at: its state, content, and that it keeps no history or log below.
func checkRestored(t *testing.T, s *kv.Store, m *model, at argent.Index) {
	t.Helper()
	st := s.State()
	if st.Index != at || st.Chain != m.chains[at] || st.Time != m.times[at] {
		t.Fatalf("State = %+v, want index %d", st, at)
	}
	if s.Restoring() {
		t.Fatal("Restoring after Finish")
	}
	if s.Horizon() != at || s.LogFirst() != at+1 || s.HistoryBytes() != 0 || s.LogBytes() != 0 {
		t.Fatalf("Horizon %d LogFirst %d HistoryBytes %d LogBytes %d; want %d, %d, 0, 0",
			s.Horizon(), s.LogFirst(), s.HistoryBytes(), s.LogBytes(), at, at+1)
	}
	checkGet(t, s, m, at)
	checkScan(t, s, m, at)
	checkScanPages(t, s, m, at, 2)
	if at > 0 {
		if _, err := s.Get(context.Background(), []byte("a"), at-1); !errors.Is(err, argent.ErrCompacted) {
			t.Fatalf("Get below the snapshot: error = %v, want ErrCompacted", err)
		}
		if _, err := s.ReadLog(at, 0, func(*logstore.Entry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
			t.Fatalf("ReadLog(%d) of a restored store: error = %v, want ErrCompacted", at, err)
		}
	}
	if next, err := s.ReadLog(at+1, 0, func(*logstore.Entry) bool { t.Fatal("empty log gave an entry"); return true }); err != nil || next != at+1 {
		t.Fatalf("ReadLog(%d) = %d, %v", at+1, next, err)
	}
}

// follow applies the model's entries after the store's index with AppendEntry.
func follow(t *testing.T, s *kv.Store, m *model) {
	t.Helper()
	w := s.NewWriter()
	for i := s.Applied() + 1; i <= m.applied(); i++ {
		if err := w.AppendEntry(&m.entries[i-1]); err != nil {
			w.Discard()
			t.Fatalf("AppendEntry %d: %v", i, err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestStore_SnapshotRestore(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("Seed", seed), func(t *testing.T) {
			src, m := sourceStore(t, seed, 30)
			sn, err := src.NewSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			defer sn.Close()
			at := m.applied()
			if sn.State != src.State() || sn.Dataset != src.Dataset() {
				t.Fatalf("snapshot state %+v dataset %s, want %+v %s", sn.State, sn.Dataset, src.State(), src.Dataset())
			}
			// The snapshot does not move while the source goes on.
			commitAll(t, src, m, [][]argent.Op{{put("a", "after")}, {delPrefix("")}}, 1, time.Now)
			want := modelRecords(m, at)
			if got := records(t, sn, nil); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Records = %v, want %v", got, want)
			}

			dst := mustOpen(t, "dst", nil)
			if n := restore(t, dst, sn); n != uint64(len(want)) {
				t.Fatalf("restored %d records, want %d", n, len(want))
			}
			if dst.Dataset() != src.Dataset() {
				t.Fatalf("restored store has dataset %s, want %s", dst.Dataset(), src.Dataset())
			}
			checkRestored(t, dst, m, at)
			// The restored store follows the source's log from there.
			follow(t, dst, m)
			checkGet(t, dst, m, dst.Applied())
			checkScan(t, dst, m, dst.Applied())
			if dst.State() != src.State() {
				t.Fatalf("after following, State = %+v, want %+v", dst.State(), src.State())
			}
		})
	}
}

func TestSnapshot_RecordsAfter(t *testing.T) {
	src, m := sourceStore(t, 7, 40)
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	all := modelRecords(m, m.applied())
	if len(all) < 3 {
		t.Fatalf("only %d records: pick another seed", len(all))
	}
	for i, r := range all {
		if got := records(t, sn, []byte(r.key)); fmt.Sprint(got) != fmt.Sprint(all[i+1:]) {
			t.Fatalf("Records(after %q) = %v, want %v", r.key, got, all[i+1:])
		}
		// After a key that is not stored: the next key up.
		between := r.key + "\x00"
		if got := records(t, sn, []byte(between)); fmt.Sprint(got) != fmt.Sprint(all[i+1:]) {
			t.Fatalf("Records(after %q) = %v, want %v", between, got, all[i+1:])
		}
	}
	// A callback error stops the walk and comes back as it is.
	stop := errors.New("stop")
	calls := 0
	err = sn.Records(nil, func([]byte, argent.Index, []byte) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Records with a failing callback = %v after %d calls", err, calls)
	}
}

// TestRestore_Resume loads a snapshot in two transfers: the second resumes
// after the Restore's LastKey.
func TestRestore_Resume(t *testing.T) {
	src, m := sourceStore(t, 11, 40)
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	all := modelRecords(m, m.applied())
	dst := mustOpen(t, "dst", nil)
	r, err := dst.BeginRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatal(err)
	}
	cut := errors.New("connection lost")
	half := len(all) / 2
	err = sn.Records(nil, func(k []byte, mod argent.Index, v []byte) error {
		if r.Records() == uint64(half) {
			return cut
		}
		return r.Add(k, mod, v)
	})
	if !errors.Is(err, cut) {
		r.Abort()
		t.Fatalf("first transfer: %v", err)
	}
	if string(r.LastKey()) != all[half-1].key {
		r.Abort()
		t.Fatalf("LastKey = %q, want %q", r.LastKey(), all[half-1].key)
	}
	if err := sn.Records(r.LastKey(), r.Add); err != nil {
		r.Abort()
		t.Fatalf("second transfer: %v", err)
	}
	if err := r.Finish(uint64(len(all))); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	checkRestored(t, dst, m, m.applied())
}

func TestStore_BeginRestoreRefuses(t *testing.T) {
	src, m := sourceStore(t, 3, 10)
	dst := mustOpen(t, "dst", nil)
	ds := src.Dataset()
	// Bring dst to index 6 of the same history.
	if _, err := dst.AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	w := dst.NewWriter()
	for i := range 6 {
		if err := w.AppendEntry(&m.entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ds   argent.DatasetID
		st   argent.State
		want error
	}{
		{name: "Older", ds: ds, st: argent.State{Index: 5, Chain: m.chains[5]}},
		{name: "Empty", ds: ds, st: argent.State{}},
		{name: "OtherDataset", ds: argent.DatasetID{1}, st: src.State(), want: argent.ErrDatasetMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := dst.BeginRestore(tc.ds, tc.st)
			if err == nil {
				r.Abort()
				t.Fatal("BeginRestore succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			// Nothing changed, and the store is not locked.
			if dst.Restoring() || dst.Applied() != 6 || dst.Dataset() != ds {
				t.Fatalf("after a refused restore: restoring %v, applied %d, dataset %s", dst.Restoring(), dst.Applied(), dst.Dataset())
			}
			checkGet(t, dst, m, 6)
			w := dst.NewWriter()
			w.Discard()
		})
	}
}

// TestRestore_Cut checks that a restore cut half-way, by Abort or by a
// crash, leaves a store that serves no reads until a later restore ends.
func TestRestore_Cut(t *testing.T) {
	src, m := sourceStore(t, 5, 40)
	// Enough bytes in the first records for Add to flush a batch (4 MiB)
	// before the cut. The race detector makes copying them slow, and this
	// test has no concurrency: small values then.
	big := bytes.Repeat([]byte("x"), 480<<10)
	if raceEnabled {
		big = big[:1000]
	}
	var batches [][]argent.Op
	for i := range 9 {
		batches = append(batches, []argent.Op{put(fmt.Sprintf("!big/%d", i), string(big))})
	}
	commitAll(t, src, m, batches, 5, time.Now)
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	all := modelRecords(m, m.applied())

	for _, how := range []string{"Abort", "Close", "Crash"} {
		t.Run(how, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := &kv.Options{FS: fs}
			dst, err := kv.Open("dst", opts)
			if err != nil {
				t.Fatal(err)
			}
			// The replica had some state of its own before.
			w := dst.NewWriter()
			for i := range 4 {
				if err := w.AppendEntry(&m.entries[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			r, err := dst.BeginRestore(sn.Dataset, sn.State)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			_ = sn.Records(nil, func(k []byte, mod argent.Index, v []byte) error {
				if n == len(all)-3 {
					return errors.New("cut")
				}
				n++
				return r.Add(k, mod, v)
			})
			checkUnavailable := func(s *kv.Store) {
				t.Helper()
				if !s.Restoring() {
					t.Fatal("Restoring = false after a cut restore")
				}
				if _, err := s.Get(context.Background(), []byte("a"), s.Applied()); !errors.Is(err, argent.ErrUnavailable) {
					t.Fatalf("Get during a cut restore: error = %v, want ErrUnavailable", err)
				}
				if _, _, err := s.Scan(context.Background(), nil, nil, 10, s.Applied()); !errors.Is(err, argent.ErrUnavailable) {
					t.Fatalf("Scan during a cut restore: error = %v, want ErrUnavailable", err)
				}
				if _, err := s.NewSnapshot(); !errors.Is(err, argent.ErrUnavailable) {
					t.Fatalf("NewSnapshot during a cut restore: error = %v, want ErrUnavailable", err)
				}
				// The old log is gone: a pull from index 1 must not look caught up.
				if _, err := s.ReadLog(1, 0, func(*logstore.Entry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
					t.Fatalf("ReadLog(1) during a cut restore: error = %v, want ErrCompacted", err)
				}
			}
			checkUnavailable(dst)
			switch how {
			case "Abort":
				r.Abort()
				r.Abort()
				if err := r.Finish(uint64(len(all))); err == nil {
					t.Fatal("Finish after Abort succeeded")
				}
			case "Close":
				if err := dst.Close(); err != nil {
					t.Fatal(err)
				}
				if dst, err = kv.Open("dst", opts); err != nil {
					t.Fatal(err)
				}
			case "Crash":
				opts = &kv.Options{FS: fs.CrashClone(vfs.CrashCloneCfg{})}
				_ = dst.Close()
				if dst, err = kv.Open("dst", opts); err != nil {
					t.Fatal(err)
				}
			}
			defer func() { _ = dst.Close() }()
			checkUnavailable(dst)
			// A restore with a wrong record count fails and stays cut.
			r2, err := dst.BeginRestore(sn.Dataset, sn.State)
			if err != nil {
				t.Fatalf("BeginRestore after a cut one: %v", err)
			}
			if err := sn.Records(nil, r2.Add); err != nil {
				t.Fatal(err)
			}
			if err := r2.Finish(r2.Records() + 1); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("Finish with a wrong count: error = %v, want ErrCorruption", err)
			}
			checkUnavailable(dst)
			// A full restore brings the store back.
			if n := restore(t, dst, sn); n != uint64(len(all)) {
				t.Fatalf("restored %d records, want %d", n, len(all))
			}
			checkRestored(t, dst, m, m.applied())
			dst = reopen(t, dst, "dst", opts)
			checkRestored(t, dst, m, m.applied())
		})
	}
}

// A snapshot record that no store could have sent (no key, a mod index
// outside 1..the snapshot's, a key out of order) is refused as corrupt.
// Two empty keys in a row once passed the order check, which compared
// with the last key only when there was one.
func TestRestore_AddRefuses(t *testing.T) {
	type rec struct {
		key string
		mod argent.Index
	}
	for _, tc := range []struct {
		name   string
		before []rec // accepted first
		bad    rec
	}{
		{name: "ModIndexZero", bad: rec{"k", 0}},
		{name: "ModIndexAfterSnapshot", bad: rec{"k", 11}},
		{name: "EmptyKey", bad: rec{"", 1}},
		{name: "EmptyKeyLater", before: []rec{{"a", 1}}, bad: rec{"", 1}},
		{name: "SameKey", before: []rec{{"a", 1}}, bad: rec{"a", 2}},
		{name: "EarlierKey", before: []rec{{"b", 1}}, bad: rec{"a", 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, "db", nil)
			r, err := s.BeginRestore(argent.DatasetID{9}, argent.State{Index: 10, Time: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Abort()
			for _, ok := range tc.before {
				if err := r.Add([]byte(ok.key), ok.mod, []byte("v")); err != nil {
					t.Fatalf("Add(%q, %d): %v", ok.key, ok.mod, err)
				}
			}
			if err := r.Add([]byte(tc.bad.key), tc.bad.mod, []byte("v")); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("Add(%q, %d): error = %v, want ErrCorruption", tc.bad.key, tc.bad.mod, err)
			}
			if err := r.Add([]byte("z"), 10, []byte("v")); err != nil {
				t.Fatalf("Add of a sound record after the refused one: %v", err)
			}
		})
	}
}
