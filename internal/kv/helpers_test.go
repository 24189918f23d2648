package kv_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/wire"
)

// seedFlag fixes the seed of the randomized tests that are not driven by
// rapid (crash, concurrency), to replay a failure they logged.
var seedFlag = flag.Uint64("kv.seed", 0, "seed for the crash and concurrency tests (0: from the clock)")

// testSeed returns the seed for a randomized test and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -kv.seed %d)", seed, seed)
	return seed
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Under -race, Pebble turns on its invariant checks, which record a
	// stack trace for every sstable iterator: the model test becomes about
	// 50 times slower. It is single-threaded, so it runs 20 random cases
	// then instead of 100, unless -rapid.checks is given.
	if raceEnabled {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
		if !set {
			_ = flag.Set("rapid.checks", "20")
		}
	}
	code := m.Run()
	closeBenchFixtures()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// tb is what the helpers need from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// mustOpen opens a store in dir on opts.FS (setting it to a new vfs.NewMem
// if nil, so that opts can reopen the same store) and closes it when the
// test ends.
func mustOpen(t testing.TB, dir string, opts *kv.Options) *kv.Store {
	t.Helper()
	if opts == nil {
		opts = &kv.Options{}
	}
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	s, err := kv.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen closes s and opens the store again on the same file system.
func reopen(t tb, s *kv.Store, dir string, opts *kv.Options) *kv.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := kv.Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return s2
}

// fakeClock is a clock for Options.Now that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// mval is a live key's value and mod index in the model.
type mval struct {
	value string
	mod   argent.Index
}

// model is the reference for a store: the full state at every index, every
// entry, and the chain hash at every index.
type model struct {
	states  []map[string]mval // states[i]: the state at index i
	entries []argent.Entry    // entries[i-1]: entry i
	chains  []argent.Hash     // chains[i]: the chain hash at index i
	times   []int64           // times[i]: the commit time of index i
}

func newModel() *model {
	return &model{states: []map[string]mval{{}}, chains: []argent.Hash{{}}, times: []int64{0}}
}

func (m *model) applied() argent.Index { return argent.Index(len(m.states) - 1) }

// applyOps returns the state after applying ops to prev at index i.
func applyOps(prev map[string]mval, ops []argent.Op, i argent.Index) map[string]mval {
	next := make(map[string]mval, len(prev)+len(ops))
	for k, v := range prev {
		next[k] = v
	}
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut:
			next[string(op.Key)] = mval{value: string(op.Value), mod: i}
		case argent.OpDelete:
			delete(next, string(op.Key))
		case argent.OpDeletePrefix:
			for k := range next {
				if strings.HasPrefix(k, string(op.Key)) {
					delete(next, k)
				}
			}
		}
	}
	return next
}

// next returns the entry a Writer's Append(ops, now) makes after the
// model's last index, without adding it.
func (m *model) next(ops []argent.Op, now time.Time) argent.Entry {
	t := now.UnixNano()
	if last := m.times[len(m.times)-1]; t < last {
		t = last
	}
	e := argent.Entry{Index: m.applied() + 1, Time: t, Ops: ops}
	e.Chain = wire.NextChain(m.chains[len(m.chains)-1], &e)
	return e
}

// add appends an entry made by next.
func (m *model) add(e argent.Entry) {
	if e.Index != m.applied()+1 {
		panic(fmt.Sprintf("model: add entry %d after %d", e.Index, m.applied()))
	}
	m.states = append(m.states, applyOps(m.states[len(m.states)-1], e.Ops, e.Index))
	m.entries = append(m.entries, e)
	m.chains = append(m.chains, e.Chain)
	m.times = append(m.times, e.Time)
}

// scan returns the model's live keys with prefix at index at, in order.
func (m *model) scan(prefix string, at argent.Index) []argent.Item {
	var items []argent.Item
	for k, v := range m.states[at] {
		if strings.HasPrefix(k, prefix) {
			items = append(items, argent.Item{Key: []byte(k), Value: argent.Value{Value: []byte(v.value), ModIndex: v.mod}})
		}
	}
	sort.Slice(items, func(i, j int) bool { return bytes.Compare(items[i].Key, items[j].Key) < 0 })
	return items
}

// logHeld returns the bytes the store counts for log entries from..applied.
func (m *model) logHeld(from argent.Index) uint64 {
	var n uint64
	for i := from; i <= m.applied(); i++ {
		n += uint64(len(wire.AppendEntry(nil, &m.entries[i-1])))
	}
	return n
}

// The key space of the model tests: few keys, many shared prefixes, and
// 0xff bytes at the top of the order.
var (
	testKeys     = []string{"a", "aa", "ab", "a/", "a/x", "a/y", "a/x/1", "b", "b/", "b/x", "ba", "c", "\xff", "\xff\xff"}
	testPrefixes = []string{"", "a", "a/", "a/x", "b", "b/", "ba", "c", "d", "\xff", "\xff\xff"}
)

// randomOps returns 1..maxOps random ops over testKeys, some of them on one
// key twice in a row (put then delete, delete then put).
func randomOps(rng *rand.Rand, maxOps int) []argent.Op {
	n := 1 + rng.IntN(maxOps)
	var ops []argent.Op
	for len(ops) < n {
		key := []byte(testKeys[rng.IntN(len(testKeys))])
		val := []byte(fmt.Sprintf("v%d", rng.IntN(1000)))
		if rng.IntN(8) == 0 {
			val = []byte{}
		}
		switch r := rng.IntN(20); {
		case r < 9:
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: key, Value: val})
		case r < 14:
			ops = append(ops, argent.Op{Type: argent.OpDelete, Key: key})
		case r < 16:
			p := testPrefixes[1+rng.IntN(len(testPrefixes)-1)]
			if rng.IntN(10) == 0 {
				p = "" // everything
			}
			ops = append(ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)})
		case r < 18:
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: key, Value: val}, argent.Op{Type: argent.OpDelete, Key: key})
		default:
			ops = append(ops, argent.Op{Type: argent.OpDelete, Key: key}, argent.Op{Type: argent.OpPut, Key: key, Value: val})
		}
	}
	return ops
}

// checkGet checks a Get of every test key at index at against the model.
func checkGet(t tb, s *kv.Store, m *model, at argent.Index) {
	t.Helper()
	for _, k := range testKeys {
		got, err := s.Get(context.Background(), []byte(k), at)
		want, ok := m.states[at][k]
		switch {
		case !ok:
			if !errors.Is(err, argent.ErrNotFound) {
				t.Fatalf("Get(%q) at %d = %q@%d, %v; want ErrNotFound", k, at, got.Value, got.ModIndex, err)
			}
		case err != nil:
			t.Fatalf("Get(%q) at %d: %v; want %q@%d", k, at, err, want.value, want.mod)
		case string(got.Value) != want.value || got.ModIndex != want.mod:
			t.Fatalf("Get(%q) at %d = %q@%d, want %q@%d", k, at, got.Value, got.ModIndex, want.value, want.mod)
		}
	}
}

func sameItems(a, b []argent.Item) bool {
	return slices.EqualFunc(a, b, func(x, y argent.Item) bool {
		return bytes.Equal(x.Key, y.Key) && bytes.Equal(x.Value.Value, y.Value.Value) && x.ModIndex == y.ModIndex
	})
}

func fmtItems(items []argent.Item) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%q=%q@%d ", it.Key, it.Value.Value, it.ModIndex)
	}
	return b.String()
}

// checkScan checks Scan of every test prefix at index at against the model.
func checkScan(t tb, s *kv.Store, m *model, at argent.Index) {
	t.Helper()
	for _, p := range testPrefixes {
		want := m.scan(p, at)
		got, more, err := s.Scan(context.Background(), []byte(p), nil, 1000, at)
		if err != nil {
			t.Fatalf("Scan(%q) at %d: %v", p, at, err)
		}
		if more || !sameItems(got, want) {
			t.Fatalf("Scan(%q) at %d = %s (more %v), want %s", p, at, fmtItems(got), more, fmtItems(want))
		}
	}
}

// checkScanPages checks Scan at index at page by page (limit page, resuming
// after the last key returned), and from after keys that are not stored.
func checkScanPages(t tb, s *kv.Store, m *model, at argent.Index, page int) {
	t.Helper()
	for _, p := range []string{"", "a", "a/", "b", "\xff"} {
		want := m.scan(p, at)
		var paged []argent.Item
		var after []byte
		for calls := 0; ; calls++ {
			items, more, err := s.Scan(context.Background(), []byte(p), after, page, at)
			if err != nil {
				t.Fatalf("Scan(%q, after %q, %d) at %d: %v", p, after, page, at, err)
			}
			if len(items) > page || (more && len(items) != page) {
				t.Fatalf("Scan(%q, after %q, %d) at %d: %d items, more %v", p, after, page, at, len(items), more)
			}
			paged = append(paged, items...)
			if !more {
				break
			}
			if calls > len(want) {
				t.Fatalf("Scan(%q) at %d does not end", p, at)
			}
			after = items[len(items)-1].Key
		}
		if !sameItems(paged, want) {
			t.Fatalf("paged Scan(%q, %d) at %d = %s, want %s", p, page, at, fmtItems(paged), fmtItems(want))
		}
	}
	// Starting after a key that is not stored, and after every key.
	for _, after := range []string{"a/w", "a/x/0", "\xff\xff\xff", "0"} {
		var want []argent.Item
		for _, it := range m.scan("", at) {
			if string(it.Key) > after {
				want = append(want, it)
			}
		}
		got, _, err := s.Scan(context.Background(), nil, []byte(after), 1000, at)
		if err != nil || !sameItems(got, want) {
			t.Fatalf("Scan(after %q) at %d = %s, %v; want %s", after, at, fmtItems(got), err, fmtItems(want))
		}
	}
	// An after key that sorts before the prefix starts at the prefix.
	if got, _, err := s.Scan(context.Background(), []byte("b"), []byte("a/x"), 1000, at); err != nil || !sameItems(got, m.scan("b", at)) {
		t.Fatalf("Scan(b, after a/x) at %d = %s, %v; want %s", at, fmtItems(got), err, fmtItems(m.scan("b", at)))
	}
}

// sameOps compares ops as the log encodes them: only a put has a value.
func sameOps(a, b []argent.Op) bool {
	return slices.EqualFunc(a, b, func(x, y argent.Op) bool {
		return x.Type == y.Type && bytes.Equal(x.Key, y.Key) && (x.Type != argent.OpPut || bytes.Equal(x.Value, y.Value))
	})
}

// checkLog checks that ReadLog returns exactly the model's entries from
// LogFirst to Applied, in one call and in small pieces, and refuses indexes
// below LogFirst.
func checkLog(t tb, s *kv.Store, m *model) {
	t.Helper()
	first, last := s.LogFirst(), s.Applied()
	if first < 1 || first > last+1 {
		t.Fatalf("LogFirst = %d with applied %d", first, last)
	}
	check := func(e *logstore.Entry, want argent.Index) {
		t.Helper()
		if e.Index != want {
			t.Fatalf("ReadLog gave entry %d, want %d", e.Index, want)
		}
		w := &m.entries[want-1]
		if e.Time != w.Time || e.Chain != w.Chain || !sameOps(e.Ops, w.Ops) {
			t.Fatalf("ReadLog entry %d = %+v, want %+v", want, e.Entry, *w)
		}
		if !bytes.Equal(e.Raw, wire.AppendEntry(nil, w)) {
			t.Fatalf("ReadLog entry %d: Raw is not the wire encoding", want)
		}
	}
	next := first
	end, err := s.ReadLog(first, 0, func(e *logstore.Entry) bool {
		check(e, next)
		next++
		return true
	})
	if err != nil || end != last+1 || next != last+1 {
		t.Fatalf("ReadLog(%d) = %d, %v after %d entries; want %d", first, end, err, next-first, last+1)
	}
	// Pieces of at least one entry each: maxBytes 1 reads exactly one.
	next = first
	for from := first; from <= last; {
		n := 0
		end, err := s.ReadLog(from, 1, func(e *logstore.Entry) bool {
			check(e, next)
			next++
			n++
			return true
		})
		if err != nil || n != 1 || end != from+1 {
			t.Fatalf("ReadLog(%d, maxBytes 1) = %d, %v with %d entries; want one entry", from, end, err, n)
		}
		from = end
	}
	// fn returning false stops after that entry.
	if first <= last {
		n := 0
		end, err := s.ReadLog(first, 0, func(*logstore.Entry) bool { n++; return false })
		if err != nil || n != 1 || end != first+1 {
			t.Fatalf("ReadLog stopped by fn = %d, %v, %d calls; want %d, nil, 1", end, err, n, first+1)
		}
	}
	if end, err := s.ReadLog(last+1, 0, func(*logstore.Entry) bool { t.Fatalf("ReadLog past the end called fn"); return true }); err != nil || end != last+1 {
		t.Fatalf("ReadLog(%d) past the end = %d, %v", last+1, end, err)
	}
	if _, err := s.ReadLog(first-1, 0, func(*logstore.Entry) bool { return true }); !errors.Is(err, argent.ErrCompacted) {
		t.Fatalf("ReadLog(%d) below LogFirst %d: error = %v, want ErrCompacted", first-1, first, err)
	}
}

// checkStore checks everything readable in s against m: the state, reads
// at every index from Horizon to Applied, refusals outside that range, and
// the log.
func checkStore(t tb, s *kv.Store, m *model, page int) {
	t.Helper()
	st := s.State()
	if st.Index != m.applied() || st.Chain != m.chains[st.Index] || st.Time != m.times[st.Index] {
		t.Fatalf("State = %d/%x/%d, want %d/%x/%d", st.Index, st.Chain[:4], st.Time, m.applied(), m.chains[m.applied()][:4], m.times[m.applied()])
	}
	h := s.Horizon()
	if h > st.Index {
		t.Fatalf("Horizon %d > Applied %d", h, st.Index)
	}
	for at := h; at <= st.Index; at++ {
		checkGet(t, s, m, at)
		checkScan(t, s, m, at)
	}
	checkScanPages(t, s, m, h, page)
	checkScanPages(t, s, m, st.Index, page)
	if h > 0 {
		if _, err := s.Get(context.Background(), []byte("a"), h-1); !errors.Is(err, argent.ErrCompacted) {
			t.Fatalf("Get at %d below horizon %d: error = %v, want ErrCompacted", h-1, h, err)
		}
		if _, _, err := s.Scan(context.Background(), nil, nil, 10, h-1); !errors.Is(err, argent.ErrCompacted) {
			t.Fatalf("Scan at %d below horizon %d: error = %v, want ErrCompacted", h-1, h, err)
		}
	}
	if _, err := s.Get(context.Background(), []byte("a"), st.Index+1); !errors.Is(err, argent.ErrFuture) {
		t.Fatalf("Get at %d past applied: error = %v, want ErrFuture", st.Index+1, err)
	}
	if _, _, err := s.Scan(context.Background(), nil, nil, 10, st.Index+1); !errors.Is(err, argent.ErrFuture) {
		t.Fatalf("Scan at %d past applied: error = %v, want ErrFuture", st.Index+1, err)
	}
	checkLog(t, s, m)
}

// commitAll applies each batch of ops as one entry at time now and commits
// every group entries in one Writer, recording them in m.
func commitAll(t tb, s *kv.Store, m *model, batches [][]argent.Op, group int, now func() time.Time) {
	t.Helper()
	for len(batches) > 0 {
		n := min(group, len(batches))
		w := s.NewWriter()
		for _, ops := range batches[:n] {
			now := now()
			want := m.next(ops, now)
			e, err := w.Append(ops, now)
			if err != nil {
				w.Discard()
				t.Fatalf("Append: %v", err)
			}
			if e.Index != want.Index || e.Chain != want.Chain || e.Time != want.Time {
				w.Discard()
				t.Fatalf("Append = entry %d/%x/%d, want %d/%x/%d", e.Index, e.Chain[:4], e.Time, want.Index, want.Chain[:4], want.Time)
			}
			m.add(e)
		}
		if err := w.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		batches = batches[n:]
	}
}
