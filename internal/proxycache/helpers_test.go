package proxycache_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// seedFlag fixes the seed of the randomized tests that are not driven by
// rapid, to replay a failure they logged.
var seedFlag = flag.Uint64("proxycache.seed", 0, "seed for the crash and concurrency tests (0: from the clock)")

func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -proxycache.seed %d)", seed, seed)
	return seed
}

func TestMain(m *testing.M) {
	flag.Parse()
	if raceEnabled {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
		if !set {
			_ = flag.Set("rapid.checks", "30")
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testKeys is the key space of the random tests: few enough keys that
// batches hit cached ones often, under prefixes that prefix deletes cover.
var testKeys = func() []string {
	var ks []string
	for _, p := range []string{"a/", "b/", "b/x/", "c"} {
		for i := range 6 {
			ks = append(ks, fmt.Sprintf("%s%d", p, i))
		}
	}
	return ks
}()

var testPrefixes = []string{"a/", "b/", "b/x/", "c", "a/1", "zz", ""}

// mval is a key's value in the model; absent keys have no mval.
type mval struct {
	value []byte
	mod   argent.Index
}

// model is the full data at every index of a log.
type model struct {
	states  []map[string]mval // states[i]: the data at index i
	entries []argent.Entry    // entries[i]: the entry with index i+1
}

func newModel() *model { return &model{states: []map[string]mval{{}}} }

// last returns the newest index.
func (m *model) last() argent.Index { return argent.Index(len(m.states) - 1) }

// add appends an entry with ops at the next index.
func (m *model) add(ops []argent.Op) *argent.Entry {
	i := m.last() + 1
	st := make(map[string]mval, len(m.states[i-1]))
	for k, v := range m.states[i-1] {
		st[k] = v
	}
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut:
			st[string(op.Key)] = mval{value: op.Value, mod: i}
		case argent.OpDelete:
			delete(st, string(op.Key))
		case argent.OpDeletePrefix:
			for k := range st {
				if len(k) >= len(op.Key) && k[:len(op.Key)] == string(op.Key) {
					delete(st, k)
				}
			}
		}
	}
	m.states = append(m.states, st)
	var chain argent.Hash
	chain[0], chain[1] = byte(i>>8), byte(i)
	m.entries = append(m.entries, argent.Entry{Index: i, Time: int64(i) * 1e9, Chain: chain, Ops: ops})
	return &m.entries[i-1]
}

// entryAt returns key's entry at index at as a replica would answer a
// miss: the value with its mod index, or absent (delete index unknown).
// since is the first index of the run of states up to at in which the key
// had that value: a caller may pass it as Entry.Since.
func (m *model) entryAt(key string, at argent.Index) (e proxycache.Entry, since argent.Index) {
	v, ok := m.states[at][key]
	if ok {
		return proxycache.Entry{Present: true, Value: argent.Value{Value: v.value, ModIndex: v.mod}}, v.mod
	}
	since = at
	for since > 0 {
		if _, ok := m.states[since-1][key]; ok {
			break
		}
		since--
	}
	return proxycache.Entry{}, since
}

// check reports how e, key's cached entry at cache index at, differs from
// the model: it must equal the value at at, and hold at every index from
// e.Since to at.
func (m *model) check(key string, e proxycache.Entry, at argent.Index) error {
	if at > m.last() {
		return fmt.Errorf("key %q: cache at %d, model ends at %d", key, at, m.last())
	}
	if e.Since > at {
		return fmt.Errorf("key %q: since %d after the cache's index %d", key, e.Since, at)
	}
	if e.Present && e.ModIndex > e.Since {
		return fmt.Errorf("key %q: since %d before its mod index %d", key, e.Since, e.ModIndex)
	}
	for i := e.Since; i <= at; i++ {
		v, ok := m.states[i][key]
		switch {
		case ok != e.Present:
			return fmt.Errorf("key %q: cached present=%v (mod %d, since %d, cache at %d), model at %d present=%v", key, e.Present, e.ModIndex, e.Since, at, i, ok)
		case ok && (!bytes.Equal(v.value, e.Value.Value) || v.mod != e.ModIndex):
			return fmt.Errorf("key %q: cached %q mod %d (since %d, cache at %d), model at %d has %q mod %d", key, e.Value.Value, e.ModIndex, e.Since, at, i, v.value, v.mod)
		}
	}
	return nil
}

// checkStored checks every entry Pebble holds (evicted ones not yet
// deleted included) against the model at the cache's applied index.
func checkStored(t tb, c *proxycache.Cache, m *model) {
	t.Helper()
	at := c.Applied()
	stored, err := c.StoredEntries()
	if err != nil {
		t.Fatalf("StoredEntries: %v", err)
	}
	for k, e := range stored {
		if err := m.check(k, e, at); err != nil {
			t.Fatalf("stored: %v", err)
		}
	}
}

// checkGets reads every test key with Get and checks the hits.
func checkGets(t tb, c *proxycache.Cache, m *model) {
	t.Helper()
	for _, k := range testKeys {
		at := c.Applied()
		if e, ok := c.Get([]byte(k)); ok {
			if err := m.check(k, e, at); err != nil {
				t.Fatalf("Get: %v", err)
			}
		}
	}
}

// tb is what the checks need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// randomOps returns the ops of one random batch on the test key space.
func randomOps(rng *rand.Rand) []argent.Op {
	n := 1 + rng.IntN(3)
	ops := make([]argent.Op, 0, n)
	for range n {
		key := []byte(testKeys[rng.IntN(len(testKeys))])
		switch r := rng.IntN(10); {
		case r < 6:
			n := rng.IntN(40)
			if rng.IntN(5) == 0 {
				n = 500 + rng.IntN(2500) // fills Pebble's 32 KiB WAL blocks between syncs
			}
			val := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, n)
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: key, Value: val})
		case r < 9:
			ops = append(ops, argent.Op{Type: argent.OpDelete, Key: key})
		default:
			ops = append(ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(testPrefixes[rng.IntN(len(testPrefixes))])})
		}
	}
	return ops
}

// mustOpen opens a cache and closes it at the end of the test.
func mustOpen(t testing.TB, dir string, opts proxycache.Options) *proxycache.Cache {
	t.Helper()
	c, err := proxycache.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}
func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }
func delPrefix(p string) argent.Op {
	return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)}
}
