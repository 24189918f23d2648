package raftlog_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent/internal/raftlog"
)

// TestStorage_Model runs random appends (with truncations), compactions,
// snapshots and reopens against a Storage and a raft.MemoryStorage side by
// side, and checks after each step that every raft.Storage method answers
// the same. Its tail is small, so reads mix entries from memory and from
// Pebble.
func TestStorage_Model(t *testing.T) {
	seed := testSeed(t)
	for run, tailBytes := range []int64{600, 1 << 20, -1} {
		t.Run(fmt.Sprint("Tail", tailBytes), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(run)))
			opts := &raftlog.Options{TailBytes: tailBytes}
			s := mustOpen(t, "raft", opts)
			m := raft.NewMemoryStorage()
			term := uint64(1)
			for step := range 250 {
				first, _ := m.FirstIndex()
				last, _ := m.LastIndex()
				base := first - 1
				snapshot, _ := m.Snapshot()
				snapIndex := snapshot.GetMetadata().GetIndex()
				var op string
				switch r := rng.IntN(100); {
				case r < 65:
					start := last + 1
					if rng.IntN(3) == 0 {
						start = base + uint64(rng.IntN(int(last-base)+2)) // may be at or before the base
						if start > 1 && rng.IntN(2) == 0 {
							start-- // one at or before the base now and then
						}
						start = max(start, 1)
						term++
					}
					ents := make([]*raftpb.Entry, 1+rng.IntN(4))
					for k := range ents {
						data := make([]byte, rng.IntN(300))
						for j := range data {
							data[j] = byte(rng.Uint32())
						}
						ents[k] = &raftpb.Entry{Index: new(start + uint64(k)), Term: new(term), Type: raftpb.EntryNormal.Enum(), Data: data}
					}
					hs := &raftpb.HardState{Term: new(term), Vote: new(uint64(1)), Commit: new(base)}
					op = fmt.Sprintf("save %s", fmtEntries(ents))
					if err := m.Append(ents); err != nil {
						t.Fatal(err)
					}
					if err := s.Save(hs, ents, nil, rng.IntN(2) == 0); err != nil {
						t.Fatalf("step %d: %s: %v", step, op, err)
					}
				case r < 78:
					i := base + uint64(rng.IntN(int(last-base)+1))
					op = fmt.Sprintf("compact %d", i)
					werr := m.Compact(i)
					if err := s.Compact(i); err != werr {
						t.Fatalf("step %d: %s: %v, MemoryStorage: %v", step, op, err, werr)
					}
				case r < 86:
					if last < max(snapIndex+1, base) {
						continue
					}
					lo := max(snapIndex+1, base)
					i := lo + uint64(rng.IntN(int(last-lo)+1))
					cs := &raftpb.ConfState{Voters: []uint64{1, uint64(2 + rng.IntN(3))}}
					op = fmt.Sprintf("create snapshot %d", i)
					want, werr := m.CreateSnapshot(i, cs, []byte(op))
					got, err := s.CreateSnapshot(i, cs, []byte(op))
					if err != werr || !proto.Equal(got, want) {
						t.Fatalf("step %d: %s: %v, %v; MemoryStorage: %v, %v", step, op, got, err, want, werr)
					}
				case r < 92:
					i := snapIndex + uint64(rng.IntN(max(int(last)-int(snapIndex), 0)+3)) // now and then out of date
					if i == 0 {
						continue // an empty snapshot, which Save ignores
					}
					term++
					snap := &raftpb.Snapshot{Data: []byte("applied"), Metadata: &raftpb.SnapshotMetadata{
						Index: new(i), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
					op = fmt.Sprintf("apply snapshot %d/%d", i, term)
					werr := m.ApplySnapshot(snap)
					if err := s.Save(nil, nil, snap, true); err != werr {
						t.Fatalf("step %d: %s: %v, MemoryStorage: %v", step, op, err, werr)
					}
				default:
					op = "reopen"
					s = reopen(t, s, "raft", opts)
				}
				checkSame(t, fmt.Sprintf("step %d (%s)", step, op), rng, s, m)
			}
		})
	}
}

// checkSame fails t unless s answers every raft.Storage method as m does.
func checkSame(t *testing.T, at string, rng *rand.Rand, s *raftlog.Storage, m *raft.MemoryStorage) {
	t.Helper()
	first, _ := m.FirstIndex()
	last, _ := m.LastIndex()
	if got, err := s.FirstIndex(); err != nil || got != first {
		t.Fatalf("%s: FirstIndex() = %d, %v; want %d", at, got, err, first)
	}
	if got, err := s.LastIndex(); err != nil || got != last {
		t.Fatalf("%s: LastIndex() = %d, %v; want %d", at, got, err, last)
	}
	for i := max(first, 2) - 2; i <= last+1; i++ {
		want, werr := m.Term(i)
		if got, err := s.Term(i); got != want || err != werr {
			t.Fatalf("%s: Term(%d) = %d, %v; want %d, %v", at, i, got, err, want, werr)
		}
	}
	var total int64
	if last >= first {
		ents, _ := m.Entries(first, last+1, raftNoLimit)
		for _, e := range ents {
			total += int64(proto.Size(e))
		}
	}
	if got := s.Bytes(); got != total {
		t.Fatalf("%s: Bytes() = %d, want %d", at, got, total)
	}
	for range 5 {
		loMin := max(first-1, 1)
		lo := loMin + uint64(rng.IntN(int(last)+2-int(loMin)))
		hi := lo + uint64(rng.IntN(int(last)+2-int(lo)))
		maxSize := uint64(rng.IntN(1500))
		want, werr := m.Entries(lo, hi, maxSize)
		got, err := s.Entries(lo, hi, maxSize)
		if err != werr || !entriesEqual(got, want) {
			t.Fatalf("%s: Entries(%d, %d, %d) = %s, %v; want %s, %v", at, lo, hi, maxSize, fmtEntries(got), err, fmtEntries(want), werr)
		}
	}
	want, _ := m.Snapshot()
	if got, err := s.Snapshot(); err != nil || !proto.Equal(got, want) {
		t.Fatalf("%s: Snapshot() = %v, %v; want %v", at, got, err, want)
	}
}
