package group

import (
	"context"
	"encoding/binary"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/argent-kv/argent"
)

// ReadIndex returns an argent index S such that a read of the store at S,
// or later, sees every write acknowledged anywhere in the group before
// ReadIndex was called: Raft's read index, confirmed by a quorum's
// heartbeat answers, waited for here until applied. Reads that arrive
// together share one round of heartbeats.
func (g *Group) ReadIndex(ctx context.Context) (argent.Index, error) {
	if g.removed.Load() {
		return 0, ErrRemoved // no leader answers a removed member
	}
	rr := &readRequest{at: time.Now(), done: make(chan readResult, 1)}
	select {
	case g.reads <- rr:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var res readResult
	select {
	case res = <-rr.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if res.err != nil {
		return 0, res.err
	}
	if err := g.waitApplied(ctx, res.index); err != nil {
		return 0, err
	}
	return g.cfg.Store.Applied(), nil
}

// setApplied records that the store holds the effects of the Raft log up to
// i, and wakes the reads waiting for it.
func (g *Group) setApplied(i uint64) {
	g.appliedMu.Lock()
	if i > g.applied.Load() {
		g.applied.Store(i)
	}
	close(g.appliedCh)
	g.appliedCh = make(chan struct{})
	g.appliedMu.Unlock()
}

// waitApplied waits until the applier passed Raft index i.
func (g *Group) waitApplied(ctx context.Context, i uint64) error {
	for {
		g.appliedMu.Lock()
		ch := g.appliedCh
		g.appliedMu.Unlock()
		if g.applied.Load() >= i {
			return nil
		}
		if err := g.Failed(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type readRequest struct {
	at   time.Time
	done chan readResult
}

type readResult struct {
	index uint64 // a Raft index
	err   error
}

// readBatches are the linearizable reads of Run's loop: those queued for the
// next read index request, and those whose request is under way, by the
// request's context.
type readBatches struct {
	queued   []*readRequest
	inflight map[uint64][]*readRequest
	asked    map[uint64]time.Time // when each request under way was made
	next     uint64
}

func (b *readBatches) queue(rr *readRequest) { b.queued = append(b.queued, rr) }

// request asks Raft for a read index for the queued reads, as one batch.
// Raft answers it in a later Ready, or drops it (no leader yet; a lost
// message), in which case the reads fail at the write timeout.
func (b *readBatches) request(rn *raft.RawNode) {
	if len(b.queued) == 0 || rn.BasicStatus().Lead == raft.None {
		return
	}
	if b.inflight == nil {
		b.inflight, b.asked = make(map[uint64][]*readRequest), make(map[uint64]time.Time)
	}
	b.next++
	b.inflight[b.next], b.asked[b.next] = b.queued, time.Now()
	b.queued = nil
	rn.ReadIndex(binary.BigEndian.AppendUint64(nil, b.next))
}

// answer hands a read index to the batch that asked for it.
func (b *readBatches) answer(rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(rs.RequestCtx)
	for _, rr := range b.inflight[id] {
		rr.done <- readResult{index: rs.Index}
	}
	delete(b.inflight, id)
	delete(b.asked, id)
}

// sweep fails the reads that waited since before cutoff, and asks again
// for the batches whose request has been under way since before retry (a
// message lost on the way to the leader is never answered).
func (b *readBatches) sweep(cutoff, retry time.Time) {
	kept := b.queued[:0]
	for _, rr := range b.queued {
		if rr.at.Before(cutoff) {
			rr.done <- readResult{err: ErrNoLeader}
		} else {
			kept = append(kept, rr)
		}
	}
	b.queued = kept
	for id, batch := range b.inflight {
		switch {
		case batch[0].at.Before(cutoff):
			for _, rr := range batch {
				rr.done <- readResult{err: ErrNoLeader}
			}
		case b.asked[id].Before(retry):
			b.queued = append(b.queued, batch...)
		default:
			continue
		}
		delete(b.inflight, id)
		delete(b.asked, id)
	}
}

func (b *readBatches) failAll(err error) {
	for _, rr := range b.queued {
		rr.done <- readResult{err: err}
	}
	for _, batch := range b.inflight {
		for _, rr := range batch {
			rr.done <- readResult{err: err}
		}
	}
	b.queued, b.inflight, b.asked = nil, nil, nil
}
