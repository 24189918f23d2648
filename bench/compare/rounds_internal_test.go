package main

import (
	"context"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// memStore is a store that answers at once: every key exists.
type memStore struct{}

func (memStore) get(context.Context, int, []byte) error         { return nil }
func (memStore) put(context.Context, int, []byte, []byte) error { return nil }
func (memStore) mget(context.Context, int, [][]byte) error      { return nil }
func (memStore) setDeadline(int, time.Time)                     {}

var _ store = memStore{}

func TestMeasure(t *testing.T) {
	cfg := config{duration: 300 * time.Millisecond, rounds: 3, timeout: time.Second, seed: 1}
	systems := []system{{name: "a", st: memStore{}}, {name: "b", st: memStore{}}}
	out, err := measure(context.Background(), cfg, systems, comparison{
		id:      func(s system) string { return "test/" + s.name },
		workers: 2,
		newWorker: func(s system) func(int, *mrand.Rand) worker {
			return func(conn int, r *mrand.Rand) worker {
				return &readWorker{st: s.st, conn: conn, r: r, keys: uniformKeys{n: 100}}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d results, want 2", len(out))
	}
	for i, r := range out {
		if r.ID != "test/"+systems[i].name || r.System != systems[i].name || len(r.RoundOpsPerSec) != 3 {
			t.Errorf("result %d: id %q system %q rounds %v", i, r.ID, r.System, r.RoundOpsPerSec)
		}
		if r.Ops == 0 || r.Latency.Count != r.Ops || r.OpsPerSec != median(r.RoundOpsPerSec) {
			t.Errorf("result %d: ops %d, latency count %d, ops/s %v of rounds %v", i, r.Ops, r.Latency.Count, r.OpsPerSec, r.RoundOpsPerSec)
		}
		if r.Duration < 0.25 || r.Duration > 1 {
			t.Errorf("result %d: %v s over its rounds, want about 0.3", i, r.Duration)
		}
	}
}

func TestCombineRounds_Open(t *testing.T) {
	mk := func(ops int64, d float64) *runResult {
		return &runResult{ID: "x", Rate: 100, Ops: ops, Duration: d, OpsPerSec: float64(ops) / d, ServerCores: 1, cpuWall: d}
	}
	c := combineRounds([]*runResult{mk(100, 1), mk(50, 1)}, 1)
	if c.OpsPerSec != 75 || c.Ops != 150 || c.ServerCores != 1 || c.ServerUsPerOp != 2e6/150 {
		t.Errorf("combined %+v", c)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
