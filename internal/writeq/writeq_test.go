package writeq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/writeq"
)

var errStopped = errors.New("stopped")

func batch(k string) argent.Batch {
	return argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte("v")}}}
}

// Requests reach the write path in order, with their sizes, and each
// writer gets the answer it was given.
func TestQueue_DeliversInOrder(t *testing.T) {
	q := writeq.New(4)
	go func() {
		for i := range 3 {
			req := <-q.C
			if want := string(batch(string(rune('a' + i))).Ops[0].Key); string(req.Batch.Ops[0].Key) != want || req.Size != 2 {
				t.Errorf("request %d: key %q size %d, want %q size 2", i, req.Batch.Ops[0].Key, req.Size, want)
			}
			req.Answer(argent.Index(i+1), nil)
		}
	}()
	var pend []*writeq.Pending
	for _, k := range []string{"a", "b", "c"} {
		p, err := q.Submit(context.Background(), batch(k))
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, p)
	}
	for i, p := range pend {
		if idx, err := p.Wait(context.Background()); err != nil || idx != argent.Index(i+1) {
			t.Fatalf("batch %d: %d, %v", i, idx, err)
		}
	}
}

// TrySubmit refuses when the queue is full, without calling done; Submit
// waits for room until its context ends.
func TestQueue_Full(t *testing.T) {
	q := writeq.New(1)
	if !q.TrySubmit(batch("a"), func(argent.Index, error) {}) {
		t.Fatal("TrySubmit refused an empty queue")
	}
	called := false
	if q.TrySubmit(batch("b"), func(argent.Index, error) { called = true }) || called {
		t.Fatal("TrySubmit took a batch into a full queue")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Submit(ctx, batch("c")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit into a full queue: %v, want the context's error", err)
	}
}

// Close answers what is still queued with its error, and every later
// submission fails with it.
func TestQueue_Close(t *testing.T) {
	q := writeq.New(4)
	p, err := q.Submit(context.Background(), batch("a"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	if !q.TrySubmit(batch("b"), func(_ argent.Index, err error) { got <- err }) {
		t.Fatal("TrySubmit refused")
	}
	q.Close(errStopped)
	if _, err := p.Wait(context.Background()); !errors.Is(err, errStopped) {
		t.Fatalf("queued Submit after Close: %v", err)
	}
	if err := <-got; !errors.Is(err, errStopped) {
		t.Fatalf("queued TrySubmit after Close: %v", err)
	}
	if _, err := q.Write(context.Background(), batch("c")); !errors.Is(err, errStopped) {
		t.Fatalf("Write after Close: %v", err)
	}
	if q.TrySubmit(batch("d"), func(argent.Index, error) {}) {
		t.Fatal("TrySubmit after Close took the batch")
	}
}
