package proxycache_test

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// newTestCache opens a cache on an in-memory file system with a budget far
// above what the test writes, at index 10, with the given keys admitted:
// a value, or "" for a key known absent. Every admitted value has mod
// index 5.
func newTestCache(t *testing.T, admit map[string]string) *proxycache.Cache {
	t.Helper()
	c := mustOpen(t, "db", proxycache.Options{FS: vfs.NewMem(), Budget: 1 << 20})
	if err := c.Reset(argent.State{Index: 10}); err != nil {
		t.Fatal(err)
	}
	for k, v := range admit {
		e := proxycache.Entry{}
		if v != "" {
			e = proxycache.Entry{Present: true, Value: argent.Value{Value: []byte(v), ModIndex: 5}}
		}
		if ok, err := c.Admit([]byte(k), e, 10); !ok || err != nil {
			t.Fatalf("Admit %q: %v, %v", k, ok, err)
		}
	}
	return c
}

// want is a key's expected cache entry; nil means a miss.
type want struct {
	present bool
	value   string
	mod     argent.Index
	since   argent.Index
}

func checkWant(t *testing.T, c *proxycache.Cache, wants map[string]*want) {
	t.Helper()
	for k, w := range wants {
		e, ok := c.Get([]byte(k))
		switch {
		case w == nil && ok:
			t.Errorf("Get %q = %+v, want a miss", k, e)
		case w == nil:
		case !ok:
			t.Errorf("Get %q missed, want %+v", k, *w)
		case e.Present != w.present || string(e.Value.Value) != w.value || e.ModIndex != w.mod || e.Since != w.since:
			t.Errorf("Get %q = {present %v value %q mod %d since %d}, want %+v", k, e.Present, e.Value.Value, e.ModIndex, e.Since, *w)
		}
	}
}

func entries(from argent.Index, batches ...[]argent.Op) []*argent.Entry {
	var es []*argent.Entry
	for i, ops := range batches {
		idx := from + argent.Index(i)
		es = append(es, &argent.Entry{Index: idx, Time: int64(idx), Chain: argent.Hash{byte(idx)}, Ops: ops})
	}
	return es
}

func TestCache_Apply(t *testing.T) {
	tests := []struct {
		name    string
		admit   map[string]string
		batches [][]argent.Op // entries 11, 12, ... applied in one call
		want    map[string]*want
	}{
		{
			name:    "PutOfUncachedKeyIgnored",
			admit:   map[string]string{"a": "1"},
			batches: [][]argent.Op{{put("b", "2")}},
			want:    map[string]*want{"a": {true, "1", 5, 5}, "b": nil},
		},
		{
			name:    "PutOfCachedKeyReplaces",
			admit:   map[string]string{"a": "1"},
			batches: [][]argent.Op{{put("a", "2")}},
			want:    map[string]*want{"a": {true, "2", 11, 11}},
		},
		{
			name:    "PutOfKnownAbsentKey",
			admit:   map[string]string{"a": ""},
			batches: [][]argent.Op{{put("a", "new")}},
			want:    map[string]*want{"a": {true, "new", 11, 11}},
		},
		{
			name:    "DeleteMarksAbsent",
			admit:   map[string]string{"a": "1", "b": "2"},
			batches: [][]argent.Op{{del("a")}},
			want:    map[string]*want{"a": {false, "", 11, 11}, "b": {true, "2", 5, 5}},
		},
		{
			name:    "PrefixDeleteMarksCachedKeysUnderIt",
			admit:   map[string]string{"p/1": "1", "p/2": "", "p": "x", "q/1": "q"},
			batches: [][]argent.Op{{delPrefix("p/")}},
			want: map[string]*want{
				"p/1": {false, "", 11, 11}, "p/2": {false, "", 11, 11},
				"p": {true, "x", 5, 5}, "q/1": {true, "q", 5, 5},
			},
		},
		{
			name:    "EmptyPrefixDeletesAll",
			admit:   map[string]string{"a": "1", "\xff\xff": "2"},
			batches: [][]argent.Op{{delPrefix("")}},
			want:    map[string]*want{"a": {false, "", 11, 11}, "\xff\xff": {false, "", 11, 11}},
		},
		{
			name:    "PrefixOfAllOnes",
			admit:   map[string]string{"\xff\x01": "1", "\xfe": "2"},
			batches: [][]argent.Op{{delPrefix("\xff")}},
			want:    map[string]*want{"\xff\x01": {false, "", 11, 11}, "\xfe": {true, "2", 5, 5}},
		},
		{
			name:    "PutThenDeleteInOneBatch",
			admit:   map[string]string{"a": "1"},
			batches: [][]argent.Op{{put("a", "2"), del("a")}},
			want:    map[string]*want{"a": {false, "", 11, 11}},
		},
		{
			name:    "PutThenPrefixDeleteThenPutInOneBatch",
			admit:   map[string]string{"p/a": "1", "p/b": "1"},
			batches: [][]argent.Op{{put("p/a", "2"), delPrefix("p/"), put("p/b", "3")}},
			want:    map[string]*want{"p/a": {false, "", 11, 11}, "p/b": {true, "3", 11, 11}},
		},
		{
			name:    "SeveralEntriesLastWins",
			admit:   map[string]string{"a": "1", "b": "1"},
			batches: [][]argent.Op{{put("a", "2")}, {del("b")}, {put("a", "3")}, {put("c", "x")}},
			want:    map[string]*want{"a": {true, "3", 13, 13}, "b": {false, "", 12, 12}, "c": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, tt.admit)
			es := entries(11, tt.batches...)
			if err := c.Apply(es...); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			last := es[len(es)-1]
			if got := c.State(); got.Index != last.Index || got.Time != last.Time || got.Chain != last.Chain {
				t.Errorf("State = %+v, want index %d time %d chain %x", got, last.Index, last.Time, last.Chain[:1])
			}
			checkWant(t, c, tt.want)
			if err := c.CheckPolicy(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCache_ApplyRefusesGaps(t *testing.T) {
	tests := []struct {
		name  string
		first argent.Index
		ops   [][]argent.Op
	}{
		{name: "Old", first: 10, ops: [][]argent.Op{{put("a", "1")}}},
		{name: "Gap", first: 12, ops: [][]argent.Op{{put("a", "1")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, map[string]string{"a": "0"})
			err := c.Apply(entries(tt.first, tt.ops...)...)
			if !errors.Is(err, argent.ErrInvalid) {
				t.Fatalf("Apply = %v, want ErrInvalid", err)
			}
			if c.Applied() != 10 {
				t.Errorf("Applied = %d after a refused Apply, want 10", c.Applied())
			}
			checkWant(t, c, map[string]*want{"a": {true, "0", 5, 5}})
		})
	}
	t.Run("InsideAGroup", func(t *testing.T) {
		c := newTestCache(t, map[string]string{"a": "0"})
		es := entries(11, []argent.Op{put("a", "1")}, []argent.Op{put("a", "2")})
		es[1].Index = 13
		if err := c.Apply(es...); !errors.Is(err, argent.ErrInvalid) {
			t.Fatalf("Apply = %v, want ErrInvalid", err)
		}
		checkWant(t, c, map[string]*want{"a": {true, "0", 5, 5}})
	})
}

func TestCache_Reset(t *testing.T) {
	c := newTestCache(t, map[string]string{"a": "1", "b": ""})
	if err := c.Reset(argent.State{Index: 9}); !errors.Is(err, argent.ErrInvalid) {
		t.Fatalf("Reset to an older index = %v, want ErrInvalid", err)
	}
	if err := c.Reset(argent.State{Index: 20, Time: 7}); err != nil {
		t.Fatal(err)
	}
	if got := c.State(); got.Index != 20 || got.Time != 7 {
		t.Errorf("State = %+v, want index 20 time 7", got)
	}
	checkWant(t, c, map[string]*want{"a": nil, "b": nil})
	if stored, _ := c.StoredEntries(); len(stored) != 0 {
		t.Errorf("%d entries stored after Reset", len(stored))
	}
	if err := c.Apply(entries(21, []argent.Op{put("a", "2")})...); err != nil {
		t.Fatal(err)
	}
	checkWant(t, c, map[string]*want{"a": nil})
}
