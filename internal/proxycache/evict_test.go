package proxycache_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// storedWeight sums the weights of the entries in Pebble, as the budget
// counts them (48 bytes of overhead per entry).
func storedWeight(t testing.TB, c *proxycache.Cache) (weight int64, n int) {
	t.Helper()
	stored, err := c.StoredEntries()
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range stored {
		weight += int64(len(k) + len(e.Value.Value) + 48)
	}
	return weight, len(stored)
}

// admitN admits n keys key/<from..from+n> with values of size bytes at the
// cache's applied index.
func admitN(t testing.TB, c *proxycache.Cache, from, n, size int) {
	t.Helper()
	val := make([]byte, size)
	for i := from; i < from+n; i++ {
		at := c.Applied()
		if _, err := c.Admit(fmt.Appendf(nil, "key/%06d", i), proxycache.Entry{Present: true, Value: argent.Value{Value: val, ModIndex: max(at, 1)}}, at); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCache_BudgetHolds(t *testing.T) {
	tests := []struct {
		name   string
		budget int64
		size   int
		n      int
	}{
		{name: "SmallValues", budget: 16 << 10, size: 50, n: 2000},
		{name: "LargeValues", budget: 64 << 10, size: 4000, n: 200},
		{name: "ValueOverBudget", budget: 4 << 10, size: 8 << 10, n: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustOpen(t, "db", proxycache.Options{FS: vfs.NewMem(), Budget: tt.budget})
			if err := c.Reset(argent.State{Index: 1}); err != nil {
				t.Fatal(err)
			}
			admitN(t, c, 0, tt.n, tt.size)
			if err := c.EvictNow(); err != nil {
				t.Fatal(err)
			}
			w, n := storedWeight(t, c)
			t.Logf("%d of %d keys stored, weight %d of budget %d", n, tt.n, w, tt.budget)
			if w > tt.budget {
				t.Errorf("stored weight %d over the budget %d", w, tt.budget)
			}
			if got := c.Weight(); got > uint64(tt.budget) {
				t.Errorf("policy weight %d over the budget %d", got, tt.budget)
			}
			if err := c.CheckPolicy(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCache_GrowingValueEvicts: an Apply that makes cached values larger
// makes the policy evict to stay within the budget.
func TestCache_GrowingValueEvicts(t *testing.T) {
	const budget = 8 << 10
	c := mustOpen(t, "db", proxycache.Options{FS: vfs.NewMem(), Budget: budget})
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		t.Fatal(err)
	}
	admitN(t, c, 0, 50, 10)
	var ops []argent.Op
	for i := range 50 {
		ops = append(ops, put(fmt.Sprintf("key/%06d", i), string(make([]byte, 1000))))
	}
	if err := c.Apply(entries(2, ops)...); err != nil {
		t.Fatal(err)
	}
	if err := c.EvictNow(); err != nil {
		t.Fatal(err)
	}
	if w, n := storedWeight(t, c); w > budget {
		t.Errorf("stored weight %d (%d keys) over the budget %d", w, n, budget)
	}
	if err := c.CheckPolicy(); err != nil {
		t.Error(err)
	}
}

// TestCache_Reopen: the cache is warm after a restart, at its index, and
// the budget holds across it, also when it shrank.
func TestCache_Reopen(t *testing.T) {
	fs := vfs.NewMem()
	c, err := proxycache.Open("db", proxycache.Options{FS: fs, Budget: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		t.Fatal(err)
	}
	admitN(t, c, 0, 100, 100)
	if _, err := c.AdoptDataset(argent.DatasetID{1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(entries(2, []argent.Op{put("key/000001", "changed")})...); err != nil {
		t.Fatal(err)
	}
	node := c.NodeID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = mustOpen(t, "db", proxycache.Options{FS: fs, Budget: 1 << 20})
	if c.Applied() != 2 || c.NodeID() != node || c.Dataset() != (argent.DatasetID{1}) {
		t.Fatalf("reopened at %d, node %x, dataset %s", c.Applied(), c.NodeID(), c.Dataset())
	}
	for i := range 100 {
		k := fmt.Sprintf("key/%06d", i)
		e, ok := c.Get([]byte(k))
		if !ok {
			t.Fatalf("Get %q missed after reopen", k)
		}
		if i == 1 && string(e.Value.Value) != "changed" {
			t.Fatalf("Get %q = %q after reopen", k, e.Value.Value)
		}
	}
	if _, err := c.AdoptDataset(argent.DatasetID{2}); err == nil {
		t.Error("AdoptDataset of another dataset succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	const small = 4 << 10
	c = mustOpen(t, "db", proxycache.Options{FS: fs, Budget: small})
	if err := c.EvictNow(); err != nil {
		t.Fatal(err)
	}
	w, n := storedWeight(t, c)
	if w > small || n == 0 {
		t.Errorf("after reopening with a budget of %d: %d keys of weight %d", small, n, w)
	}
	if err := c.CheckPolicy(); err != nil {
		t.Error(err)
	}
}

// TestCache_HotKeysStay: keys read often survive a stream of one-off
// admissions (the point of W-TinyLFU over LRU).
func TestCache_HotKeysStay(t *testing.T) {
	c := mustOpen(t, "db", proxycache.Options{FS: vfs.NewMem(), Budget: 32 << 10})
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		t.Fatal(err)
	}
	const hot = 20
	admitN(t, c, 0, hot, 100)
	for i := range 5000 {
		for h := range hot {
			c.Get(fmt.Appendf(nil, "key/%06d", h))
		}
		if i%5 == 0 {
			admitN(t, c, 1000+i, 1, 100)
		}
	}
	if err := c.EvictNow(); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for h := range hot {
		if _, ok := c.Get(fmt.Appendf(nil, "key/%06d", h)); ok {
			kept++
		}
	}
	if kept < hot*9/10 {
		t.Errorf("%d of %d hot keys kept", kept, hot)
	}
}

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts proxycache.Options
		ok   bool
	}{
		{name: "NoBudget", opts: proxycache.Options{}},
		{name: "NegativeBudget", opts: proxycache.Options{Budget: -1}},
		{name: "NegativeFloor", opts: proxycache.Options{Budget: 1, FreeDiskFloor: -1}},
		{name: "NegativeMemTable", opts: proxycache.Options{Budget: 1, MemTableSize: -1}},
		{name: "Minimal", opts: proxycache.Options{Budget: 1}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
			tt.opts.FS = vfs.NewMem()
			c, err := proxycache.Open("db", tt.opts)
			if (err == nil) != tt.ok {
				t.Errorf("Open = %v, want ok=%v", err, tt.ok)
			}
			if c != nil {
				_ = c.Close()
			}
		})
	}
}
