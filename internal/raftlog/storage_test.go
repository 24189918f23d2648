package raftlog_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/raftlog"
)

// state is everything a Storage answers, to compare two of them.
type state struct {
	hs          *raftpb.HardState
	cs          *raftpb.ConfState
	snap        *raftpb.Snapshot
	first, last uint64
	log         []*raftpb.Entry
	bytes       int64
	empty       bool
}

func stateOf(t *testing.T, s *raftlog.Storage) state {
	t.Helper()
	hs, cs, err := s.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	return state{hs: hs, cs: cs, snap: snap, first: first, last: last, log: logOf(t, s), bytes: s.Bytes(), empty: s.Empty()}
}

func checkState(t *testing.T, what string, got, want state) {
	t.Helper()
	if d := diffState(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// diffState describes the first difference between got and want ("": none).
func diffState(got, want state) string {
	switch {
	case !proto.Equal(got.hs, want.hs):
		return fmt.Sprintf("hard state %v, want %v", got.hs, want.hs)
	case !proto.Equal(got.cs, want.cs):
		return fmt.Sprintf("conf state %v, want %v", got.cs, want.cs)
	case !proto.Equal(got.snap, want.snap):
		return fmt.Sprintf("snapshot %v, want %v", got.snap, want.snap)
	case got.first != want.first || got.last != want.last:
		return fmt.Sprintf("first and last index %d, %d; want %d, %d", got.first, got.last, want.first, want.last)
	case !entriesEqual(got.log, want.log):
		return fmt.Sprintf("log %s, want %s", fmtEntries(got.log), fmtEntries(want.log))
	case got.bytes != want.bytes:
		return fmt.Sprintf("Bytes() = %d, want %d", got.bytes, want.bytes)
	case got.empty != want.empty:
		return fmt.Sprintf("Empty() = %v, want %v", got.empty, want.empty)
	}
	return ""
}

func withData(ents []*raftpb.Entry, size int) []*raftpb.Entry {
	for _, e := range ents {
		e.Data = make([]byte, size)
		for k := range e.Data {
			e.Data[k] = byte(e.GetIndex()) + byte(k)
		}
	}
	return ents
}

// TestStorage_Reopen checks that a storage opened again answers as it did
// before Close, at each stage of a member's life.
func TestStorage_Reopen(t *testing.T) {
	opts := &raftlog.Options{}
	s := mustOpen(t, "raft", opts)
	steps := []struct {
		name string
		do   func() error
	}{
		{name: "New", do: func() error { return nil }},
		{name: "ConfState", do: func() error {
			return s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}, 0)
		}},
		{name: "Entries", do: func() error {
			hs := &raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(5))}
			return s.Save(hs, withData(index(1).terms(1, 1, 2, 2, 2, 2, 2, 2), 100), nil, true)
		}},
		{name: "Truncated", do: func() error {
			hs := &raftpb.HardState{Term: new(uint64(3)), Vote: new(uint64(2)), Commit: new(uint64(6))}
			return s.Save(hs, withData(index(7).terms(3), 50), nil, false)
		}},
		{name: "SnapshotAndCompact", do: func() error {
			if _, err := s.CreateSnapshot(5, &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}, []byte("at 5")); err != nil {
				return err
			}
			return s.Compact(4)
		}},
		{name: "ConfStateAfterSnapshot", do: func() error {
			return s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3, 4}}, 6)
		}},
		{name: "AppliedSnapshot", do: func() error {
			snap := &raftpb.Snapshot{Data: []byte("from the leader"), Metadata: &raftpb.SnapshotMetadata{
				Index: new(uint64(20)), Term: new(uint64(4)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3, 5}}}}
			hs := &raftpb.HardState{Term: new(uint64(4)), Commit: new(uint64(22))}
			return s.Save(hs, withData(index(21).terms(4, 4), 10), snap, true)
		}},
	}
	top := t // owns the reopened storages, which outlive each step
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, s)
			s = reopen(top, s, "raft", opts)
			checkState(t, "reopened", stateOf(t, s), before)
		})
	}
	// The end state, spelt out.
	got := stateOf(t, s)
	if got.first != 21 || got.last != 22 || got.snap.GetMetadata().GetIndex() != 20 || got.hs.GetCommit() != 22 {
		t.Fatalf("end state: first %d last %d snapshot %d commit %d; want 21, 22, 20, 22", got.first, got.last, got.snap.GetMetadata().GetIndex(), got.hs.GetCommit())
	}
	// The snapshot (index 20) is newer than SetConfState's index 6.
	if want := []uint64{1, 2, 3, 5}; !proto.Equal(got.cs, raftpb.EnsureConfState(&raftpb.ConfState{Voters: want})) {
		t.Fatalf("conf state %v, want voters %v", got.cs, want)
	}
}

func TestStorage_Empty(t *testing.T) {
	tests := []struct {
		name string
		do   func(s *raftlog.Storage) error
		want bool
	}{
		{name: "New", do: func(*raftlog.Storage) error { return nil }, want: true},
		{name: "EmptyReady", do: func(s *raftlog.Storage) error { return s.Save(nil, nil, nil, true) }, want: true},
		{name: "EmptyHardState", do: func(s *raftlog.Storage) error { return s.Save(&raftpb.HardState{}, nil, nil, true) }, want: true},
		{name: "HardState", do: func(s *raftlog.Storage) error {
			return s.Save(&raftpb.HardState{Term: new(uint64(1))}, nil, nil, true)
		}},
		{name: "Entry", do: func(s *raftlog.Storage) error { return s.Save(nil, index(1).terms(1), nil, true) }},
		{name: "ConfState", do: func(s *raftlog.Storage) error { return s.SetConfState(&raftpb.ConfState{Voters: []uint64{1}}, 0) }},
		{name: "Snapshot", do: func(s *raftlog.Storage) error {
			return s.Save(nil, nil, &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(1))}}, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &raftlog.Options{}
			s := mustOpen(t, "raft", opts)
			if err := tt.do(s); err != nil {
				t.Fatal(err)
			}
			if got := s.Empty(); got != tt.want {
				t.Fatalf("Empty() = %v, want %v", got, tt.want)
			}
			if got := reopen(t, s, "raft", opts).Empty(); got != tt.want {
				t.Fatalf("Empty() after reopen = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStorage_SaveRefuses(t *testing.T) {
	tests := []struct {
		name string
		ents []*raftpb.Entry
	}{
		{name: "Gap", ents: index(7).terms(2)},
		{name: "NotConsecutive", ents: append(index(6).terms(2), index(8).terms(2)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLog(t, variants[0], index(3).terms(3, 4, 5))
			before := stateOf(t, s)
			hs := &raftpb.HardState{Term: new(uint64(9))}
			if err := s.Save(hs, tt.ents, nil, true); !errors.Is(err, argent.ErrInvalid) {
				t.Fatalf("Save(%s) = %v, want ErrInvalid", fmtEntries(tt.ents), err)
			}
			checkState(t, "after a refused Save", stateOf(t, s), before)
		})
	}
}

func TestStorage_OutOfRange(t *testing.T) {
	s := newLog(t, variants[0], index(3).terms(3, 4, 5))
	if _, err := s.Entries(4, 7, raftNoLimit); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("Entries past the last index: %v, want ErrUnavailable", err)
	}
	if err := s.Compact(6); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("Compact past the last index: %v, want ErrUnavailable", err)
	}
	if _, err := s.CreateSnapshot(6, nil, nil); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("CreateSnapshot past the last index: %v, want ErrUnavailable", err)
	}
	if _, err := s.CreateSnapshot(2, nil, nil); err != raft.ErrCompacted {
		t.Errorf("CreateSnapshot before the base: %v, want ErrCompacted", err)
	}
	if _, err := s.CreateSnapshot(4, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(4, nil, nil); err != raft.ErrSnapOutOfDate {
		t.Errorf("CreateSnapshot at the latest snapshot: %v, want ErrSnapOutOfDate", err)
	}
}

func TestStorage_Closed(t *testing.T) {
	s := mustOpen(t, "raft", &raftlog.Options{})
	if err := s.Save(nil, index(1).terms(1), nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{
		"Save":           s.Save(nil, index(2).terms(1), nil, true),
		"Compact":        s.Compact(1),
		"SetConfState":   s.SetConfState(&raftpb.ConfState{}, 0),
		"Entries":        second(s.Entries(1, 2, raftNoLimit)),
		"Term":           second(s.Term(1)),
		"FirstIndex":     second(s.FirstIndex()),
		"LastIndex":      second(s.LastIndex()),
		"Snapshot":       second(s.Snapshot()),
		"CreateSnapshot": second(s.CreateSnapshot(1, nil, nil)),
	}
	_, _, calls["InitialState"] = s.InitialState()
	for name, err := range calls {
		if !errors.Is(err, argent.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestStorage_FsyncFailure injects an I/O error into Pebble's fsync: Save
// returns an error wrapping ErrStorageFailed (Pebble's Fatalf does not
// crash the process), and every later write is refused.
func TestStorage_FsyncFailure(t *testing.T) {
	var inject atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if inject.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	s, err := raftlog.Open("raft", fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(nil, index(1).terms(1), nil, true); err != nil {
		t.Fatal(err)
	}
	inject.Store(true)
	if err := s.Save(nil, index(2).terms(1), nil, true); !errors.Is(err, raftlog.ErrStorageFailed) || !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("Save with a failing fsync: %v, want ErrStorageFailed", err)
	}
	inject.Store(false)
	if err := s.Save(nil, index(2).terms(1), nil, false); !errors.Is(err, raftlog.ErrStorageFailed) {
		t.Fatalf("Save after the failure: %v, want ErrStorageFailed", err)
	}
	if err := s.Failed(); !errors.Is(err, raftlog.ErrStorageFailed) {
		t.Fatalf("Failed() = %v", err)
	}
	if last, _ := s.LastIndex(); last != 1 {
		t.Fatalf("LastIndex() = %d after the failed Save, want 1", last)
	}
	if err := s.Close(); err != nil {
		t.Logf("close after the failure: %v", err)
	}
}

// TestStorage_Concurrent reads (Entries, Term, Bytes, FirstIndex) from
// other goroutines while one writes, compacts and snapshots, for the race
// detector, and checks each read is consistent.
func TestStorage_Concurrent(t *testing.T) {
	s := mustOpen(t, "raft", &raftlog.Options{TailBytes: 4 << 10})
	const n = 600
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for !done.Load() {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				if last < first {
					continue
				}
				ents, err := s.Entries(first, last+1, 8<<10)
				if err == raft.ErrCompacted {
					continue // compacted meanwhile
				}
				if err != nil && !errors.Is(err, raft.ErrUnavailable) { // truncated meanwhile
					t.Errorf("Entries(%d, %d): %v", first, last+1, err)
					return
				}
				for k, e := range ents {
					if e.GetIndex() != first+uint64(k) || len(e.GetData()) != 100 {
						t.Errorf("Entries(%d, %d)[%d] = %d with %d bytes", first, last+1, k, e.GetIndex(), len(e.GetData()))
						return
					}
				}
				if _, err := s.Term(last); err != nil && err != raft.ErrCompacted && err != raft.ErrUnavailable {
					t.Errorf("Term(%d): %v", last, err)
					return
				}
				if b := s.Bytes(); b < 0 {
					t.Errorf("Bytes() = %d", b)
					return
				}
			}
		})
	}
	for i := uint64(1); i <= n; i++ {
		ents := withData(index(i).terms(1+i/100), 100)
		if err := s.Save(&raftpb.HardState{Term: new(1 + i/100), Commit: new(i - 1)}, ents, nil, false); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if _, err := s.CreateSnapshot(i-10, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(i - 20); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
}

// The caller's records (members, disk alarms, published index) survive a
// reopen, and each holds what was set last.
func TestStorage_CallerRecords(t *testing.T) {
	opts := &raftlog.Options{}
	s := mustOpen(t, "raft", opts)
	tests := []struct {
		name string
		set  func(v []byte) error
		get  func(*raftlog.Storage) ([]byte, error)
	}{
		{name: "Members", set: s.SetMembers, get: (*raftlog.Storage).Members},
		{name: "Alarms", set: s.SetAlarms, get: (*raftlog.Storage).Alarms},
	}
	for _, tc := range tests {
		if v, err := tc.get(s); err != nil || v != nil {
			t.Fatalf("%s before any set = %q, %v; want nil", tc.name, v, err)
		}
		for _, v := range []string{"first", "second"} {
			if err := tc.set([]byte(tc.name + v)); err != nil {
				t.Fatalf("set %s: %v", tc.name, err)
			}
		}
	}
	if err := s.SetPublished(42, true); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, "raft", opts)
	for _, tc := range tests {
		if v, err := tc.get(s); err != nil || string(v) != tc.name+"second" {
			t.Errorf("%s after reopen = %q, %v; want %q", tc.name, v, err, tc.name+"second")
		}
	}
	if i, err := s.Published(); err != nil || i != 42 {
		t.Errorf("Published after reopen = %d, %v; want 42", i, err)
	}
}
