package proxycache_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// TestCache_Concurrent runs the log applier, a miss resolver and readers at
// once, under a budget that keeps the policy evicting. The resolver reads
// Applied(), looks the value up in the model at that index and admits it,
// racing the applier: Admit must refuse it whenever the index moved. Each
// reader notes Applied() before and after a Get; a hit must hold, from its
// Since, up to an index at or after the first, and so be the value at the
// first if its Since is not after it (the contract a proxy serving at that
// index relies on). This also checks the memory cache's coherence.
func TestCache_Concurrent(t *testing.T) {
	entriesN := 3000
	if raceEnabled {
		entriesN = 600
	}
	seed := testSeed(t)
	for _, memory := range []int64{-1, 1 << 20} {
		t.Run(fmt.Sprint("Memory", memory), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(memory)))
			m := newModel()
			for range entriesN {
				m.add(randomOps(rng))
			}
			c := mustOpen(t, "db", proxycache.Options{FS: vfs.NewMem(), Budget: 2000, MemoryCache: memory})

			var done atomic.Bool
			var wg sync.WaitGroup
			errc := make(chan error, 8)
			fail := func(err error) {
				select {
				case errc <- err:
				default:
				}
				done.Store(true)
			}
			var refused, admitted atomic.Int64
			wg.Add(1)
			go func() { // resolver
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 1))
				for !done.Load() {
					k := testKeys[r.IntN(len(testKeys))]
					at := c.Applied()
					e, since := m.entryAt(k, at)
					e.Since = since
					ok, err := c.Admit([]byte(k), e, at)
					if err != nil {
						fail(err)
						return
					}
					if ok {
						admitted.Add(1)
					} else {
						refused.Add(1)
					}
					runtime.Gosched() // the applier waits for us: let it run
				}
			}()
			var hits, gets atomic.Int64
			for g := range 2 {
				wg.Add(1)
				go func() { // reader
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, uint64(10+g)))
					for !done.Load() {
						k := testKeys[r.IntN(len(testKeys))]
						before := c.Applied()
						e, ok := c.Get([]byte(k))
						after := c.Applied()
						gets.Add(1)
						runtime.Gosched()
						if !ok {
							continue
						}
						hits.Add(1)
						// The entry may come from a group the applier
						// committed but has not published yet (at most 3
						// entries on), so it holds at some index from
						// before to after+3; a reader serving at before
						// uses it only if Since <= before.
						if e.Since <= before {
							if err := m.check(k, e, before); err != nil {
								fail(fmt.Errorf("Get after %d: %w", before, err))
								return
							}
						}
						var errs []error
						for at := before; at <= min(after+3, m.last()); at++ {
							err := m.check(k, e, at)
							if err == nil {
								errs = nil
								break
							}
							errs = append(errs, err)
						}
						if errs != nil {
							fail(fmt.Errorf("Get between %d and %d: %w", before, after, errors.Join(errs...)))
							return
						}
					}
				}()
			}
			for i := 0; i < entriesN && !done.Load(); {
				n := min(1+rng.IntN(3), entriesN-i)
				var es []*argent.Entry
				for j := range n {
					es = append(es, &m.entries[i+j])
				}
				if err := c.Apply(es...); err != nil {
					fail(err)
				}
				i += n
				// Let the resolver and the readers work at this index.
				tried, read := admitted.Load()+refused.Load(), gets.Load()
				for !done.Load() && (admitted.Load()+refused.Load() == tried || gets.Load() < read+2) {
					runtime.Gosched()
				}
			}
			done.Store(true)
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			checkStored(t, c, m)
			t.Logf("%d admitted, %d refused as stale, %d hits of %d gets", admitted.Load(), refused.Load(), hits.Load(), gets.Load())
		})
	}
}
