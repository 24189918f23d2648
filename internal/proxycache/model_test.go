package proxycache_test

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// opGen draws one op on the test key space.
var opGen = rapid.Custom(func(t *rapid.T) argent.Op {
	key := []byte(rapid.SampledFrom(testKeys).Draw(t, "key"))
	switch rapid.IntRange(0, 9).Draw(t, "kind") {
	case 0, 1, 2, 3, 4, 5:
		val := bytes.Repeat([]byte("v"), rapid.IntRange(0, 60).Draw(t, "len"))
		return argent.Op{Type: argent.OpPut, Key: key, Value: val}
	case 6, 7, 8:
		return argent.Op{Type: argent.OpDelete, Key: key}
	default:
		return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(rapid.SampledFrom(testPrefixes).Draw(t, "prefix"))}
	}
})

// cacheMachine drives a Cache and a model of the full data with the same
// random actions.
type cacheMachine struct {
	c    *proxycache.Cache
	fs   vfs.FS
	opts proxycache.Options
	m    *model
}

func (cm *cacheMachine) open(t *rapid.T) {
	c, err := proxycache.Open("db", cm.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	cm.c = c
}

// TestCache_Model runs random sequences of Apply (groups of entries with
// puts, deletes and prefix deletes), Admit at the applied index, Admit of
// values proved for an older index (which must be refused), Gets, forced
// evictions, Resets and reopens (some with a smaller budget) under budgets
// small enough that the policy evicts all the time, and checks after every
// action that every entry Pebble holds, evicted ones included, and every
// hit equals the model's value at the applied index and holds from its
// Since on.
func TestCache_Model(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := vfs.NewMem()
		cm := &cacheMachine{fs: fs, m: newModel(), opts: proxycache.Options{
			FS:          fs,
			Budget:      rapid.SampledFrom([]int64{300, 1000, 1 << 20}).Draw(rt, "budget"),
			MemoryCache: rapid.SampledFrom([]int64{-1, 200, 1 << 20}).Draw(rt, "memory"),
		}}
		cm.open(rt)
		defer func() { _ = cm.c.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"apply": func(t *rapid.T) {
				n := rapid.IntRange(1, 3).Draw(t, "entries")
				var es []*argent.Entry
				for range n {
					es = append(es, cm.m.add(rapid.SliceOfN(opGen, 1, 4).Draw(t, "ops")))
				}
				if err := cm.c.Apply(es...); err != nil {
					t.Fatalf("Apply: %v", err)
				}
			},
			"admit": func(t *rapid.T) {
				key := rapid.SampledFrom(testKeys).Draw(t, "key")
				at := cm.c.Applied()
				e, since := cm.m.entryAt(key, at)
				if rapid.Bool().Draw(t, "since") {
					e.Since = since
				}
				ok, err := cm.c.Admit([]byte(key), e, at)
				if err != nil || !ok {
					t.Fatalf("Admit %q at %d = %v, %v", key, at, ok, err)
				}
			},
			"admitStale": func(t *rapid.T) {
				at := cm.c.Applied()
				if at == 0 {
					t.Skip("nothing older")
				}
				old := rapid.Uint64Range(0, uint64(at-1)).Draw(t, "old")
				key := rapid.SampledFrom(testKeys).Draw(t, "key")
				e, _ := cm.m.entryAt(key, argent.Index(old))
				if e.Present && e.ModIndex == 0 {
					t.Skip("no value")
				}
				ok, err := cm.c.Admit([]byte(key), e, argent.Index(old))
				if err != nil || ok {
					t.Fatalf("Admit %q proved for %d at %d = %v, %v; want refused", key, old, at, ok, err)
				}
			},
			"get": func(t *rapid.T) {
				key := rapid.SampledFrom(testKeys).Draw(t, "key")
				at := cm.c.Applied()
				if e, ok := cm.c.Get([]byte(key)); ok {
					if err := cm.m.check(key, e, at); err != nil {
						t.Fatalf("Get: %v", err)
					}
				}
			},
			"evict": func(t *rapid.T) {
				if err := cm.c.EvictNow(); err != nil {
					t.Fatalf("EvictNow: %v", err)
				}
				if w := cm.c.Weight(); w > uint64(cm.opts.Budget) {
					t.Fatalf("weight %d over the budget %d after EvictNow", w, cm.opts.Budget)
				}
			},
			"reset": func(t *rapid.T) {
				// The proxy lost its place in the log: it skips to a
				// later state, empty.
				for range rapid.IntRange(0, 3).Draw(t, "skip") {
					cm.m.add(rapid.SliceOfN(opGen, 1, 2).Draw(t, "ops"))
				}
				last := cm.m.last()
				st := argent.State{Index: last}
				if last > 0 {
					st.Time, st.Chain = cm.m.entries[last-1].Time, cm.m.entries[last-1].Chain
				}
				if err := cm.c.Reset(st); err != nil {
					t.Fatalf("Reset: %v", err)
				}
			},
			"reopen": func(t *rapid.T) {
				before := cm.c.State()
				if err := cm.c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if rapid.Bool().Draw(t, "shrink") {
					cm.opts.Budget = max(cm.opts.Budget/2, 100)
				}
				cm.open(t)
				if got := cm.c.State(); got != before {
					t.Fatalf("reopened at %+v, closed at %+v", got, before)
				}
			},
			"": func(t *rapid.T) {
				checkStored(t, cm.c, cm.m)
				checkGets(t, cm.c, cm.m)
				if err := cm.c.CheckPolicy(); err != nil {
					t.Fatal(err)
				}
				if st := cm.c.State(); st.Index > 0 && st.Chain != cm.m.entries[st.Index-1].Chain {
					t.Fatalf("state %d has chain %x, want %x", st.Index, st.Chain[:2], cm.m.entries[st.Index-1].Chain[:2])
				}
			},
		})
	})
}
