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
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/writeq"
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
	// MinFreeDisk is the floor of free bytes on the store's disk below which
	// the root refuses writes (ErrDiskFull) instead of committing them, so
	// that Pebble never meets a full disk, after which its state is unknown
	// and the node must stop. Writes are taken again once space returns.
	// Default 0: no floor.
	MinFreeDisk uint64
}

// Root is the write path over a store.
type Root struct {
	store *kv.Store
	cfg   Config
	*writeq.Queue
	// toSync carries committed, not yet durable groups from the committer
	// to the syncer, in index order; synced counts those it finished.
	toSync   chan *group
	synced   atomic.Int64
	diskFull atomic.Bool // the last commit was refused by checkDisk
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
	reqs    []*writeq.Request
	results []result
	state   argent.State
	start   time.Time
}

type result struct {
	index argent.Index
	err   error
}

// ErrStopped is returned by Write once Run has returned. It wraps
// argent.ErrUnavailable.
var ErrStopped = fmt.Errorf("root: write path stopped: %w", argent.ErrUnavailable)

// ErrDiskFull is returned (wrapped) by writes refused because the store's
// disk has less free space than Config.MinFreeDisk. The error also wraps
// argent.ErrUnavailable, and the API answers it with 507
// insufficient_storage.
var ErrDiskFull = errors.New("root: disk space below the floor")

// diskFullError is a write refused for want of disk space.
type diskFullError struct{ free, floor uint64 }

func (e *diskFullError) Error() string {
	return fmt.Sprintf("root: %d bytes free on the store's disk, below the floor of %d (--min-free-disk): write refused, nothing written", e.free, e.floor)
}

func (e *diskFullError) Unwrap() []error { return []error{ErrDiskFull, argent.ErrUnavailable} }

// ErrorCode gives the API's code for the refusal.
func (e *diskFullError) ErrorCode() string { return apiwire.CodeInsufficientStorage }

// checkDisk returns a *diskFullError when the store's disk has less free
// space than the floor. A file system that cannot tell its free space
// passes: the floor is a guard, a real full disk still stops the store.
func (r *Root) checkDisk() error {
	if r.cfg.MinFreeDisk == 0 {
		return nil
	}
	free, err := r.store.FreeDisk()
	if err != nil || free >= r.cfg.MinFreeDisk {
		r.diskFull.Store(false)
		return nil
	}
	r.diskFull.Store(true)
	return &diskFullError{free: free, floor: r.cfg.MinFreeDisk}
}

// DiskFull reports whether writes are refused for want of disk space (see
// Config.MinFreeDisk): the last commit was, and the disk is still below
// the floor, so that the answer clears once space returns even before the
// next write.
func (r *Root) DiskFull() bool { return r.diskFull.Load() && r.checkDisk() != nil }

// New returns a write path over store. Call Run to start committing; the
// Queue's Write, Submit and TrySubmit take batches, which must already have
// passed argent.Limits.CheckBatch. A failed condition is answered with a
// *argent.ConditionError and commits nothing. A batch whose writer stops
// waiting may still commit.
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
	return &Root{store: store, cfg: cfg, Queue: writeq.New(1024), toSync: make(chan *group, syncDepth)}
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
		next *writeq.Request // arrived while m was full: opens the next merge
		sent int64           // groups handed to the syncer
		hold *time.Timer
	)
	busy := func() bool { return sent > r.synced.Load() }
	for {
		if m == nil {
			req := next
			next = nil
			if req == nil {
				select {
				case req = <-r.C:
				case <-idle:
					continue
				case <-ctx.Done():
					r.Close(ErrStopped)
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
			case req := <-r.C:
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
		case req := <-r.C:
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
				next.Answer(0, ErrStopped)
			}
			r.Close(ErrStopped)
			return nil
		}
	}
}

// merge is the open merged batch: the client batches taken so far, applied
// to one open entry of a Writer.
type merge struct {
	w       *kv.Writer
	reqs    []*writeq.Request
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
func (r *Root) fits(m *merge, req *writeq.Request) bool {
	return len(m.reqs) < r.cfg.MaxGroupBatches && m.size+req.Size <= r.cfg.MaxGroupBytes
}

// add checks req's conditions against the state the batches before it
// left and, if they hold, applies its ops to the open entry; else req is
// left out alone. The first batch of a merge is always added, so a batch
// larger than the merge limits commits alone.
func (m *merge) add(req *writeq.Request) {
	m.reqs = append(m.reqs, req)
	m.size += req.Size
	var res result
	ok := false
	if m.err == nil {
		if err := m.w.Check(req.Batch.Conditions); err != nil {
			res.err = err
		} else if err := m.w.Apply(req.Batch.Ops); err != nil {
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
	if err := r.checkDisk(); err != nil {
		r.fail(m.reqs, err)
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
				req.Answer(g.results[i].index, g.results[i].err)
			}
		}
		r.synced.Add(int64(len(groups)))
		select {
		case idle <- struct{}{}:
		default:
		}
	}
}

func (r *Root) fail(group []*writeq.Request, err error) {
	for _, req := range group {
		req.Answer(0, err)
	}
}
