package kv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
)

// TestStore_ConcurrentReads runs readers at the applied index (and at older
// indexes inside the history) while one goroutine commits and another
// trims history and log under small windows. Every read must return the
// model's value at the index it read at, or ErrCompacted once the horizon
// has passed that index. Run it with -race.
func TestStore_ConcurrentReads(t *testing.T) {
	entries, readers := 1000, 3
	if raceEnabled {
		entries = 150
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 0))
	start := time.Unix(1_700_000_000, 0)
	m := newModel()
	for i := range entries {
		m.add(m.next(randomOps(rng, 6), start.Add(time.Duration(i)*100*time.Millisecond)))
	}
	clock := newFakeClock()
	s := mustOpen(t, "db", &kv.Options{Now: clock.Now, HistoryDuration: 2 * time.Second, LogDuration: 3 * time.Second, LogBytes: 4000})

	var (
		done   atomic.Bool
		failed atomic.Bool
		wg     sync.WaitGroup
		reads  atomic.Int64
		misses atomic.Int64 // reads answered ErrCompacted
		trims  atomic.Int64
	)
	fail := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
		done.Store(true)
	}

	toSync := make(chan argent.State, 1000)
	wg.Add(1)
	go func() { // the syncer
		defer wg.Done()
		for st := range toSync {
			for more := true; more; {
				select {
				case next, ok := <-toSync:
					if !ok {
						more = false
						break
					}
					st = next
				default:
					more = false
				}
			}
			if err := s.SyncAndPublish(st); err != nil {
				fail("SyncAndPublish: %v", err)
			}
		}
	}()
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		defer done.Store(true)
		defer close(toSync)
		for i := 0; i < entries && !done.Load(); {
			w := s.NewWriter()
			for n := 1 + rng.IntN(4); n > 0 && i < entries; n-- {
				e := &m.entries[i]
				if _, err := w.Append(e.Ops, time.Unix(0, e.Time)); err != nil {
					w.Discard()
					fail("Append %d: %v", e.Index, err)
					return
				}
				i++
			}
			// Commit, or (as the root does) CommitNoSync and leave the sync
			// and publish to another goroutine.
			if rng.IntN(2) == 0 {
				if err := w.Commit(); err != nil {
					fail("Commit: %v", err)
					return
				}
			} else {
				st, err := w.CommitNoSync()
				if err != nil {
					fail("CommitNoSync: %v", err)
					return
				}
				toSync <- st
			}
			clock.Advance(time.Unix(0, m.times[i]).Sub(clock.Now()) + time.Second)
			// Now and then let a Trim in: the writer could otherwise keep
			// the write lock to itself until it is done.
			if rng.IntN(10) == 0 {
				for t0 := trims.Load(); trims.Load() == t0 && !done.Load(); {
					runtime.Gosched()
				}
			}
		}
	}()
	wg.Add(1)
	go func() { // the trimmer
		defer wg.Done()
		for !done.Load() {
			if _, err := s.Trim(); err != nil {
				fail("Trim: %v", err)
				return
			}
			trims.Add(1)
		}
	}()
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var last argent.Index
			for !done.Load() {
				if reads.Add(1)%256 == 0 {
					runtime.Gosched() // let the writer and the trimmer in
				}
				h := s.Horizon() // first: the horizon never passes the applied index
				at := s.Applied()
				if at < last {
					fail("Applied went back from %d to %d", last, at)
				}
				last = at
				if rng.IntN(2) == 0 {
					// An older index that was inside the history a moment ago.
					at = h + argent.Index(rng.IntN(int(at-h)+1))
				}
				compacted := func(err error) bool {
					if errors.Is(err, argent.ErrCompacted) && s.Horizon() > at {
						misses.Add(1)
						return true
					}
					return false
				}
				switch rng.IntN(4) {
				case 0, 1:
					k := testKeys[rng.IntN(len(testKeys))]
					got, err := s.Get(context.Background(), []byte(k), at)
					want, ok := m.states[at][k]
					switch {
					case compacted(err):
					case !ok && errors.Is(err, argent.ErrNotFound):
					case ok && err == nil && string(got.Value) == want.value && got.ModIndex == want.mod:
					default:
						fail("Get(%q) at %d = %q@%d, %v; want %q@%d (present %v)", k, at, got.Value, got.ModIndex, err, want.value, want.mod, ok)
					}
				case 2:
					p := testPrefixes[rng.IntN(len(testPrefixes))]
					got, _, err := s.Scan(context.Background(), []byte(p), nil, 100, at)
					if !compacted(err) && (err != nil || !sameItems(got, m.scan(p, at))) {
						fail("Scan(%q) at %d = %s, %v; want %s", p, at, fmtItems(got), err, fmtItems(m.scan(p, at)))
					}
				case 3:
					first, last := s.LogFirst(), s.Applied()
					if first > last {
						continue
					}
					from := first + argent.Index(rng.IntN(int(last-first)+1))
					next := from
					_, err := s.ReadLog(from, 300, func(e *logstore.Entry) bool {
						if w := &m.entries[next-1]; e.Index != next || e.Chain != w.Chain || !sameOps(e.Ops, w.Ops) {
							fail("ReadLog from %d: entry %d, want %d", from, e.Index, next)
						}
						next++
						return true
					})
					if errors.Is(err, argent.ErrCompacted) && s.LogFirst() > from {
						misses.Add(1)
					} else if err != nil {
						fail("ReadLog(%d): %v", from, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return
	}
	if s.Applied() != argent.Index(entries) {
		t.Fatalf("Applied = %d, want %d", s.Applied(), entries)
	}
	if s.Horizon() == 0 || s.LogFirst() == 1 {
		t.Fatalf("Trim never dropped anything: horizon %d, log first %d", s.Horizon(), s.LogFirst())
	}
	t.Logf("%d reads, %d answered ErrCompacted; horizon %d, log first %d", reads.Load(), misses.Load(), s.Horizon(), s.LogFirst())
	checkStore(t, s, m, 3)
}

// TestStore_WaitApplied checks that waiters wake when a commit reaches
// their index, and time out or give up otherwise.
func TestStore_WaitApplied(t *testing.T) {
	s := mustOpen(t, "db", nil)
	type result struct {
		at  argent.Index
		err error
	}
	res := make(chan result, 1)
	go func() {
		at, err := s.WaitApplied(t.Context(), time.Minute, 2)
		res <- result{at, err}
	}()
	for i := range 2 {
		w := s.NewWriter()
		if _, err := w.Append([]argent.Op{put("k", fmt.Sprint(i))}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if r := <-res; r.err != nil || r.at != 2 {
		t.Fatalf("WaitApplied(2) = %d, %v", r.at, r.err)
	}
	if at, err := s.WaitApplied(t.Context(), time.Minute, 1); err != nil || at != 2 {
		t.Fatalf("WaitApplied(1) when at 2 = %d, %v", at, err)
	}
	if at, err := s.WaitApplied(t.Context(), 10*time.Millisecond, 3); !errors.Is(err, argent.ErrTimeout) || at != 2 {
		t.Fatalf("WaitApplied(3) = %d, %v; want 2, ErrTimeout", at, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if at, err := s.WaitApplied(ctx, time.Minute, 3); !errors.Is(err, argent.ErrTimeout) || !errors.Is(err, context.Canceled) || at != 2 {
		t.Fatalf("WaitApplied(3) with ctx cancelled = %d, %v; want 2, ErrTimeout and context.Canceled", at, err)
	}
}

// TestStore_ReadsDuringRestore is a regression test: a read that passed
// its first check just before BeginRestore wiped the data used to answer
// ErrNotFound (or an empty scan or snapshot) for keys that exist at the
// index it read at. It must answer right or ErrUnavailable.
func TestStore_ReadsDuringRestore(t *testing.T) {
	var wrong, reads atomic.Int64
	deadline := time.Now().Add(time.Second)
	for iter := 0; time.Now().Before(deadline); iter++ {
		s := mustOpen(t, "db", nil)
		m := newModel()
		commitAll(t, s, m, [][]argent.Op{{put("a", "1"), put("b", "2"), put("c", "3")}}, 1, time.Now)
		var stop atomic.Bool
		var wg sync.WaitGroup
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					reads.Add(1)
					switch r {
					case 0:
						if v, err := s.Get(context.Background(), []byte("b"), 1); err == nil && string(v.Value) == "2" || errors.Is(err, argent.ErrUnavailable) {
							continue
						}
					default:
						if items, _, err := s.Scan(context.Background(), nil, nil, 10, 1); err == nil && len(items) == 3 || errors.Is(err, argent.ErrUnavailable) {
							continue
						}
					}
					wrong.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				sn, err := s.NewSnapshot()
				if errors.Is(err, argent.ErrUnavailable) {
					continue
				}
				n := 0
				if err == nil {
					err = sn.Records(nil, func([]byte, argent.Index, []byte) error { n++; return nil })
					_ = sn.Close()
				}
				if err != nil || n != 3 {
					wrong.Add(1)
				}
			}
		}()
		time.Sleep(time.Duration(iter%5) * 100 * time.Microsecond)
		rs, err := s.BeginRestore(argent.DatasetID{1}, argent.State{Index: 5})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
		stop.Store(true)
		wg.Wait()
		rs.Abort()
		_ = s.Close()
	}
	if wrong.Load() > 0 {
		t.Fatalf("%d of %d reads during BeginRestore gave a wrong answer", wrong.Load(), reads.Load())
	}
}
