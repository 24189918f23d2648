package root_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/root"
)

// TestRoot_CrashAfterAck takes crash clones of the file system (losing
// what was not synced) right after Write returns, with other writes in
// flight, and checks that every write acknowledged before a clone is in the
// store the clone reopens to, at its index: an acknowledgement is given
// only once the merged batch holding the write is fsynced.
func TestRoot_CrashAfterAck(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := kv.Open("/db", &kv.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	r := root.New(s, root.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()

	type ack struct {
		key   string
		index argent.Index
	}
	type clone struct {
		fs    *vfs.MemFS
		acked []ack // acknowledged before the clone was taken
	}
	var (
		mu     sync.Mutex
		acked  []ack
		clones []clone
		wg     sync.WaitGroup
		seq    atomic.Int64
	)
	const writers, each = 8, 60
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range each {
				k := fmt.Sprintf("k%04d", seq.Add(1))
				idx, err := r.Write(context.Background(), argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte(k)}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, ack{k, idx})
				if rng.IntN(10) == 0 {
					// Crash now: what is acknowledged must survive.
					c := clone{fs: fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(50), RNG: rand.New(rand.NewPCG(rng.Uint64(), 2))})}
					c.acked = append(c.acked, acked...)
					clones = append(clones, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cancel()
	<-done
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(clones) == 0 {
		t.Fatal("no crash clone taken")
	}
	for i, c := range clones {
		cs, err := kv.Open("/db", &kv.Options{FS: c.fs})
		if err != nil {
			t.Fatalf("clone %d: open: %v", i, err)
		}
		for _, a := range c.acked {
			if cs.Applied() < a.index {
				t.Fatalf("clone %d: reopened at %d, but %s was acknowledged at %d", i, cs.Applied(), a.key, a.index)
			}
			v, err := cs.Get(context.Background(), []byte(a.key), cs.Applied())
			if err != nil || v.ModIndex != a.index {
				t.Fatalf("clone %d: %s acknowledged at %d reads %v (mod %d)", i, a.key, a.index, err, v.ModIndex)
			}
		}
		if err := cs.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d crash clones checked", len(clones))
}

// TestRoot_SyncFailureStops injects an I/O error into the fsync of the
// log's file: the writes in that batch get an error, not an
// acknowledgement; the store refuses every later write (kv.ErrStorageFailed)
// and tells its owner once; and a reopen finds exactly the acknowledged
// writes.
func TestRoot_SyncFailureStops(t *testing.T) {
	mem := vfs.NewCrashableMem()
	var inject atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if inject.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	fatal := make(chan error, 4)
	s, err := kv.Open("/db", &kv.Options{FS: fs, OnFatal: func(err error) { fatal <- err }})
	if err != nil {
		t.Fatal(err)
	}
	r := root.New(s, root.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		_ = s.Close() // a failed store closes too, with an error
	}()
	put := func(k string) (argent.Index, error) {
		return r.Write(context.Background(), argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte("v")}}})
	}
	if _, err := put("before"); err != nil {
		t.Fatal(err)
	}
	inject.Store(true)
	if idx, err := put("during"); err == nil {
		t.Fatalf("write acknowledged at %d although its fsync failed", idx)
	} else if !errors.Is(err, kv.ErrStorageFailed) || !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("write during a failed fsync: %v, want kv.ErrStorageFailed", err)
	}
	select {
	case err := <-fatal:
		t.Logf("OnFatal: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("OnFatal not called")
	}
	inject.Store(false)
	if _, err := put("after"); !errors.Is(err, kv.ErrStorageFailed) {
		t.Fatalf("write after the failure: %v, want kv.ErrStorageFailed", err)
	}
	if len(fatal) != 0 {
		t.Fatalf("OnFatal called %d more times", len(fatal))
	}
	// What a restart finds: the acknowledged write, nothing refused.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	cs, err := kv.Open("/db", &kv.Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.Get(context.Background(), []byte("before"), cs.Applied()); err != nil {
		t.Fatalf("acknowledged write lost: %v", err)
	}
	if _, err := cs.Get(context.Background(), []byte("after"), cs.Applied()); !errors.Is(err, argent.ErrNotFound) {
		t.Fatalf("refused write present after restart: %v", err)
	}
}
