package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWorker answers at once: every third request is a miss, every
// fifth fails.
type fakeWorker struct{ n int }

func (w *fakeWorker) do(context.Context) (int, error) {
	w.n++
	switch {
	case w.n%5 == 0:
		return 0, errors.New("status 500")
	case w.n%3 == 0:
		return 1, errMiss
	}
	return w.n % 2, nil
}

func TestRun(t *testing.T) {
	for _, rate := range []float64{0, 2000} {
		spec := runSpec{
			id: "test", system: "fake", workers: 4, duration: 200 * time.Millisecond, rate: rate,
			kinds: []string{"read", "write"}, keysPerOp: 10, timeout: time.Second,
			newWorker: func(int, time.Time) (worker, error) { return &fakeWorker{}, nil },
		}
		res, err := run(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops == 0 || res.Misses == 0 || res.Errors == 0 || res.ErrorKinds["status 500"] != res.Errors {
			t.Fatalf("rate %v: ops %d misses %d errors %v", rate, res.Ops, res.Misses, res.ErrorKinds)
		}
		if res.KeysPerSec != 10*res.OpsPerSec || len(res.ByKind) != 2 || res.Latency.Count != res.Ops {
			t.Errorf("rate %v: %+v", rate, res)
		}
		// Open loop: 400 requests due; a slow machine may leave some unsent.
		if sent := res.Ops + res.Errors + res.Unsent; rate > 0 && (sent < 390 || sent > 410) {
			t.Errorf("open loop at %v/s for 200ms: %d answered, %d failed, %d unsent; want 400", rate, res.Ops, res.Errors, res.Unsent)
		}
	}
}

// TestRun_Cancel checks that a run ends when its context does.
func TestRun_Cancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	spec := runSpec{
		id: "cancel", workers: 2, duration: time.Minute, timeout: time.Second,
		newWorker: func(int, time.Time) (worker, error) { return &fakeWorker{}, nil },
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := run(ctx, spec); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v after the cancel", took)
	}
}

func TestInBatches(t *testing.T) {
	var mu sync.Mutex
	covered := make([]int, 1003)
	err := inBatches(context.Background(), len(covered), 100, 4, func(_ context.Context, from, to int) error {
		mu.Lock()
		defer mu.Unlock()
		for i := from; i < to; i++ {
			covered[i]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range covered {
		if n != 1 {
			t.Fatalf("item %d covered %d times", i, n)
		}
	}
	var calls atomic.Int32
	boom := errors.New("boom")
	err = inBatches(context.Background(), 10_000, 10, 2, func(context.Context, int, int) error {
		calls.Add(1)
		return boom
	})
	if !errors.Is(err, boom) || calls.Load() > 10 {
		t.Errorf("err %v after %d calls, want boom after a few", err, calls.Load())
	}
}

func TestSeqOf(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want int
		ok   bool
	}{
		{"prop/r0/12", 12, true},
		{"prop/r0/", 0, false},
		{"prop/r1/12", 0, false},
		{"prop/r0/x", 0, false},
	} {
		got, ok := seqOf([]byte(tt.key), "prop/r0/")
		if got != tt.want || ok != tt.ok {
			t.Errorf("seqOf(%q) = %d, %v", tt.key, got, ok)
		}
	}
}
