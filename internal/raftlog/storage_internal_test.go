package raftlog

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
)

func testEntries(first uint64, n, size int) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, n)
	for k := range ents {
		ents[k] = &raftpb.Entry{Index: new(first + uint64(k)), Term: new(uint64(1)), Data: make([]byte, size)}
	}
	return ents
}

// newTestStorage returns a storage on a new in-memory file system holding
// entries 1..n of size bytes, closed when the test ends.
func newTestStorage(t *testing.T, fs vfs.FS, opts *Options, n, size int) *Storage {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	opts.FS = fs
	s, err := OpenWith("raft", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if n > 0 {
		if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(n))}, testEntries(1, n, size), nil, true); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// damage writes to the Pebble database of the storage in "raft" on fs,
// which must be closed, directly.
func damage(t *testing.T, fs vfs.FS, fn func(db *pebble.DB) error) {
	t.Helper()
	db, err := pebble.Open("raft", &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStorage_Corruption damages the bytes of a storage behind its back:
// each damage gives an error wrapping argent.ErrCorruption that names the
// index, from Open or from the read that meets it, and never a panic.
func TestStorage_Corruption(t *testing.T) {
	other, _ := proto.Marshal(&raftpb.Entry{Index: new(uint64(6)), Term: new(uint64(1))})
	tests := []struct {
		name   string
		damage func(db *pebble.DB) error
		read   func(s *Storage) error // nil: Open fails
		want   string
	}{
		{
			name:   "EntryGarbage",
			damage: func(db *pebble.DB) error { return db.Set(entryKey(5), []byte{0xff, 0xff, 0xff, 0x01}, pebble.Sync) },
			read:   func(s *Storage) error { _, err := s.Entries(1, 11, raftNoLimit); return err },
			want:   "entry 5 does not decode",
		},
		{
			name:   "EntryOfAnotherIndex",
			damage: func(db *pebble.DB) error { return db.Set(entryKey(5), other, pebble.Sync) },
			read:   func(s *Storage) error { _, err := s.Entries(3, 8, raftNoLimit); return err },
			want:   "the key of entry 5 holds entry 6",
		},
		{
			name:   "EntryMissing",
			damage: func(db *pebble.DB) error { return db.Delete(entryKey(5), pebble.Sync) },
			read:   func(s *Storage) error { _, err := s.Entries(1, 11, raftNoLimit); return err },
			want:   "entry 5 is missing",
		},
		{
			name:   "TermRecordGarbage",
			damage: func(db *pebble.DB) error { return db.Set(termKey(7), []byte("xx"), pebble.Sync) },
			read:   func(s *Storage) error { _, err := s.Term(7); return err },
			want:   "term record of index 7 has 2 bytes",
		},
		{
			name:   "LastEntryMissing",
			damage: func(db *pebble.DB) error { return db.Delete(entryKey(10), pebble.Sync) },
			want:   "spans entries 1..10 but holds entries 1..9",
		},
		{
			name:   "HardStateGarbage",
			damage: func(db *pebble.DB) error { return db.Set(keyHardState, []byte{0xff}, pebble.Sync) },
			want:   "mhardstate does not decode",
		},
		{
			name:   "FormatVersionDamaged",
			damage: func(db *pebble.DB) error { return db.Set(keyFormat, []byte{1}, pebble.Sync) },
			want:   "format version 01 in raft is damaged",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := newTestStorage(t, fs, &Options{TailBytes: -1}, 10, 100)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			damage(t, fs, tt.damage)
			s, err := OpenWith("raft", &Options{FS: fs})
			if err == nil {
				defer s.Close()
				if tt.read == nil {
					t.Fatal("Open succeeded")
				}
				err = tt.read(s)
			} else if tt.read != nil {
				t.Fatalf("Open: %v", err)
			}
			if !errors.Is(err, argent.ErrCorruption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrCorruption with %q", err, tt.want)
			}
		})
	}
}

func TestOpen_Refuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(db *pebble.DB) error
		want    string
		wantErr error
	}{
		{
			name:    "UnknownFormatVersion",
			prepare: func(db *pebble.DB) error { return db.Set(keyFormat, encodeUint64(FormatVersion+1), pebble.Sync) },
			want:    "holds a Raft log of format version 2; this build reads version 1 only",
			wantErr: argent.ErrCorruption,
		},
		{
			name:    "AnotherDatabase",
			prepare: func(db *pebble.DB) error { return db.Set([]byte("mformat"), encodeUint64(2), pebble.Sync) },
			want:    "holds a Pebble database that is not a Raft log",
			wantErr: argent.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			damage(t, fs, tt.prepare)
			s, err := OpenWith("raft", &Options{FS: fs})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v, want %v with %q", err, tt.wantErr, tt.want)
			}
		})
	}
}

// TestStorage_TailServesRecent checks that reads of the newest entries and
// their terms never reach Pebble, that older ones do, and that the tail
// stays within its budget.
func TestStorage_TailServesRecent(t *testing.T) {
	const n, size = 100, 1 << 10
	s := newTestStorage(t, vfs.NewMem(), &Options{TailBytes: 16 << 10}, n, size)
	if got := len(s.mu.tail.ents); got < 10 || got > 16 {
		t.Fatalf("the tail holds %d entries of 1 KiB within 16 KiB", got)
	}
	if b := s.mu.tail.bytesFrom(0); b > 16<<10 {
		t.Fatalf("the tail holds %d bytes, over its 16 KiB", b)
	}
	for i := uint64(n - 9); i <= n; i++ {
		if _, err := s.Term(i); err != nil {
			t.Fatal(err)
		}
	}
	if ents, err := s.Entries(n-9, n+1, raftNoLimit); err != nil || len(ents) != 10 {
		t.Fatalf("Entries: %d entries, %v", len(ents), err)
	}
	if r := s.reads.Load(); r != 0 {
		t.Fatalf("%d reads of recent entries went to Pebble", r)
	}
	ents, err := s.Entries(1, n+1, raftNoLimit)
	if err != nil || len(ents) != n {
		t.Fatalf("Entries(1, %d): %d entries, %v", n+1, len(ents), err)
	}
	if r := s.reads.Load(); r != 1 {
		t.Fatalf("%d reads went to Pebble for a read of the whole log, want 1", r)
	}
	if _, err := s.Term(1); err != nil {
		t.Fatal(err)
	}
	if r := s.reads.Load(); r != 2 {
		t.Fatalf("%d reads went to Pebble, want 2 after the term of the first entry", r)
	}
	// A truncation inside the tail keeps what is before it.
	if err := s.Save(nil, []*raftpb.Entry{{Index: new(uint64(n - 1)), Term: new(uint64(2))}}, nil, false); err != nil {
		t.Fatal(err)
	}
	if term, err := s.Term(n - 2); err != nil || term != 1 {
		t.Fatalf("Term(%d) = %d, %v after a truncation at %d", n-2, term, err, n-1)
	}
	if term, err := s.Term(n - 1); err != nil || term != 2 {
		t.Fatalf("Term(%d) = %d, %v; want 2", n-1, term, err)
	}
	if _, err := s.Term(n); err != raft.ErrUnavailable {
		t.Fatalf("Term(%d) = %v after the truncation, want ErrUnavailable", n, err)
	}
	if r := s.reads.Load(); r != 2 {
		t.Fatalf("%d reads went to Pebble, want still 2", r)
	}
}

// TestStorage_SaveBatchSize checks what makes Save copy an entry's data
// once (into the batch, encoded in place): the batch is allocated for at
// least what it ends up holding, so Pebble never grows it (growing copies
// it), and its first record is small, so Pebble does not size its buffer
// anew from that record either.
func TestStorage_SaveBatchSize(t *testing.T) {
	big := func(first uint64, n int) []*raftpb.Entry { return testEntries(first, n, 1<<20) }
	tests := []struct {
		name string
		hs   *raftpb.HardState
		ents []*raftpb.Entry
		snap *raftpb.Snapshot
	}{
		{name: "Append", ents: big(11, 3)},
		{name: "AppendWithHardState", hs: &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(12))}, ents: big(11, 3)},
		{name: "Truncate", ents: big(5, 2)},
		{name: "ManySmall", ents: testEntries(11, 500, 10)},
		{name: "HardStateOnly", hs: &raftpb.HardState{Term: new(uint64(2))}},
		{name: "Snapshot", snap: &raftpb.Snapshot{Data: make([]byte, 4<<10), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(30)), Term: new(uint64(2))}},
			ents: big(31, 2), hs: &raftpb.HardState{Term: new(uint64(2)), Commit: new(uint64(30))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStorage(t, vfs.NewMem(), nil, 10, 100)
			s.writeMu.Lock()
			defer s.writeMu.Unlock()
			p, err := s.prepareSave(tt.hs, tt.ents, tt.snap)
			if err != nil {
				t.Fatal(err)
			}
			defer p.b.Close()
			repr := p.b.Repr()
			if len(repr) > p.size {
				t.Fatalf("the batch holds %d bytes, more than the %d it was allocated for", len(repr), p.size)
			}
			r := p.b.Reader()
			_, _, v, ok, err := r.Next()
			if !ok || err != nil {
				t.Fatalf("first record: %v, %v", ok, err)
			}
			if len(v) > 256 {
				t.Fatalf("the first record of the batch has a value of %d bytes", len(v))
			}
		})
	}
}

const raftNoLimit = 1<<64 - 1
