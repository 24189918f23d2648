package kv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// The benchmarks run on the OS file system (in a temporary directory), so
// that Commit's fsync and Pebble's reads from disk are real:
//
//	go test -run x -bench . -benchtime 2s ./internal/kv

const (
	benchKeys  = 100_000
	benchValue = 256
)

func benchKey(i int) []byte { return fmt.Appendf(nil, "key/%08d", i) }

// benchFixture is a store loaded once per test binary and shared by the
// benchmarks that only read it.
type benchFixture struct {
	once sync.Once
	dir  string
	s    *kv.Store
	err  error
	// at is the index at which every key holds its first version; reads at
	// it of a key rewritten later take the history path.
	at argent.Index
}

var (
	fixtureMu sync.Mutex
	fixtures  = map[string]*benchFixture{}
)

// loadFixture returns the store called name, writing versions versions of
// benchKeys keys of benchValue bytes the first time it is asked for.
func loadFixture(b *testing.B, name string, versions int) (*kv.Store, argent.Index) {
	b.Helper()
	fixtureMu.Lock()
	f := fixtures[name]
	if f == nil {
		f = &benchFixture{}
		fixtures[name] = f
	}
	fixtureMu.Unlock()
	f.once.Do(func() {
		f.dir, f.err = os.MkdirTemp("", "argent-kv-bench-")
		if f.err != nil {
			return
		}
		// A small memtable, so that most keys end up in sstables, as in a
		// store that has run for a while, rather than all in the memtable.
		f.s, f.err = kv.Open(f.dir, &kv.Options{FS: vfs.Default, MemTableSize: 4 << 20})
		if f.err != nil {
			return
		}
		rng := rand.New(rand.NewPCG(1, 2))
		value := make([]byte, benchValue)
		for v := range versions {
			// 1,000 puts per entry, 10 entries per Commit.
			for i := 0; i < benchKeys; {
				w := f.s.NewWriter()
				for e := 0; e < 10 && i < benchKeys; e++ {
					ops := make([]argent.Op, 0, 1000)
					for ; len(ops) < 1000 && i < benchKeys; i++ {
						for j := range value {
							value[j] = byte(rng.Uint32())
						}
						ops = append(ops, argent.Op{Type: argent.OpPut, Key: benchKey(i), Value: append([]byte(nil), value...)})
					}
					if _, f.err = w.Append(ops, time.Now()); f.err != nil {
						w.Discard()
						return
					}
				}
				if f.err = w.Commit(); f.err != nil {
					return
				}
			}
			if v == 0 {
				f.at = f.s.Applied()
			}
		}
	})
	if f.err != nil {
		b.Fatalf("load fixture %s: %v", name, f.err)
	}
	return f.s, f.at
}

// closeBenchFixtures closes the shared stores and removes their files.
func closeBenchFixtures() {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	for _, f := range fixtures {
		if f.s != nil {
			_ = f.s.Close()
		}
		if f.dir != "" {
			_ = os.RemoveAll(f.dir)
		}
	}
}

// BenchmarkStore_Get reads random keys at the applied index from parallel
// goroutines: the latest-version path.
func BenchmarkStore_Get(b *testing.B) {
	s, _ := loadFixture(b, "latest", 1)
	at := s.Applied()
	readParallel(b, func(rng *rand.Rand) error {
		if _, err := s.Get(context.Background(), benchKey(rng.IntN(benchKeys)), at); err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		return nil
	})
}

// readParallel calls read from parallel goroutines, each with a random
// source of its own, until the benchmark has run; the first error fails it.
func readParallel(b *testing.B, read func(rng *rand.Rand) error) {
	var seed sync.Mutex
	n := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		seed.Lock()
		n++
		rng := rand.New(rand.NewPCG(n, 0))
		seed.Unlock()
		for pb.Next() {
			if err := read(rng); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkStore_GetAbsent reads keys that were never written, between
// and after the stored ones: the read cache cannot hold them, so every read
// goes to Pebble (and its Bloom filters).
func BenchmarkStore_GetAbsent(b *testing.B) {
	s, _ := loadFixture(b, "latest", 1)
	at := s.Applied()
	readParallel(b, func(rng *rand.Rand) error {
		k := fmt.Appendf(benchKey(rng.IntN(2*benchKeys)), "/absent")
		if _, err := s.Get(context.Background(), k, at); !errors.Is(err, argent.ErrNotFound) {
			return fmt.Errorf("Get of an absent key: %v", err)
		}
		return nil
	})
}

// BenchmarkStore_GetAsOf reads random keys at an index older than their
// latest version, so each read looks in the history. Latest is the same
// store read at the applied index, for comparison.
func BenchmarkStore_GetAsOf(b *testing.B) {
	s, old := loadFixture(b, "history", 2)
	for _, bc := range []struct {
		name string
		at   argent.Index
	}{
		{name: "History", at: old},
		{name: "Latest", at: s.Applied()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			b.ReportAllocs()
			for b.Loop() {
				v, err := s.Get(context.Background(), benchKey(rng.IntN(benchKeys)), bc.at)
				if err != nil || v.ModIndex > bc.at {
					b.Fatalf("Get at %d: mod %d, %v", bc.at, v.ModIndex, err)
				}
			}
		})
	}
}

// BenchmarkStore_Scan reads pages of consecutive keys from a random start.
func BenchmarkStore_Scan(b *testing.B) {
	s, _ := loadFixture(b, "latest", 1)
	at := s.Applied()
	for _, limit := range []int{10, 100} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, 6))
			b.ReportAllocs()
			for b.Loop() {
				after := benchKey(rng.IntN(benchKeys - limit - 1))
				items, _, err := s.Scan(context.Background(), []byte("key/"), after, limit, at)
				if err != nil || len(items) != limit {
					b.Fatalf("Scan: %d items, %v", len(items), err)
				}
			}
			b.ReportMetric(float64(limit), "keys/op")
		})
	}
}

// BenchmarkWriter_Commit appends one entry of 1 or 100 puts of 256 bytes
// and commits it (with a real fsync) per iteration.
func BenchmarkWriter_Commit(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint("puts=", n), func(b *testing.B) {
			s, err := kv.Open(b.TempDir(), &kv.Options{FS: vfs.Default})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			rng := rand.New(rand.NewPCG(7, 8))
			value := make([]byte, benchValue)
			ops := make([]argent.Op, n)
			b.ReportAllocs()
			b.SetBytes(int64(n * benchValue))
			start := time.Now()
			for b.Loop() {
				for i := range ops {
					ops[i] = argent.Op{Type: argent.OpPut, Key: benchKey(rng.IntN(benchKeys)), Value: value}
				}
				w := s.NewWriter()
				if _, err := w.Append(ops, time.Now()); err != nil {
					w.Discard()
					b.Fatal(err)
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "puts/s")
		})
	}
}
