package kv_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// Readers hammer a few hot keys through the read cache while a writer
// rewrites them: every answer must be the key's value at the index read.
func TestStore_ReadCacheCoherent(t *testing.T) {
	s, err := kv.Open("/db", &kv.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const keys = 4
	// mods[k] lists the indexes that wrote key k, in order (writer-owned
	// until done; readers use the snapshot taken after).
	var mu sync.Mutex
	mods := make([][]argent.Index, keys)
	var stop atomic.Bool
	var wg sync.WaitGroup
	type read struct {
		key int
		at  argent.Index
		v   argent.Value
		err error
	}
	reads := make(chan read, 1<<16)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := i % keys
				at := s.Applied()
				v, err := s.Get(context.Background(), []byte(fmt.Sprint("k", k)), at)
				select {
				case reads <- read{key: k, at: at, v: v, err: err}:
				default:
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(deadline) && i < 5000; i++ {
		w := s.NewWriter()
		k := i % keys
		e, err := w.Append([]argent.Op{{Type: argent.OpPut, Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprint(w.Next()))}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		mods[k] = append(mods[k], e.Index)
		mu.Unlock()
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(reads)
	n := 0
	for r := range reads {
		var want argent.Index // newest write of the key at or below r.at
		for _, m := range mods[r.key] {
			if m <= r.at {
				want = m
			}
		}
		if want == 0 {
			if r.err == nil {
				t.Fatalf("k%d at %d: got %q, want absent", r.key, r.at, r.v.Value)
			}
			continue
		}
		if r.err != nil || r.v.ModIndex != want || string(r.v.Value) != fmt.Sprint(want) {
			t.Fatalf("k%d at %d: got %q mod %d (%v), want mod %d", r.key, r.at, r.v.Value, r.v.ModIndex, r.err, want)
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("only %d reads checked", n)
	}
}
