package raftlog_test

// The tables of go.etcd.io/raft/v3's storage_test.go (v3.7.0), run against
// Storage in each variant (reads from the tail, from Pebble after a reopen,
// and with no tail), so that it answers as raft.MemoryStorage does.

import (
	"errors"
	"math"
	"testing"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestStorage_Term(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		name  string
		i     uint64
		werr  error
		wterm uint64
	}{
		{name: "BeforeBase", i: 2, werr: raft.ErrCompacted},
		{name: "Base", i: 3, wterm: 3},
		{name: "First", i: 4, wterm: 4},
		{name: "Last", i: 5, wterm: 5},
		{name: "AfterLast", i: 6, werr: raft.ErrUnavailable},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := newLog(t, v, ents)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					term, err := s.Term(tt.i)
					if err != tt.werr || term != tt.wterm {
						t.Fatalf("Term(%d) = %d, %v; want %d, %v", tt.i, term, err, tt.wterm, tt.werr)
					}
				})
			}
		})
	}
}

func TestStorage_Entries(t *testing.T) {
	ents := index(3).terms(3, 4, 5, 6)
	size := func(k ...int) uint64 {
		var n uint64
		for _, i := range k {
			n += uint64(proto.Size(ents[i]))
		}
		return n
	}
	tests := []struct {
		name        string
		lo, hi, max uint64
		werr        error
		wentries    []*raftpb.Entry
	}{
		{name: "BeforeBase", lo: 2, hi: 6, max: math.MaxUint64, werr: raft.ErrCompacted},
		{name: "AtBase", lo: 3, hi: 4, max: math.MaxUint64, werr: raft.ErrCompacted},
		{name: "One", lo: 4, hi: 5, max: math.MaxUint64, wentries: index(4).terms(4)},
		{name: "Two", lo: 4, hi: 6, max: math.MaxUint64, wentries: index(4).terms(4, 5)},
		{name: "All", lo: 4, hi: 7, max: math.MaxUint64, wentries: index(4).terms(4, 5, 6)},
		// Even if maxSize is zero, the first entry is returned.
		{name: "ZeroMax", lo: 4, hi: 7, max: 0, wentries: index(4).terms(4)},
		{name: "MaxTwo", lo: 4, hi: 7, max: size(1, 2), wentries: index(4).terms(4, 5)},
		{name: "MaxTwoAndAHalf", lo: 4, hi: 7, max: size(1, 2) + size(3)/2, wentries: index(4).terms(4, 5)},
		{name: "MaxAllButOneByte", lo: 4, hi: 7, max: size(1, 2, 3) - 1, wentries: index(4).terms(4, 5)},
		{name: "MaxAll", lo: 4, hi: 7, max: size(1, 2, 3), wentries: index(4).terms(4, 5, 6)},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := newLog(t, v, ents)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := s.Entries(tt.lo, tt.hi, tt.max)
					if err != tt.werr || !entriesEqual(got, tt.wentries) {
						t.Fatalf("Entries(%d, %d, %d) = %s, %v; want %s, %v", tt.lo, tt.hi, tt.max, fmtEntries(got), err, fmtEntries(tt.wentries), tt.werr)
					}
				})
			}
		})
	}
}

func TestStorage_LastIndex(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := newLog(t, v, index(3).terms(3, 4, 5))
			if last, err := s.LastIndex(); err != nil || last != 5 {
				t.Fatalf("LastIndex() = %d, %v; want 5", last, err)
			}
			if err := s.Save(nil, index(6).terms(5), nil, false); err != nil {
				t.Fatal(err)
			}
			if last, err := s.LastIndex(); err != nil || last != 6 {
				t.Fatalf("LastIndex() after an append = %d, %v; want 6", last, err)
			}
		})
	}
}

func TestStorage_FirstIndex(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := newLog(t, v, index(3).terms(3, 4, 5))
			if first, err := s.FirstIndex(); err != nil || first != 4 {
				t.Fatalf("FirstIndex() = %d, %v; want 4", first, err)
			}
			if err := s.Compact(4); err != nil {
				t.Fatal(err)
			}
			if first, err := s.FirstIndex(); err != nil || first != 5 {
				t.Fatalf("FirstIndex() after Compact(4) = %d, %v; want 5", first, err)
			}
		})
	}
}

func TestStorage_Compact(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		name   string
		i      uint64
		werr   error
		windex uint64 // of the dummy entry
		wterm  uint64
		wlen   int // with the dummy entry
	}{
		{name: "BeforeBase", i: 2, werr: raft.ErrCompacted, windex: 3, wterm: 3, wlen: 3},
		{name: "AtBase", i: 3, werr: raft.ErrCompacted, windex: 3, wterm: 3, wlen: 3},
		{name: "One", i: 4, windex: 4, wterm: 4, wlen: 2},
		{name: "All", i: 5, windex: 5, wterm: 5, wlen: 1},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := newLog(t, v, ents)
					if err := s.Compact(tt.i); err != tt.werr {
						t.Fatalf("Compact(%d) = %v, want %v", tt.i, err, tt.werr)
					}
					got := logOf(t, s)
					if got[0].GetIndex() != tt.windex || got[0].GetTerm() != tt.wterm || len(got) != tt.wlen {
						t.Fatalf("after Compact(%d): log %s, want base %d/%d and %d entries with it", tt.i, fmtEntries(got), tt.windex, tt.wterm, tt.wlen)
					}
				})
			}
		})
	}
}

func TestStorage_CreateSnapshot(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	data := []byte("data")
	snap := func(i, term uint64) *raftpb.Snapshot {
		return &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(i), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	}
	tests := []struct {
		name  string
		i     uint64
		werr  error
		wsnap *raftpb.Snapshot
	}{
		{name: "First", i: 4, wsnap: snap(4, 4)},
		{name: "Last", i: 5, wsnap: snap(5, 5)},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := newLog(t, v, ents)
					got, err := s.CreateSnapshot(tt.i, cs, data)
					if err != tt.werr || !proto.Equal(got, tt.wsnap) {
						t.Fatalf("CreateSnapshot(%d) = %v, %v; want %v, %v", tt.i, got, err, tt.wsnap, tt.werr)
					}
					// Snapshot gives every field set, as MemoryStorage.Snapshot does.
					want := raftpb.EnsureSnapshot(proto.Clone(tt.wsnap).(*raftpb.Snapshot))
					if latest, err := s.Snapshot(); err != nil || !proto.Equal(latest, want) {
						t.Fatalf("Snapshot() = %v, %v; want %v", latest, err, want)
					}
				})
			}
		})
	}
}

// TestStorage_Append is raft's TestStorageAppend with Save in place of
// MemoryStorage.Append.
func TestStorage_Append(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		name     string
		entries  []*raftpb.Entry
		wentries []*raftpb.Entry
	}{
		{name: "AllCompacted", entries: index(1).terms(1, 2), wentries: index(3).terms(3, 4, 5)},
		{name: "Same", entries: index(3).terms(3, 4, 5), wentries: index(3).terms(3, 4, 5)},
		{name: "ReplaceTwo", entries: index(3).terms(3, 6, 6), wentries: index(3).terms(3, 6, 6)},
		{name: "SameAndOneMore", entries: index(3).terms(3, 4, 5, 5), wentries: index(3).terms(3, 4, 5, 5)},
		// Truncate incoming entries, truncate the existing entries and append.
		{name: "SkipCompactedAndTruncate", entries: index(2).terms(3, 3, 5), wentries: index(3).terms(3, 5)},
		// Truncate the existing entries and append.
		{name: "Truncate", entries: index(4).terms(5), wentries: index(3).terms(3, 5)},
		// Direct append.
		{name: "Append", entries: index(6).terms(5), wentries: index(3).terms(3, 4, 5, 5)},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s := newLog(t, v, ents)
					if err := s.Save(nil, tt.entries, nil, false); err != nil {
						t.Fatalf("Save(%s) = %v", fmtEntries(tt.entries), err)
					}
					if got := logOf(t, s); !entriesEqual(got, tt.wentries) {
						t.Fatalf("after Save(%s): log %s, want %s", fmtEntries(tt.entries), fmtEntries(got), fmtEntries(tt.wentries))
					}
				})
			}
		})
	}
}

// TestStorage_ApplySnapshot is raft's TestStorageApplySnapshot with Save in
// place of MemoryStorage.ApplySnapshot.
func TestStorage_ApplySnapshot(t *testing.T) {
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	data := []byte("data")
	tests := []struct {
		name      string
		snapshots []*raftpb.Snapshot
		werr      error
	}{
		{
			name: "Normal",
			snapshots: []*raftpb.Snapshot{
				{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(4)), Term: new(uint64(4)), ConfState: cs}},
			},
		},
		{
			name: "OutOfDate",
			snapshots: []*raftpb.Snapshot{
				{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(4)), Term: new(uint64(4)), ConfState: cs}},
				{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(3)), ConfState: cs}},
			},
			werr: raft.ErrSnapOutOfDate,
		},
		{
			name: "BootstrapWithConfState",
			snapshots: []*raftpb.Snapshot{
				{Data: data, Metadata: &raftpb.SnapshotMetadata{ConfState: cs}},
			},
		},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					opts := v.opts()
					s := mustOpen(t, "raft", opts)
					var err error
					for _, sn := range tt.snapshots {
						err = s.Save(nil, nil, sn, true)
					}
					if !errors.Is(err, tt.werr) {
						t.Fatalf("Save(snapshots) = %v, want %v", err, tt.werr)
					}
				})
			}
		})
	}
}
