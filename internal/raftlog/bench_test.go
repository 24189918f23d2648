package raftlog_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent/internal/raftlog"
)

// BenchmarkStorage_Save appends one entry per Save, as the group does for
// each merged batch, on the OS file system, compacting as a member would.
func BenchmarkStorage_Save(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		for _, sync := range []bool{false, true} {
			b.Run(fmt.Sprintf("Size%d/Sync%v", size, sync), func(b *testing.B) {
				s := mustOpen(b, b.TempDir(), &raftlog.Options{FS: vfs.Default})
				data := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				i := uint64(0)
				for b.Loop() {
					i++
					e := &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Data: data}
					hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(i - 1)}
					if err := s.Save(hs, []*raftpb.Entry{e}, nil, sync); err != nil {
						b.Fatal(err)
					}
					if i%1000 == 0 {
						if err := s.Compact(i - 100); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkStorage_Entries reads 16 entries of 4 KiB from the tail and,
// with no tail, from Pebble.
func BenchmarkStorage_Entries(b *testing.B) {
	for _, v := range []struct {
		name string
		tail int64
	}{{"Tail", 0}, {"Pebble", -1}} {
		b.Run(v.name, func(b *testing.B) {
			s := mustOpen(b, "raft", &raftlog.Options{TailBytes: v.tail})
			const n = 1000
			if err := s.Save(nil, withData(index(1).terms(repeat(1, n)...), 4<<10), nil, false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			lo := uint64(n - 15)
			for b.Loop() {
				ents, err := s.Entries(lo, n+1, raftNoLimit)
				if err != nil || len(ents) != 16 {
					b.Fatal(len(ents), err)
				}
			}
		})
	}
}
