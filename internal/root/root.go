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
	"fmt"
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
	// to the syncer, in index order.
	toSync chan *group
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
	state   kv.State
	start   time.Time
}

type request struct {
	batch argent.Batch
	size  int
	resp  chan result
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
		toSync: make(chan *group, syncDepth)}
}

// Write commits b and returns its index once it is durable. The batch must
// already have passed argent.Limits.CheckBatch. A failed condition returns a
// *argent.ConditionError and commits nothing. If ctx ends before the batch
// is committed, Write returns ctx's error; the batch may still commit.
func (r *Root) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	req := &request{batch: b, size: batchSize(&b), resp: make(chan result, 1)}
	select {
	case <-r.done:
		return 0, ErrStopped
	default:
	}
	select {
	case r.reqs <- req:
	case <-r.done:
		return 0, ErrStopped
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case res := <-req.resp:
		return res.index, res.err
	case <-r.done:
		// Run stopped; it answers every request it took before stopping.
		select {
		case res := <-req.resp:
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

// Run commits groups of batches until ctx ends. Batches still queued then
// get ErrStopped.
func (r *Root) Run(ctx context.Context) error {
	defer close(r.done)
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		r.syncLoop()
	}()
	defer func() {
		close(r.toSync)
		<-synced
	}()
	var pending *request
	for {
		group := make([]*request, 0, 64)
		if pending != nil {
			group = append(group, pending)
			pending = nil
		} else {
			select {
			case req := <-r.reqs:
				group = append(group, req)
			case <-ctx.Done():
				r.drain()
				return nil
			}
		}
		size := group[0].size
		var (
			deadline <-chan time.Time
			timer    *time.Timer
		)
		if r.cfg.MaxDelay > 0 {
			timer = time.NewTimer(r.cfg.MaxDelay)
			deadline = timer.C
		}
	collect:
		for len(group) < r.cfg.MaxGroupBatches {
			var req *request
			if deadline == nil {
				select {
				case req = <-r.reqs:
				default:
					break collect
				}
			} else {
				select {
				case req = <-r.reqs:
				case <-deadline:
					break collect
				}
			}
			if size+req.size > r.cfg.MaxGroupBytes {
				pending = req
				break
			}
			size += req.size
			group = append(group, req)
		}
		if timer != nil {
			timer.Stop()
		}
		r.commit(group)
	}
}

// drain fails every queued request after Run stops.
func (r *Root) drain() {
	for {
		select {
		case req := <-r.reqs:
			req.resp <- result{err: ErrStopped}
		default:
			return
		}
	}
}

// commit merges a group of client batches into one entry and commits it
// without waiting for fsync: each batch's conditions are checked against
// the state including the batches before it in the group and in earlier
// groups, and a batch whose conditions fail is left out. The syncer makes
// the entry durable and answers the writers, the refused ones too: their
// answer rests on state that must be durable first.
func (r *Root) commit(reqs []*request) {
	start := time.Now()
	w := r.store.NewWriter()
	defer w.Discard()
	results := make([]result, len(reqs))
	applied := make([]bool, len(reqs))
	w.Begin(r.cfg.Now())
	for i, req := range reqs {
		if err := checkConditions(w, req.batch.Conditions); err != nil {
			results[i].err = err
			continue
		}
		if err := w.Apply(req.batch.Ops); err != nil {
			// The Writer may hold part of this batch: fail the whole group.
			r.fail(reqs, fmt.Errorf("root: apply batch: %w", err))
			return
		}
		applied[i] = true
	}
	e, err := w.End()
	if err != nil {
		r.fail(reqs, fmt.Errorf("root: apply merged batch: %w", err))
		return
	}
	for i := range results {
		if applied[i] {
			results[i].index = e.Index
		}
	}
	st, err := w.CommitNoSync()
	if err != nil {
		r.fail(reqs, fmt.Errorf("root: commit: %w", err))
		return
	}
	r.toSync <- &group{reqs: reqs, results: results, state: st, start: start}
}

// syncLoop makes committed groups durable, several per fsync, publishes the
// newest state and answers the writers. It runs until toSync is closed.
func (r *Root) syncLoop() {
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
		var last kv.State
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
				req.resp <- g.results[i]
			}
		}
	}
}

func (r *Root) fail(group []*request, err error) {
	for _, req := range group {
		req.resp <- result{err: err}
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
