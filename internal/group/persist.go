package group

import (
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Raft runs with AsyncStorageWrites: its log writes come to the persister
// as MsgStorageAppend messages, its committed entries to the applier as
// MsgStorageApply, each carrying the responses to deliver once the write or
// the apply is done. So the loop goes on stepping acknowledgements,
// proposing and sending while the Raft log fsyncs, and the fsyncs of the
// leader, of the followers and the applier's work overlap.

// appendWork is one MsgStorageAppend; snapFrom, for one that carries a
// snapshot, is the member to copy the dataset from.
type appendWork struct {
	m        *raftpb.Message
	snapFrom string
}

// persistLoop writes Raft's log appends in order, several per fsync when
// they queue, and records the applier's published indexes with them, until
// appendc is closed. A failure stops the member.
func (g *Group) persistLoop() {
	defer g.ackPublishes(ErrStopped)
	for {
		select {
		case w, ok := <-g.appendc:
			if !ok {
				return
			}
			batch := []appendWork{w}
		more:
			for len(batch) < 256 && w.snapFrom == "" {
				select {
				case w, ok = <-g.appendc:
					if !ok {
						break more
					}
					batch = append(batch, w)
				default:
					break more
				}
			}
			if g.Failed() != nil {
				continue // drain until Run stops
			}
			if err := g.persist(batch); err != nil {
				g.fail(err)
				g.ackPublishes(err)
			}
		case pr := <-g.publishc:
			g.publishing = append(g.publishing, pr)
			if err := g.publish(true); err != nil {
				g.fail(err)
			}
		}
	}
}

// persist writes a batch of appends (a snapshot, if one carries it, first
// loads the store), with one fsync for them all and the publishes held, and
// then delivers their responses.
func (g *Group) persist(batch []appendWork) error {
	sync := len(g.publishing) > 0
	for _, w := range batch {
		m := w.m
		sync = sync || len(m.GetEntries()) > 0 || m.GetSnapshot() != nil ||
			m.Term != nil && (m.GetTerm() != g.savedHS.GetTerm() || m.GetVote() != g.savedHS.GetVote())
	}
	if err := g.publish(false); err != nil {
		return err
	}
	for i, w := range batch {
		m := w.m
		var hs *raftpb.HardState
		if m.Term != nil {
			hs = &raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		}
		snap := m.GetSnapshot()
		if !raft.IsEmptySnap(snap) {
			// The store must hold the snapshot's state before the log says
			// it does: a crash in between then finds the old log and a
			// newer store, whose replay skips what the store has.
			if err := g.loadSnapshot(snap, w.snapFrom); err != nil {
				return err
			}
		}
		if err := g.cfg.Log.Save(hs, m.GetEntries(), snap, sync && i == len(batch)-1); err != nil {
			return fmt.Errorf("group: persist raft log: %w", err)
		}
		if hs != nil {
			g.savedHS = hs
		}
	}
	g.ackPublishes(nil)
	var out []*raftpb.Message
	for _, w := range batch {
		for _, r := range w.m.GetResponses() {
			if r.GetTo() == g.cfg.ID {
				g.local.put(r)
			} else {
				out = append(out, r)
			}
		}
	}
	if len(out) > 0 {
		g.cfg.Transport.Send(out)
	}
	return nil
}

// loadSnapshot copies the dataset from the member at addr into the store,
// for a member behind the group's compacted log, once the applier applied
// everything handed to it before.
func (g *Group) loadSnapshot(snap *raftpb.Snapshot, addr string) error {
	done := make(chan struct{})
	select {
	case g.applyc <- applyWork{barrier: done}:
	case <-g.stopping:
		return ErrStopped
	}
	// The applier may wait for a publish on the way.
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case pr := <-g.publishc:
			g.publishing = append(g.publishing, pr)
			if err := g.publish(true); err != nil {
				return err
			}
		case <-g.stopping:
			return ErrStopped
		}
	}
	if err := g.Failed(); err != nil {
		return err
	}
	meta := snap.GetMetadata()
	g.cfg.Logger.Info("loading a snapshot from the group", "raft_index", meta.GetIndex(), "from", addr)
	if err := g.cfg.LoadSnapshot(g.runCtx, addr); err != nil {
		return fmt.Errorf("group: load snapshot of raft index %d from %s: %w", meta.GetIndex(), addr, err)
	}
	if ds := g.cfg.Store.Dataset(); !ds.IsZero() && g.cfg.OnDataset != nil {
		g.cfg.OnDataset(ds)
	}
	g.setApplied(max(meta.GetIndex(), g.cfg.Store.Source()))
	return nil
}

// publish records the highest Raft index the applier asks to serve. With
// sync it also makes it durable and answers the requests; without, the
// persister's next synced write does, and it answers them (ackPublishes).
func (g *Group) publish(sync bool) error {
	if len(g.publishing) == 0 {
		return nil
	}
	var top uint64
	for _, pr := range g.publishing {
		top = max(top, pr.raft)
	}
	if err := g.cfg.Log.SetPublished(top, sync); err != nil {
		err = fmt.Errorf("group: record published index %d: %w", top, err)
		g.ackPublishes(err)
		return err
	}
	if sync {
		g.ackPublishes(nil)
	}
	return nil
}

// ackPublishes answers the publish requests held.
func (g *Group) ackPublishes(err error) {
	for _, pr := range g.publishing {
		pr.done <- err
	}
	g.publishing = g.publishing[:0]
}

// localQueue carries the responses of the persister and the applier to
// Run's loop: they must reach Raft, in order, and their senders must not
// wait for the loop (which may be waiting to hand them work).
type localQueue struct {
	mu   sync.Mutex
	msgs []*raftpb.Message
	wake chan struct{} // capacity 1: something was put since the last take
}

func (q *localQueue) put(m ...*raftpb.Message) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *localQueue) take() []*raftpb.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}
