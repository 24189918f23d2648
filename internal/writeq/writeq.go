// Package writeq is the queue of client batches in front of a write path
// (the single root's committer, a root group member's proposer). Writers
// queue batches and wait for their answer, or hand over a callback; the write
// path takes them from C, merges what it can, and answers each one once.
//
//	q := writeq.New(1024)
//	go func() { for req := range q.C { ...; req.Answer(idx, err) } }()
//	idx, err := q.Write(ctx, batch)
//	...
//	q.Close(ErrStopped) // answers whatever is still queued
package writeq

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"

	"github.com/argent-kv/argent"
)

// Request is one client batch in the queue.
type Request struct {
	Batch argent.Batch
	Size  int                       // key and value bytes of Batch
	resp  chan result               // Submit's requests
	done  func(argent.Index, error) // TrySubmit's requests
}

type result struct {
	index argent.Index
	err   error
}

// Answer gives the request its index or error. It must be called once.
func (req *Request) Answer(index argent.Index, err error) {
	if req.done != nil {
		req.done(index, err)
		return
	}
	req.resp <- result{index, err}
}

// Queue is the queue of requests. Its zero value is not usable; use New.
type Queue struct {
	// C delivers the queued requests to the write path, in order.
	C chan *Request
	// closing is closed when the write path stops taking requests;
	// submitting counts the enqueues under way, which Close waits for.
	closing    chan struct{}
	closeErr   error
	submitting atomic.Int64
}

// New returns a queue holding up to n requests.
func New(n int) *Queue {
	return &Queue{C: make(chan *Request, n), closing: make(chan struct{})}
}

// Size returns the key and value bytes of b.
func Size(b *argent.Batch) int {
	n := 0
	for _, op := range b.Ops {
		n += len(op.Key) + len(op.Value)
	}
	return n
}

// Write queues b and waits for its answer.
func (q *Queue) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	p, err := q.Submit(ctx, b)
	if err != nil {
		return 0, err
	}
	return p.Wait(ctx)
}

// Pending is a batch queued by Submit.
type Pending struct {
	q   *Queue
	req *Request
}

// Submit queues b and returns without waiting for its answer, so that one
// caller can have many batches in flight (a pipelined client's writes). The
// batches one caller submits are delivered in the order it submitted them.
// It waits only while the queue is full.
func (q *Queue) Submit(ctx context.Context, b argent.Batch) (*Pending, error) {
	req := &Request{Batch: b, Size: Size(&b), resp: make(chan result, 1)}
	if err := q.enqueue(ctx, req, true); err != nil {
		return nil, err
	}
	return &Pending{q: q, req: req}, nil
}

// TrySubmit queues b like Submit if the queue has room, and reports false
// otherwise. done is called once with b's index, or with the error that
// failed it, from the write path's goroutines: it must not block. This lets
// an event loop have writes in flight without a goroutine for each.
func (q *Queue) TrySubmit(b argent.Batch, done func(argent.Index, error)) bool {
	req := &Request{Batch: b, Size: Size(&b), done: done}
	return q.enqueue(context.Background(), req, false) == nil
}

// errFull: the queue has no room, and the caller would not wait for it.
var errFull = errors.New("writeq: queue full")

// enqueue queues req, waiting for room if wait is set (until ctx ends) and
// failing with errFull otherwise. Once the queue is closing it fails with
// the error given to Close; Close answers whatever an enqueue that got past
// that check queued.
func (q *Queue) enqueue(ctx context.Context, req *Request, wait bool) error {
	q.submitting.Add(1)
	defer q.submitting.Add(-1)
	select {
	case <-q.closing:
		return q.closeErr
	default:
	}
	if !wait {
		select {
		case q.C <- req:
			return nil
		default:
			return errFull
		}
	}
	select {
	case q.C <- req:
		return nil
	case <-q.closing:
		return q.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait returns the batch's index once the write path answers it.
func (p *Pending) Wait(ctx context.Context) (argent.Index, error) {
	select {
	case res := <-p.req.resp:
		return res.index, res.err
	case <-p.q.closing:
		// The write path answers every request it took before it
		// stopped, and Close every request still queued.
		select {
		case res := <-p.req.resp:
			return res.index, res.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close stops the queue: every later enqueue fails with err, and every
// request still queued is answered with it. The write path calls it once,
// when it stops taking requests, and must answer the requests it took.
func (q *Queue) Close(err error) {
	q.closeErr = err
	close(q.closing)
	for q.submitting.Load() > 0 {
		runtime.Gosched()
	}
	for {
		select {
		case req := <-q.C:
			req.Answer(0, err)
		default:
			return
		}
	}
}
