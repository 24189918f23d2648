package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/wire"
)

// loadSnapshot loads a snapshot from up into the store, replacing its
// contents.
//
// A load that was cut (lost link, crash) resumes after the last key it
// stored, possibly from a newer state of this or another upstream; the
// store then replays the log from the load's base before it serves (see
// kv.RestoreProgress). A load that cannot resume starts over.
func (r *Replica) loadSnapshot(ctx context.Context, up string) error {
	prog, resume := r.store.RestoreProgress()
	resume = resume && prog.Target == 0
	err := r.transfer(ctx, up, prog, resume)
	if errors.Is(err, errCannotResume) {
		r.cfg.Logger.Info("snapshot load cannot resume: starting over", "upstream", up, "err", err)
		err = r.transfer(ctx, up, prog, false)
	}
	return err
}

// LoadSnapshot replaces store's contents with a snapshot of up, as a root
// group member does when it fell behind its group's compacted log: a whole
// transfer, which also gives the store the sender's source position (the
// Raft index of the state). cfg is a Replica's, for the node ID, address,
// metrics and logger it reports with.
func LoadSnapshot(ctx context.Context, store *kv.Store, up string, cfg Config) (wire.SnapshotHeader, error) {
	r := New(store, cfg)
	l := &storeLoader{s: store, m: r.cfg.Metrics}
	defer l.abort()
	if err := r.follow.FetchSnapshot(ctx, up, nil, l); err != nil {
		return wire.SnapshotHeader{}, err
	}
	return l.h, nil
}

// errCannotResume: the upstream's snapshot is older than the cut load's
// base. Its text is the one nodes logged before the replica had its own
// package, kept so that log lines do not change.
var errCannotResume = errors.New("pull: snapshot cannot resume the cut load")

// transfer runs one snapshot transfer: from the start, or after
// prog.LastKey when resume is set.
func (r *Replica) transfer(ctx context.Context, up string, prog kv.RestoreProgress, resume bool) error {
	var after []byte
	if resume {
		after = prog.LastKey
	}
	r.cfg.Logger.Info("loading snapshot", "upstream", up, "applied", r.store.Applied(), "resume", resume, "after", len(prog.LastKey))
	l := &storeLoader{s: r.store, prog: prog, resume: resume, m: r.cfg.Metrics}
	defer l.abort()
	if err := r.follow.FetchSnapshot(ctx, up, after, l); err != nil {
		return err
	}
	r.cfg.Logger.Info("snapshot loaded", "upstream", up, "index", l.h.Index, "records", l.res.Records())
	return nil
}

// storeLoader is a pull.SnapshotLoader into a kv.Store: one kv.Restore
// per transfer.
type storeLoader struct {
	s      *kv.Store
	prog   kv.RestoreProgress
	resume bool
	m      *pull.Metrics
	h      wire.SnapshotHeader
	res    *kv.Restore // nil until Begin succeeds
}

var _ pull.SnapshotLoader = (*storeLoader)(nil)

// Begin starts the load, or resumes the cut one. A store that refuses the
// snapshot (another dataset, older than the applied index, no load to
// resume) refuses the upstream: the Follower moves on to another one.
func (l *storeLoader) Begin(h wire.SnapshotHeader) error {
	l.h = h
	st := argent.State{Index: h.Index, Time: h.Time, Chain: h.Chain}
	var (
		res *kv.Restore
		err error
	)
	if l.resume {
		if h.Index < l.prog.Base.Index {
			return fmt.Errorf("%w: upstream at %d, load based at %d", errCannotResume, h.Index, l.prog.Base.Index)
		}
		res, err = l.s.ResumeRestore(h.Dataset, st)
		l.m.SnapshotResumes.Inc()
	} else {
		res, err = l.s.BeginRestore(h.Dataset, st)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", pull.ErrRefused, err)
	}
	if !l.resume {
		res.SetSource(h.Source)
	}
	l.res = res
	return nil
}

// Add stores one record; kv.Restore copies it into its batch.
func (l *storeLoader) Add(rec argent.Item) error {
	return l.res.Add(rec.Key, rec.ModIndex, rec.Value.Value)
}

// End checks the trailer's count and finishes the load.
func (l *storeLoader) End(records uint64) error { return l.res.Finish(records) }

// abort keeps what a cut transfer loaded, for the next one to resume
// after (kv.Restore.Abort); after End it does nothing.
func (l *storeLoader) abort() {
	if l.res != nil {
		l.res.Abort()
	}
}
