package root_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/root"
	"github.com/argent-kv/argent/internal/writeq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRoot(t *testing.T, cfg root.Config) (*root.Root, *kv.Store) {
	t.Helper()
	return startRoot(t, "/db", &kv.Options{FS: vfs.NewMem()}, cfg)
}

// startRoot opens a store in dir and runs a root over it until the test
// ends.
func startRoot(tb testing.TB, dir string, opts *kv.Options, cfg root.Config) (*root.Root, *kv.Store) {
	tb.Helper()
	s, err := kv.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	r := root.New(s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return r, s
}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

// Concurrent writers' batches are merged: the log's indexes are gap-free,
// every acknowledged batch is in the entry of the index it was given, whole
// and once, each entry is made of exactly the batches acknowledged with its
// index, and a writer's later batch never gets an earlier index.
func TestRoot_Write_ConcurrentMerged(t *testing.T) {
	var commits, batches atomic.Int64
	r, s := newRoot(t, root.Config{OnCommit: func(n int, _ time.Duration) {
		commits.Add(1)
		batches.Add(int64(n))
	}})
	const writers, each = 50, 40
	var mu sync.Mutex
	got := make(map[string]argent.Index) // key written -> index acknowledged
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last argent.Index
			for i := 0; i < each; i++ {
				k := fmt.Sprintf("w%02d/%03d", w, i)
				// Two ops per batch: a batch must stay whole in its entry.
				idx, err := r.Write(context.Background(), argent.Batch{Ops: []argent.Op{put(k, "v"), put(k+"/b", "v")}})
				if err != nil {
					t.Error(err)
					return
				}
				if idx <= last {
					t.Errorf("%s acknowledged at %d, after the writer's previous batch at %d", k, idx, last)
				}
				last = idx
				mu.Lock()
				got[k] = idx
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool)
	n, err := s.ReadLog(1, 0, func(e *logstore.Entry) bool {
		if len(e.Ops)%2 != 0 {
			t.Errorf("entry %d has %d ops: a batch was split", e.Index, len(e.Ops))
		}
		for i := 0; i+1 < len(e.Ops); i += 2 {
			k := string(e.Ops[i].Key)
			if string(e.Ops[i+1].Key) != k+"/b" {
				t.Errorf("entry %d: op %d is %q, op %d %q: a batch was split", e.Index, i, k, i+1, e.Ops[i+1].Key)
			}
			if seen[k] {
				t.Errorf("%s appears twice in the log", k)
			}
			seen[k] = true
			if got[k] != e.Index {
				t.Errorf("entry %d holds %q, acknowledged at %d", e.Index, k, got[k])
			}
		}
		return true
	})
	if err != nil || n != s.Applied()+1 {
		t.Fatalf("ReadLog = %d, %v; applied %d", n, err, s.Applied())
	}
	if len(seen) != writers*each {
		t.Fatalf("the log holds %d batches, %d were acknowledged", len(seen), writers*each)
	}
	if s.Applied() >= writers*each || commits.Load() >= batches.Load() {
		t.Errorf("%d entries, %d commits for %d batches: nothing merged", s.Applied(), commits.Load(), batches.Load())
	}
	t.Logf("%d batches in %d entries", writers*each, s.Applied())
}

// Conditions are checked against the state including earlier batches, and a
// failed condition takes no index.
func TestRoot_Write_Conditions(t *testing.T) {
	r, s := newRoot(t, root.Config{MaxDelay: 20 * time.Millisecond})
	ctx := context.Background()
	tests := []struct {
		name    string
		batch   argent.Batch
		wantIdx argent.Index
		wantErr bool
	}{
		{name: "CreateIfAbsent", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 0}}, Ops: []argent.Op{put("a", "1")}}, wantIdx: 1},
		{name: "CreateAgainFails", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 0}}, Ops: []argent.Op{put("a", "2")}}, wantErr: true},
		{name: "CASMatches", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 1}}, Ops: []argent.Op{put("a", "3")}}, wantIdx: 2},
		{name: "CASStale", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 1}}, Ops: []argent.Op{put("b", "x")}}, wantErr: true},
		{name: "Unconditional", batch: argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("a")}}}, wantIdx: 3},
		{name: "AbsentAfterDelete", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 0}}, Ops: []argent.Op{put("c", "y")}}, wantIdx: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := r.Write(ctx, tt.batch)
			var ce *argent.ConditionError
			if tt.wantErr {
				if !errors.As(err, &ce) || !errors.Is(err, argent.ErrConditionFailed) {
					t.Fatalf("err = %v, want a ConditionError", err)
				}
				return
			}
			if err != nil || idx != tt.wantIdx {
				t.Fatalf("Write = %d, %v; want %d", idx, err, tt.wantIdx)
			}
		})
	}
	if _, err := s.Get(context.Background(), []byte("b"), s.Applied()); !errors.Is(err, argent.ErrNotFound) {
		t.Fatalf("b written by a failed batch: %v", err)
	}

	// Many compare-and-set writers on one key within shared groups: exactly
	// one wins per mod index.
	var wg sync.WaitGroup
	var wins atomic.Int64
	start := s.Applied()
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Write(ctx, argent.Batch{Conditions: []argent.Condition{{Key: []byte("c"), ModIndex: 4}}, Ops: []argent.Op{put("c", fmt.Sprint(w))}})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, argent.ErrConditionFailed) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || s.Applied() != start+1 {
		t.Fatalf("%d CAS winners, applied %d -> %d; want exactly one", wins.Load(), start, s.Applied())
	}
}

func TestRoot_Write_AfterStop(t *testing.T) {
	s, err := kv.Open("/db", &kv.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := root.New(s, root.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	if _, err := r.Write(context.Background(), argent.Batch{Ops: []argent.Op{put("a", "1")}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if _, err := r.Write(context.Background(), argent.Batch{Ops: []argent.Op{put("a", "2")}}); !errors.Is(err, root.ErrStopped) {
		t.Fatalf("Write after stop = %v, want ErrStopped", err)
	}
}

func BenchmarkRoot_Write(b *testing.B) {
	for _, writers := range []int{1, 50} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			r, _ := startRoot(b, b.TempDir(), nil, root.Config{})
			ctx := context.Background()
			value := make([]byte, 256)
			var next atomic.Int64
			b.SetParallelism((writers + 1) / 2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Sprintf("key/%08d", next.Add(1)%100000)
					if _, err := r.Write(ctx, argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: value}}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRoot_Pipelined is the root's share of a pipelined client's
// durable writes (redis-benchmark -c 50 -P 16): 50 writers each with 16
// single-put batches in flight, 256 B values over 100,000 keys. It reports
// the process's CPU time per write (Pebble's background work included).
func BenchmarkRoot_Pipelined(b *testing.B) {
	r, _ := startRoot(b, b.TempDir(), nil, root.Config{})
	ctx := context.Background()
	const writers, depth = 50, 16
	var next atomic.Int64
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			value := make([]byte, 256)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			pend := make([]*writeq.Pending, 0, depth)
			for next.Add(depth) <= int64(b.N)+depth-1 {
				for range depth {
					k := fmt.Appendf(nil, "key:%012d", rng.IntN(100000))
					p, err := r.Submit(ctx, argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: k, Value: value}}})
					if err != nil {
						b.Error(err)
						return
					}
					pend = append(pend, p)
				}
				for _, p := range pend {
					if _, err := p.Wait(ctx); err != nil {
						b.Error(err)
						return
					}
				}
				pend = pend[:0]
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/write")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
