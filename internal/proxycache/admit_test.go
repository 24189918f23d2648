package proxycache_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

func TestCache_Admit(t *testing.T) {
	tests := []struct {
		name    string
		entry   proxycache.Entry
		at      argent.Index
		ok      bool
		invalid bool  // Admit returns ErrInvalid
		want    *want // the entry Get returns afterwards
	}{
		{name: "Present", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 7}}, at: 10, ok: true, want: &want{true, "v", 7, 7}},
		{name: "PresentSinceLater", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 7}, Since: 9}, at: 10, ok: true, want: &want{true, "v", 7, 9}},
		{name: "PresentSinceBeforeMod", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 7}, Since: 3}, at: 10, ok: true, want: &want{true, "v", 7, 7}},
		{name: "AbsentDeleteKnown", entry: proxycache.Entry{Value: argent.Value{ModIndex: 4}}, at: 10, ok: true, want: &want{false, "", 4, 4}},
		{name: "AbsentDeleteUnknown", entry: proxycache.Entry{}, at: 10, ok: true, want: &want{false, "", 0, 10}},
		{name: "AbsentSinceGiven", entry: proxycache.Entry{Since: 6}, at: 10, ok: true, want: &want{false, "", 0, 6}},
		{name: "StaleIndex", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 7}}, at: 9, ok: false},
		{name: "FutureIndex", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 7}}, at: 11, ok: false},
		{name: "ModAfterIndex", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v"), ModIndex: 11}}, at: 10, invalid: true},
		{name: "SinceAfterIndex", entry: proxycache.Entry{Since: 11}, at: 10, invalid: true},
		{name: "PresentWithoutMod", entry: proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v")}}, at: 10, invalid: true},
		{name: "AbsentWithValue", entry: proxycache.Entry{Value: argent.Value{Value: []byte("v"), ModIndex: 3}}, at: 10, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, nil)
			ok, err := c.Admit([]byte("k"), tt.entry, tt.at)
			if tt.invalid {
				if !errors.Is(err, argent.ErrInvalid) {
					t.Fatalf("Admit = %v, %v; want ErrInvalid", ok, err)
				}
				return
			}
			if err != nil || ok != tt.ok {
				t.Fatalf("Admit = %v, %v; want %v", ok, err, tt.ok)
			}
			checkWant(t, c, map[string]*want{"k": tt.want})
			if !tt.ok && c.Stats().RefusedStale != 1 {
				t.Errorf("RefusedStale = %d, want 1", c.Stats().RefusedStale)
			}
		})
	}
}

func TestCache_AdmitOverwrites(t *testing.T) {
	c := newTestCache(t, map[string]string{"k": "old"})
	if ok, err := c.Admit([]byte("k"), proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("new"), ModIndex: 8}}, 10); !ok || err != nil {
		t.Fatalf("Admit = %v, %v", ok, err)
	}
	checkWant(t, c, map[string]*want{"k": {true, "new", 8, 8}})
	if err := c.CheckPolicy(); err != nil {
		t.Error(err)
	}
}

// TestCache_AdmitAfterApply is the race Admit must lose: a miss resolved
// at index 10 comes back after the applier moved the cache to 11, which
// changed the key. Admitting it would store a stale value at 11.
func TestCache_AdmitAfterApply(t *testing.T) {
	c := newTestCache(t, map[string]string{"other": "x"})
	at := c.Applied() // the resolver proves its value for this index
	if err := c.Apply(entries(11, []argent.Op{put("k", "new")})...); err != nil {
		t.Fatal(err)
	}
	ok, err := c.Admit([]byte("k"), proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("old"), ModIndex: 5}}, at)
	if ok || err != nil {
		t.Fatalf("Admit of a value proved for %d at %d = %v, %v; want refused", at, c.Applied(), ok, err)
	}
	checkWant(t, c, map[string]*want{"k": nil})
}

func TestCache_FreeDiskFloor(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	now := time.Unix(1_700_000_000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	var calls atomic.Int64
	c := mustOpen(t, "db", proxycache.Options{
		FS: vfs.NewMem(), Budget: 1 << 20, FreeDiskFloor: 100 << 20,
		FreeSpace: func() (uint64, error) { calls.Add(1); return free.Load(), nil },
		Now:       func() time.Time { return time.Unix(0, clock.Load()) },
	})
	admit := func(k string) bool {
		t.Helper()
		ok, err := c.Admit([]byte(k), proxycache.Entry{Present: true, Value: argent.Value{Value: []byte("v" + k), ModIndex: c.Applied()}}, c.Applied())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if err := c.Apply(entries(1, []argent.Op{put("a", "va")})...); err != nil {
		t.Fatal(err)
	}
	if !admit("a") {
		t.Fatal("Admit refused with plenty of free space")
	}
	free.Store(50 << 20)
	if !admit("b") {
		t.Fatal("Admit refused before the free space was read again")
	}
	clock.Add(int64(2 * time.Second))
	if admit("c") {
		t.Fatal("Admit of a new key below the floor succeeded")
	}
	if !c.BelowDiskFloor() {
		t.Fatal("BelowDiskFloor = false while admissions are refused")
	}
	if !admit("a") {
		t.Fatal("Admit of a cached key below the floor refused")
	}
	if err := c.Apply(entries(2, []argent.Op{put("a", "a2"), put("c", "c2")})...); err != nil {
		t.Fatal(err)
	}
	checkWant(t, c, map[string]*want{"a": {true, "a2", 2, 2}, "b": {true, "vb", 1, 1}, "c": nil})
	if got := c.Stats().RefusedDisk; got != 1 {
		t.Errorf("RefusedDisk = %d, want 1", got)
	}
	free.Store(1 << 30)
	clock.Add(int64(2 * time.Second))
	if !admit("c") {
		t.Fatal("Admit refused after space came back")
	}
	if c.BelowDiskFloor() {
		t.Fatal("BelowDiskFloor = true after space came back")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("FreeSpace called %d times, want 3 (once per interval)", n)
	}
}
