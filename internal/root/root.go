// Package root is argent's write path: it takes batches from many concurrent
// writers, checks their conditions, merges the batches that arrive together
// into one committed batch with the next log index, and acknowledges a batch
// only after the Pebble batch holding it has been fsynced.
//
// The client batches that queue while a commit is in flight are merged (as
// Quicksilver does): one index, one log entry, one chain hash, one fsync.
// Each client batch stays whole and in arrival order; its conditions are
// checked against the state the batches merged before it left, and a batch
// whose conditions fail is left out alone. Every batch of a merge is
// acknowledged with the merged index. MaxDelay can hold a merge open a
// little longer to make it bigger under light load.
//
//	r := root.New(store, root.Config{})
//	go r.Run(ctx)
//	idx, err := r.Write(ctx, argent.Batch{Ops: ops})
package root

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// Config tunes the write path. The zero value is usable.
type Config struct {
	// MaxDelay is how long the committer waits for more writers after the
	// first of a merge arrives. Default 0: a merge is whatever queued while
	// the previous commit was in flight.
	MaxDelay time.Duration
	// MaxGroupBytes bounds the key and value bytes of one merged batch; a
	// client batch larger than it commits alone. Default DefaultMergeBytes.
	MaxGroupBytes int
	// MaxGroupBatches bounds the client batches of one merged batch.
	// Default DefaultMergeBatches.
	MaxGroupBatches int
	// Now returns the commit time. Default time.Now.
	Now func() time.Time
	// OnCommit, if set, is called after each group commits with the number
	// of batches and the time the fsynced commit took.
	OnCommit func(batches int, took time.Duration)
}

// Root is the write path over a store.
type Root struct {
	store *kv.Store
	cfg   Config
	reqs  chan *request
	done  chan struct{}
	// toSync carries committed, not yet durable groups from the committer
	// to the syncer, in index order; synced counts those it finished.
	toSync chan *group
	synced atomic.Int64
	// closing is closed when Run stops taking requests; submitting counts
	// the Submit and TrySubmit calls under way, which drain waits for.
	closing    chan struct{}
	submitting atomic.Int64
}

// The default merge limits.
const (
	DefaultMergeBytes   = 4 << 20
	DefaultMergeBatches = 4096
)

// syncDepth bounds the groups committed but not yet synced: the committer
// applies the next group while the syncer fsyncs the previous ones.
const syncDepth = 4

// group is a committed group waiting for its fsync.
type group struct {
	reqs    []*request
	results []result
	state   argent.State
	start   time.Time
}

type request struct {
	batch argent.Batch
	size  int
	resp  chan result               // Submit's requests
	done  func(argent.Index, error) // TrySubmit's requests
}

// answer gives the request its result, once.
func (req *request) answer(res result) {
	if req.done != nil {
		req.done(res.index, res.err)
		return
	}
	req.resp <- res
}

type result struct {
	index argent.Index
	err   error
}

// ErrStopped is returned by Write once Run has returned. It wraps
// argent.ErrUnavailable.
var ErrStopped = fmt.Errorf("root: write path stopped: %w", argent.ErrUnavailable)

// New returns a write path over store. Call Run to start committing.
func New(store *kv.Store, cfg Config) *Root {
	if cfg.MaxGroupBytes == 0 {
		cfg.MaxGroupBytes = DefaultMergeBytes
	}
	if cfg.MaxGroupBatches == 0 {
		cfg.MaxGroupBatches = DefaultMergeBatches
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Root{store: store, cfg: cfg, reqs: make(chan *request, 1024), done: make(chan struct{}),
		toSync: make(chan *group, syncDepth), closing: make(chan struct{})}
}

// Write commits b and returns its index once it is durable. The batch must
// already have passed argent.Limits.CheckBatch. A failed condition returns a
// *argent.ConditionError and commits nothing. If ctx ends before the batch
// is committed, Write returns ctx's error; the batch may still commit.
func (r *Root) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	p, err := r.Submit(ctx, b)
	if err != nil {
		return 0, err
	}
	return p.Wait(ctx)
}

// Pending is a batch queued by Submit.
type Pending struct {
	r   *Root
	req *request
}

// Submit queues b for the next merge and returns without waiting for its
// commit, so that one caller can have many batches in flight (a pipelined
// client's writes). The batches one caller submits commit in the order it
// submitted them. It waits only while the queue is full.
func (r *Root) Submit(ctx context.Context, b argent.Batch) (*Pending, error) {
	req := &request{batch: b, size: batchSize(&b), resp: make(chan result, 1)}
	if err := r.enqueue(ctx, req, true); err != nil {
		return nil, err
	}
	return &Pending{r: r, req: req}, nil
}

// TrySubmit queues b like Submit if the queue has room, and reports false
// otherwise. done is called once with b's index, or with the error that
// failed it, from the committer's goroutines: it must not block. This lets
// an event loop have writes in flight without a goroutine for each.
func (r *Root) TrySubmit(b argent.Batch, done func(argent.Index, error)) bool {
	req := &request{batch: b, size: batchSize(&b), done: done}
	return r.enqueue(context.Background(), req, false) == nil
}

// errQueueFull: the committer's queue has no room, and the caller would
// not wait for it.
var errQueueFull = errors.New("root: write queue full")

// enqueue queues req for the committer, waiting for room in the queue if
// wait is set (until ctx ends) and failing with errQueueFull otherwise.
// Once Run stops taking requests it fails with ErrStopped; drain answers
// whatever an enqueue that got past that check queued.
func (r *Root) enqueue(ctx context.Context, req *request, wait bool) error {
	r.submitting.Add(1)
	defer r.submitting.Add(-1)
	select {
	case <-r.closing:
		return ErrStopped
	default:
	}
	if !wait {
		select {
		case r.reqs <- req:
			return nil
		default:
			return errQueueFull
		}
	}
	select {
	case r.reqs <- req:
		return nil
	case <-r.closing:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait returns the batch's index once it is durable, as Write does.
func (p *Pending) Wait(ctx context.Context) (argent.Index, error) {
	select {
	case res := <-p.req.resp:
		return res.index, res.err
	case <-p.r.done:
		// Run stopped; it answers every request it took before stopping.
		select {
		case res := <-p.req.resp:
			return res.index, res.err
		default:
			return 0, ErrStopped
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func batchSize(b *argent.Batch) int {
	n := 0
	for _, op := range b.Ops {
		n += len(op.Key) + len(op.Value)
	}
	return n
}

// Run commits merged batches until ctx ends. Batches still queued then
// get ErrStopped.
//
// The committer keeps one merge open while the syncer fsyncs the previous
// one: every batch that arrives meanwhile joins it (its conditions checked,
// its ops applied to the open entry), and the merge commits as soon as the
// syncer is free, so that each fsync carries everything that arrived during
// the one before. A merge that reaches the merge limits commits at once.
func (r *Root) Run(ctx context.Context) error {
	defer close(r.done)
	idle := make(chan struct{}, 1)
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		r.syncLoop(idle)
	}()
	defer func() {
		close(r.toSync)
		<-synced
	}()
	var (
		m    *merge
		next *request // arrived while m was full: opens the next merge
		sent int64    // groups handed to the syncer
		hold *time.Timer
	)
	busy := func() bool { return sent > r.synced.Load() }
	for {
		if m == nil {
			req := next
			next = nil
			if req == nil {
				select {
				case req = <-r.reqs:
				case <-idle:
					continue
				case <-ctx.Done():
					r.drain()
					return nil
				}
			}
			m = r.openMerge()
			m.add(req)
			if r.cfg.MaxDelay > 0 {
				hold = time.NewTimer(r.cfg.MaxDelay)
			}
		}
		// Take what is queued, as far as the merge limits allow.
	take:
		for next == nil {
			select {
			case req := <-r.reqs:
				if !r.fits(m, req) {
					next = req
					break take
				}
				m.add(req)
			default:
				break take
			}
		}
		if next != nil || (!busy() && hold == nil) {
			if hold != nil {
				hold.Stop()
				hold = nil
			}
			if g := r.commit(m); g != nil {
				r.toSync <- g
				sent++
			}
			m = nil
			continue
		}
		var held <-chan time.Time
		if hold != nil {
			held = hold.C
		}
		select {
		case req := <-r.reqs:
			if r.fits(m, req) {
				m.add(req)
			} else {
				next = req
			}
		case <-idle:
		case <-held:
			hold = nil
		case <-ctx.Done():
			m.w.Discard()
			r.fail(m.reqs, ErrStopped)
			if next != nil {
				r.fail([]*request{next}, ErrStopped)
			}
			r.drain()
			return nil
		}
	}
}

// drain fails every queued request once Run stops: it closes closing, so
// that no request is queued after it, waits for the submitters that got
// past that check, and answers what they queued.
func (r *Root) drain() {
	close(r.closing)
	for r.submitting.Load() > 0 {
		runtime.Gosched()
	}
	for {
		select {
		case req := <-r.reqs:
			req.answer(result{err: ErrStopped})
		default:
			return
		}
	}
}

// merge is the open merged batch: the client batches taken so far, applied
// to one open entry of a Writer.
type merge struct {
	w       *kv.Writer
	reqs    []*request
	results []result // refusals (failed conditions); indexes are set at commit
	applied []bool
	size    int
	start   time.Time
	err     error // an Apply failed: the Writer may hold part of a batch
}

func (r *Root) openMerge() *merge {
	m := &merge{w: r.store.NewWriter(), start: time.Now()}
	m.w.Begin(r.cfg.Now())
	return m
}

// fits reports whether req may join m within the merge limits.
func (r *Root) fits(m *merge, req *request) bool {
	return len(m.reqs) < r.cfg.MaxGroupBatches && m.size+req.size <= r.cfg.MaxGroupBytes
}

// add checks req's conditions against the state the batches before it
// left and, if they hold, applies its ops to the open entry; else req is
// left out alone. The first batch of a merge is always added, so a batch
// larger than the merge limits commits alone.
func (m *merge) add(req *request) {
	m.reqs = append(m.reqs, req)
	m.size += req.size
	var res result
	ok := false
	if m.err == nil {
		if err := checkConditions(m.w, req.batch.Conditions); err != nil {
			res.err = err
		} else if err := m.w.Apply(req.batch.Ops); err != nil {
			m.err = fmt.Errorf("root: apply batch: %w", err)
		} else {
			ok = true
		}
	}
	m.results = append(m.results, res)
	m.applied = append(m.applied, ok)
}

// commit closes m's entry and commits it without waiting for fsync, and
// returns the group for the syncer, which makes it durable and answers the
// writers, the refused ones too: their answer rests on state that must be
// durable first. A merge whose batches all failed their conditions takes no
// index. On an error every writer of m gets it and commit returns nil.
func (r *Root) commit(m *merge) *group {
	defer m.w.Discard()
	if m.err != nil {
		r.fail(m.reqs, m.err)
		return nil
	}
	e, err := m.w.End()
	if err != nil {
		r.fail(m.reqs, fmt.Errorf("root: close merged batch: %w", err))
		return nil
	}
	for i := range m.results {
		if m.applied[i] {
			m.results[i].index = e.Index
		}
	}
	st, err := m.w.CommitNoSync()
	if err != nil {
		r.fail(m.reqs, fmt.Errorf("root: commit: %w", err))
		return nil
	}
	return &group{reqs: m.reqs, results: m.results, state: st, start: m.start}
}

// syncLoop makes committed groups durable, several per fsync, publishes the
// newest state and answers the writers. After each round it counts the
// groups done in synced and signals idle. It runs until toSync is closed.
func (r *Root) syncLoop(idle chan<- struct{}) {
	for g := range r.toSync {
		groups := []*group{g}
	more:
		for {
			select {
			case g2, ok := <-r.toSync:
				if !ok {
					break more
				}
				groups = append(groups, g2)
			default:
				break more
			}
		}
		var last argent.State
		for _, g := range groups {
			if g.state.Index > last.Index {
				last = g.state
			}
		}
		var err error
		if last.Index > 0 {
			err = r.store.SyncAndPublish(last)
		}
		for _, g := range groups {
			if err != nil {
				r.fail(g.reqs, fmt.Errorf("root: sync: %w", err))
				continue
			}
			if r.cfg.OnCommit != nil {
				r.cfg.OnCommit(len(g.reqs), time.Since(g.start))
			}
			for i, req := range g.reqs {
				req.answer(g.results[i])
			}
		}
		r.synced.Add(int64(len(groups)))
		select {
		case idle <- struct{}{}:
		default:
		}
	}
}

func (r *Root) fail(group []*request, err error) {
	for _, req := range group {
		req.answer(result{err: err})
	}
}

func checkConditions(w *kv.Writer, conds []argent.Condition) error {
	for _, c := range conds {
		got, err := w.ModIndex(c.Key)
		if err != nil {
			return fmt.Errorf("root: check condition on %q: %w", c.Key, err)
		}
		if got != c.ModIndex {
			return &argent.ConditionError{Key: c.Key, Want: c.ModIndex, Got: got}
		}
	}
	return nil
}
