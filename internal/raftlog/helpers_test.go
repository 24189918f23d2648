package raftlog_test

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent/internal/raftlog"
)

// seedFlag fixes the seed of the randomized tests, to replay a failure they
// logged.
var seedFlag = flag.Uint64("raftlog.seed", 0, "seed for the randomized tests (0: from the clock)")

// testSeed returns the seed for a randomized test and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -raftlog.seed %d)", seed, seed)
	return seed
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// mustOpen opens the storage in dir on opts.FS (a new vfs.NewMem if nil, set
// in opts so that opts can reopen it) and closes it when the test ends.
func mustOpen(t testing.TB, dir string, opts *raftlog.Options) *raftlog.Storage {
	t.Helper()
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	s, err := raftlog.OpenWith(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen closes s and opens the storage again with opts.
func reopen(t testing.TB, s *raftlog.Storage, dir string, opts *raftlog.Options) *raftlog.Storage {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return mustOpen(t, dir, opts)
}

// index(i).terms(t1, t2, ...) are the entries i, i+1, ... of terms t1, t2,
// ..., as in go.etcd.io/raft's tests.
type index uint64

func (i index) terms(terms ...uint64) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, 0, len(terms))
	for k, term := range terms {
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i) + uint64(k)), Term: new(term)})
	}
	return ents
}

// variant is one way a storage answers reads: from its in-memory tail,
// from Pebble (reopened: the tail is empty), or with no tail at all.
type variant struct {
	name   string
	opts   func() *raftlog.Options
	reopen bool
}

var variants = []variant{
	{name: "Tail", opts: func() *raftlog.Options { return &raftlog.Options{} }},
	{name: "Pebble", opts: func() *raftlog.Options { return &raftlog.Options{} }, reopen: true},
	{name: "NoTail", opts: func() *raftlog.Options { return &raftlog.Options{TailBytes: -1} }},
}

// newLog returns a storage holding what raft.MemoryStorage{ents: ents}
// holds: ents[0] is the dummy entry at the base, the rest the log. It saves
// entries from index 1 (those before ents[0] of ents[0]'s term) and compacts
// to the base, so the latest snapshot stays empty, as in MemoryStorage.
func newLog(t testing.TB, v variant, ents []*raftpb.Entry) *raftlog.Storage {
	t.Helper()
	opts := v.opts()
	s := mustOpen(t, "raft", opts)
	base := ents[0].GetIndex()
	all := append(index(1).terms(repeat(ents[0].GetTerm(), int(base-1))...), ents...)
	if err := s.Save(nil, all, nil, true); err != nil {
		t.Fatalf("save: %v", err)
	}
	if err := s.Compact(base); err != nil {
		t.Fatalf("compact %d: %v", base, err)
	}
	if v.reopen {
		s = reopen(t, s, "raft", opts)
	}
	return s
}

func repeat(v uint64, n int) []uint64 {
	out := make([]uint64, n)
	for k := range out {
		out[k] = v
	}
	return out
}

// logOf returns the log of s as raft.MemoryStorage keeps it: the dummy
// entry at the base (index and term only), then every entry.
func logOf(t testing.TB, s *raftlog.Storage) []*raftpb.Entry {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	term, err := s.Term(first - 1)
	if err != nil {
		t.Fatalf("term of the base %d: %v", first-1, err)
	}
	out := []*raftpb.Entry{{Index: new(first - 1), Term: new(term)}}
	if last >= first {
		ents, err := s.Entries(first, last+1, raftNoLimit)
		if err != nil {
			t.Fatalf("entries [%d, %d): %v", first, last+1, err)
		}
		out = append(out, ents...)
	}
	return out
}

const raftNoLimit = 1<<64 - 1

// entriesEqual reports whether a and b hold equal entries.
func entriesEqual(a, b []*raftpb.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !proto.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}

func fmtEntries(ents []*raftpb.Entry) string {
	s := "["
	for k, e := range ents {
		if k > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d/%d", e.GetIndex(), e.GetTerm())
		if len(e.GetData()) > 0 {
			s += fmt.Sprintf("(%dB)", len(e.GetData()))
		}
	}
	return s + "]"
}
