package group

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/writeq"
)

// applyWork is what Run hands the applier: committed entries, or a
// barrier, closed once everything handed over before it is applied.
type applyWork struct {
	ents    []*raftpb.Entry
	barrier chan struct{}
}

// applyLoop applies the committed entries Run hands over, several rounds at
// once when they queue, until applyc is closed. A failure stops the member.
func (g *Group) applyLoop() {
	var barrier chan struct{}
	for w := range g.applyc {
		ents := w.ents
		barrier = w.barrier
	more:
		for barrier == nil && len(ents) < 4096 {
			select {
			case next, ok := <-g.applyc:
				if !ok {
					break more
				}
				ents = append(ents, next.ents...)
				barrier = next.barrier
			default:
				break more
			}
		}
		if len(ents) > 0 && g.Failed() == nil {
			if err := g.apply(ents); errors.Is(err, ErrStopped) {
				// Run is stopping: the round stays unpublished, and a
				// restart replays it.
			} else if err != nil {
				g.fail(err)
			} else {
				g.setApplied(ents[len(ents)-1].GetIndex())
			}
		}
		if barrier != nil {
			close(barrier)
		}
	}
}

// awaitPublished has Run record raft index i as published, durably, and
// waits until it did.
func (g *Group) awaitPublished(i uint64) error {
	done := make(chan error, 1)
	select {
	case g.publishc <- publishReq{raft: i, done: done}:
	case <-g.stopping:
		return ErrStopped
	}
	select {
	case err := <-done:
		return err
	case <-g.stopping:
		return ErrStopped
	}
}

// outcome is the answer for one client batch of a proposal.
type outcome struct {
	index argent.Index
	err   error
}

type answer struct {
	w        *waiter
	outcomes []outcome
}

// apply applies committed Raft entries to the store in one Pebble batch,
// publishes the new state once its Raft index is recorded as published
// (awaitPublished), and then answers the writers of this member's proposals
// among them. Entries the store already holds (a restart
// replays the Raft log from the last entry it knows was applied) are
// skipped.
func (g *Group) apply(ents []*raftpb.Entry) error {
	store := g.cfg.Store
	done := store.Source()
	w := store.NewWriter()
	defer w.Discard()
	var answers []answer
	for _, e := range ents {
		if e.GetIndex() <= done || e.GetType() != raftpb.EntryNormal {
			continue
		}
		if len(e.GetData()) == 0 {
			// A new leader's first entry: proposals of earlier terms that
			// did not apply before it may never apply.
			for _, wt := range g.waits.olderTerm(e.GetTerm()) {
				answers = append(answers, answer{w: wt})
			}
			continue
		}
		p, err := decodeProposal(e.GetData())
		if err != nil {
			return fmt.Errorf("group: raft entry %d: %w", e.GetIndex(), err)
		}
		switch p.kind {
		case kindInit:
			if store.Dataset().IsZero() {
				if _, err := store.AdoptDataset(p.dataset); err != nil {
					return fmt.Errorf("group: raft entry %d: set dataset ID: %w", e.GetIndex(), err)
				}
				g.cfg.Logger.Info("root group dataset set", "dataset", p.dataset.String())
				if g.cfg.OnDataset != nil {
					g.cfg.OnDataset(p.dataset)
				}
			}
			continue
		case kindAlarm:
			continue // applied by Run (applyAlarm): nothing for the store
		case kindWrite:
		}
		outcomes := make([]outcome, len(p.batches))
		applied := make([]bool, len(p.batches))
		w.Begin(time.Unix(0, p.time))
		for i := range p.batches {
			if err := w.Check(p.batches[i].Conditions); err != nil {
				var ce *argent.ConditionError
				if !errors.As(err, &ce) {
					return fmt.Errorf("group: raft entry %d: %w", e.GetIndex(), err)
				}
				outcomes[i].err = err
				continue
			}
			if err := w.Apply(p.batches[i].Ops); err != nil {
				return fmt.Errorf("group: raft entry %d: apply batch: %w", e.GetIndex(), err)
			}
			applied[i] = true
		}
		entry, err := w.End()
		if err != nil {
			return fmt.Errorf("group: raft entry %d: close entry: %w", e.GetIndex(), err)
		}
		if entry.Index != 0 {
			w.SetSource(e.GetIndex())
			for i := range outcomes {
				if applied[i] {
					outcomes[i].index = entry.Index
				}
			}
		}
		if p.proposer == g.cfg.ID {
			if wt := g.waits.take(p.seq); wt != nil {
				answers = append(answers, answer{w: wt, outcomes: outcomes})
			}
		}
	}
	if w.Len() > 0 {
		st, err := w.CommitNoSync()
		if err != nil {
			return fmt.Errorf("group: commit applied entries: %w", err)
		}
		// The store is not synced: the Raft log holds these entries, and
		// after a crash the member replays them before it serves again,
		// as far as the published index recorded here (Replayed).
		if err := g.awaitPublished(ents[len(ents)-1].GetIndex()); err != nil {
			return err
		}
		if err := store.Publish(st); err != nil {
			return fmt.Errorf("group: publish applied entries: %w", err)
		}
	}
	for _, a := range answers {
		if a.outcomes == nil {
			a.w.answer(nil, ErrOutcomeUnknown)
			continue
		}
		a.w.answer(a.outcomes, nil)
		if g.cfg.OnCommit != nil {
			g.cfg.OnCommit(len(a.w.reqs), time.Since(a.w.at))
		}
	}
	return nil
}

// waiter holds the writers of one proposal of this member until it applies.
type waiter struct {
	reqs []*writeq.Request
	term uint64    // the term the member knew when it proposed
	at   time.Time // when the first writer queued
}

// answer answers every writer: with its outcome, or with err for all.
func (w *waiter) answer(outcomes []outcome, err error) {
	for i, req := range w.reqs {
		if err != nil {
			req.Answer(0, err)
			continue
		}
		req.Answer(outcomes[i].index, outcomes[i].err)
	}
}

// waiters are this member's proposals not yet applied, by sequence number.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]*waiter
}

func (ws *waiters) add(seq uint64, w *waiter) {
	ws.mu.Lock()
	ws.m[seq] = w
	ws.mu.Unlock()
}

func (ws *waiters) take(seq uint64) *waiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[seq]
	delete(ws.m, seq)
	return w
}

// olderTerm takes the waiters proposed in a term before term.
func (ws *waiters) olderTerm(term uint64) []*waiter {
	return ws.takeIf(func(w *waiter) bool { return w.term < term })
}

// olderThan takes the waiters whose first writer queued before t.
func (ws *waiters) olderThan(t time.Time) []*waiter {
	return ws.takeIf(func(w *waiter) bool { return w.at.Before(t) })
}

func (ws *waiters) takeIf(pred func(*waiter) bool) []*waiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []*waiter
	for seq, w := range ws.m {
		if pred(w) {
			out = append(out, w)
			delete(ws.m, seq)
		}
	}
	return out
}

// failAll answers every waiter with err.
func (ws *waiters) failAll(err error) {
	for _, w := range ws.takeIf(func(*waiter) bool { return true }) {
		w.answer(nil, err)
	}
}

// raftLogger sends Raft's log lines to the member's logger.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Info(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Error(msg)
	panic(msg)
}
func (r raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	r.l.Error(msg)
	panic(msg)
}
