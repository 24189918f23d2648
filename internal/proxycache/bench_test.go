package proxycache_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// The benchmarks run on the OS file system, in a temporary directory:
//
//	go test -run x -bench . -benchtime 2s ./internal/proxycache

const (
	benchKeys  = 100_000
	benchValue = 256
)

var blockCache int64 = 8 << 20

func benchKey(i int) []byte { return fmt.Appendf(nil, "key/%08d", i) }

// benchCache returns a cache at index 1 holding benchKeys keys with values
// of benchValue bytes, with a budget that holds them all.
func benchCache(b *testing.B, memory int64) *proxycache.Cache {
	b.Helper()
	c := mustOpen(b, b.TempDir(), proxycache.Options{Budget: 1 << 30, MemoryCache: memory, BlockCacheSize: blockCache})
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, benchValue)
	for i := range benchKeys {
		if _, err := c.Admit(benchKey(i), proxycache.Entry{Present: true, Value: argent.Value{Value: val, ModIndex: 1}}, 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.EvictNow(); err != nil {
		b.Fatal(err)
	}
	// Settle Pebble, so that background compactions of the load do not
	// run during the measurement.
	if err := c.Compact(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCache_GetHit reads cached keys from the memory cache (which
// holds them all) or from Pebble (no memory cache), uniformly at random
// over all benchKeys keys or over 1,000 hot ones, from one goroutine or
// from GOMAXPROCS.
func BenchmarkCache_GetHit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		memory int64
	}{{"Memory", 64 << 20}, {"Pebble", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchCache(b, bc.memory)
			keys := make([][]byte, benchKeys)
			for i := range keys {
				keys[i] = benchKey(i)
			}
			for _, k := range keys { // warm the memory cache
				c.Get(k)
			}
			for _, n := range []int{1000, benchKeys} {
				b.Run(fmt.Sprintf("Keys%d", n), func(b *testing.B) {
					rng := rand.New(rand.NewPCG(1, 2))
					for b.Loop() {
						if _, ok := c.Get(keys[rng.IntN(n)]); !ok {
							b.Fatal("miss")
						}
					}
				})
				b.Run(fmt.Sprintf("Keys%dParallel", n), func(b *testing.B) {
					b.RunParallel(func(pb *testing.PB) {
						rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
						for pb.Next() {
							if _, ok := c.Get(keys[rng.IntN(n)]); !ok {
								b.Error("miss")
								return
							}
						}
					})
				})
			}
		})
	}
}

func BenchmarkCache_GetMiss(b *testing.B) {
	c := benchCache(b, 64<<20)
	k := []byte("not/cached")
	b.ResetTimer()
	for b.Loop() {
		if _, ok := c.Get(k); ok {
			b.Fatal("hit")
		}
	}
}

// BenchmarkCache_Apply applies one entry of one put per call, without
// fsync: to a cached key (the entry is rewritten) or to a key that is not
// cached (only the applied state is written). SyncEvery100 adds one Sync
// per 100 entries, the cost of making them durable spread over them.
func BenchmarkCache_Apply(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cached bool
		sync   int
	}{{"Cached", true, 0}, {"Uncached", false, 0}, {"CachedSyncEvery100", true, 100}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchCache(b, 64<<20)
			val := make([]byte, benchValue)
			rng := rand.New(rand.NewPCG(1, 2))
			next := c.Applied() + 1
			b.ResetTimer()
			for b.Loop() {
				k := benchKey(rng.IntN(benchKeys))
				if !bc.cached {
					k = benchKey(benchKeys + rng.IntN(benchKeys))
				}
				e := &argent.Entry{Index: next, Ops: []argent.Op{{Type: argent.OpPut, Key: k, Value: val}}}
				if err := c.Apply(e); err != nil {
					b.Fatal(err)
				}
				if bc.sync > 0 && next%argent.Index(bc.sync) == 0 {
					if _, err := c.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				next++
			}
		})
	}
}

// BenchmarkCache_Admit admits new keys with values of benchValue bytes,
// under a budget that holds them all or one that keeps evicting.
func BenchmarkCache_Admit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		budget int64
	}{{"NoEviction", 1 << 30}, {"Evicting", 4 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			c := mustOpen(b, b.TempDir(), proxycache.Options{Budget: bc.budget})
			if err := c.Reset(argent.State{Index: 1}); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, benchValue)
			i, refused := 0, 0
			b.ResetTimer()
			for b.Loop() {
				ok, err := c.Admit(benchKey(i), proxycache.Entry{Present: true, Value: argent.Value{Value: val, ModIndex: 1}}, 1)
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					refused++ // over the disk limit: a refusal costs a lock and a check
				}
				i++
			}
			b.ReportMetric(float64(refused)/float64(i), "refused/op")
		})
	}
}

// BenchmarkCache_Open reopens a cache of benchKeys entries (a restart).
func BenchmarkCache_Open(b *testing.B) {
	dir := b.TempDir()
	c := mustOpen(b, dir, proxycache.Options{Budget: 1 << 30})
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, benchValue)
	for i := range benchKeys {
		if _, err := c.Admit(benchKey(i), proxycache.Entry{Present: true, Value: argent.Value{Value: val, ModIndex: 1}}, 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		c, err := proxycache.Open(dir, proxycache.Options{Budget: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
