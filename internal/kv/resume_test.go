package kv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/wire"
)

// resumeSetup builds a source at index 1 and a replica whose load of the
// index-1 snapshot was cut after the key "a"; the source then moves on with
// more, whose ops are given, so that a resumed load comes from a newer state.
func resumeSetup(t *testing.T, clock *fakeClock, more ...[]argent.Op) (src, dst *kv.Store, dstOpts *kv.Options, m *model) {
	t.Helper()
	src = mustOpen(t, "src", &kv.Options{Now: clock.Now})
	if _, err := src.InitDataset(); err != nil {
		t.Fatal(err)
	}
	m = newModel()
	commitAll(t, src, m, [][]argent.Op{{put("a", "1"), put("k", "1"), put("x", "1")}}, 1, clock.Now)
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	dstOpts = &kv.Options{Now: clock.Now, HistoryDuration: time.Minute}
	dst = mustOpen(t, "dst", dstOpts)
	r, err := dst.BeginRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatal(err)
	}
	cut := errors.New("cut")
	err = sn.Records(nil, func(k []byte, mod argent.Index, v []byte) error {
		if string(k) > "a" {
			return cut
		}
		return r.Add(k, mod, v)
	})
	r.Abort()
	if !errors.Is(err, cut) {
		t.Fatalf("first transfer: %v", err)
	}
	if p, ok := dst.RestoreProgress(); !ok || string(p.LastKey) != "a" || p.Base != sn.State {
		t.Fatalf("RestoreProgress = %+v, %v; want last key a at base %d", p, ok, sn.State.Index)
	}
	commitAll(t, src, m, more, 1, clock.Now)
	return src, dst, dstOpts, m
}

// resume loads the rest of the keys from src's current state and replays
// the log from the load's base to that state.
func resume(t *testing.T, src, dst *kv.Store, m *model) {
	t.Helper()
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	p, _ := dst.RestoreProgress()
	r, err := dst.ResumeRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatalf("ResumeRestore: %v", err)
	}
	if err := sn.Records(p.LastKey, r.Add); err != nil {
		r.Abort()
		t.Fatal(err)
	}
	if err := r.Finish(r.Records()); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if sn.State.Index > p.Base.Index {
		if !dst.Restoring() {
			t.Fatal("a load resumed from a newer state serves before the log is replayed")
		}
		if _, err := dst.Get(context.Background(), []byte("a"), dst.Applied()); !errors.Is(err, argent.ErrUnavailable) {
			t.Fatalf("Get before the replay: error = %v, want ErrUnavailable", err)
		}
		w := dst.NewWriter()
		for i := p.Base.Index + 1; i <= sn.State.Index; i++ {
			if err := w.AppendEntry(&m.entries[i-1]); err != nil {
				w.Discard()
				t.Fatalf("replay entry %d: %v", i, err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if dst.Restoring() || dst.State() != sn.State {
		t.Fatalf("after the load: restoring %v, state %+v; want %+v", dst.Restoring(), dst.State(), sn.State)
	}
}

func TestRestore_ResumeSameState(t *testing.T) {
	clock := newFakeClock()
	src, dst, _, m := resumeSetup(t, clock)
	resume(t, src, dst, m)
	checkGet(t, dst, m, 1)
	checkScan(t, dst, m, 1)
}

// TestRestore_ResumeNewerState resumes a load from a state where keys after
// the cut were written more than once since the load's base, then follows
// the source and trims. Reads at every index the replica keeps must match
// the source's history.
func TestRestore_ResumeNewerState(t *testing.T) {
	clock := newFakeClock()
	src, dst, dstOpts, m := resumeSetup(t, clock,
		[]argent.Op{put("k", "2"), put("a", "2")}, // 2
		[]argent.Op{put("k", "3"), del("x")},      // 3: the state the load resumes from
	)
	resume(t, src, dst, m)
	checkGet(t, dst, m, 3)
	checkScan(t, dst, m, 3)

	// The source goes on a while later; the replica follows.
	clock.Advance(10 * time.Minute)
	commitAll(t, src, m, [][]argent.Op{{put("k", "4")}, {put("x", "5"), put("a", "5")}}, 1, clock.Now)
	follow(t, dst, m)
	for at := dst.Horizon(); at <= dst.Applied(); at++ {
		checkKeys(t, dst, m, at, "a", "k", "x")
		checkScan(t, dst, m, at)
	}
	// The replayed entries 2 and 3 are now older than the history window;
	// 4 and 5 are not. Reads from the horizon on stay exact.
	trimAll(t, dst)
	if h := dst.Horizon(); h != 3 {
		t.Fatalf("Horizon = %d, want 3", h)
	}
	for at := dst.Horizon(); at <= dst.Applied(); at++ {
		checkKeys(t, dst, m, at, "a", "k", "x")
		checkScan(t, dst, m, at)
	}
	// Trimming the replayed entries, below the horizon the load set, does
	// not lower it, in memory or on disk.
	dst = reopen(t, dst, "dst", dstOpts)
	defer func() { _ = dst.Close() }()
	if h := dst.Horizon(); h != 3 {
		t.Fatalf("Horizon after reopen = %d, want 3", h)
	}
	checkKeys(t, dst, m, 3, "a", "k", "x")
}

// checkKeys checks Get of the given keys at index at against the model.
func checkKeys(t *testing.T, s *kv.Store, m *model, at argent.Index, keys ...string) {
	t.Helper()
	for _, k := range keys {
		got, err := s.Get(context.Background(), []byte(k), at)
		want, ok := m.states[at][k]
		if ok != (err == nil) || (ok && (string(got.Value) != want.value || got.ModIndex != want.mod)) {
			t.Fatalf("Get(%q) at %d = %q@%d, %v; want %q@%d (present %v)", k, at, got.Value, got.ModIndex, err, want.value, want.mod, ok)
		}
		if !ok && !errors.Is(err, argent.ErrNotFound) {
			t.Fatalf("Get(%q) at %d: error = %v, want ErrNotFound", k, at, err)
		}
	}
}

func TestRestore_ResumeRefuses(t *testing.T) {
	clock := newFakeClock()
	src, dst, _, m := resumeSetup(t, clock, []argent.Op{put("k", "2")})
	// Nothing to resume on a store that is not loading.
	if _, err := src.ResumeRestore(src.Dataset(), src.State()); err == nil {
		t.Fatal("ResumeRestore on a serving store succeeded")
	}
	// Not from a state older than the load's base.
	if _, err := dst.ResumeRestore(src.Dataset(), argent.State{}); err == nil {
		t.Fatal("ResumeRestore from index 0 succeeded")
	}
	// Not from another dataset.
	if _, err := dst.ResumeRestore(argent.DatasetID{9}, src.State()); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Fatalf("ResumeRestore of another dataset: error = %v, want ErrDatasetMismatch", err)
	}
	// Records must follow the progress's last key.
	r, err := dst.ResumeRestore(src.Dataset(), src.State())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add([]byte("a"), 1, []byte("again")); !errors.Is(err, argent.ErrCorruption) {
		r.Abort()
		t.Fatalf("Add of a key before the last one: error = %v, want ErrCorruption", err)
	}
	r.Abort()
	// A replay whose chain at the target differs from the snapshot's is
	// refused: the snapshot came from another history.
	sn, err := src.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	p, _ := dst.RestoreProgress()
	r, err = dst.ResumeRestore(sn.Dataset, sn.State)
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Records(p.LastKey, r.Add); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(r.Records()); err != nil {
		t.Fatal(err)
	}
	// other follows entry 1 correctly, but does not reach the target chain.
	other := argent.Entry{Index: 2, Time: m.entries[1].Time, Ops: []argent.Op{put("k", "forged")}}
	other.Chain = wire.NextChain(m.chains[1], &other)
	w := dst.NewWriter()
	defer w.Discard()
	if err := w.AppendEntry(&other); !errors.Is(err, argent.ErrChainMismatch) {
		t.Fatalf("replay of another history: error = %v, want ErrChainMismatch", err)
	}
}
