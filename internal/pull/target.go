package pull

import (
	"context"
	"errors"
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/wire"
)

// Target is the state a Follower keeps up to date with its upstream's log:
// a replica's kv.Store (see FollowerConfig.Store), or a proxy's cache.
type Target interface {
	// Applied is the index of the last entry applied and durable.
	Applied() argent.Index
	// Dataset is the target's dataset, zero before it has one.
	Dataset() argent.DatasetID
	// AdoptDataset takes id as the dataset if there is none yet, and fails
	// with an error wrapping argent.ErrDatasetMismatch if there is another.
	AdoptDataset(id argent.DatasetID) error
	// Begin starts a group of entries that become durable and visible
	// together.
	Begin() Group
	// BootstrapPending reports whether a cut bootstrap must go on before
	// the log can be followed.
	BootstrapPending() bool
	// Bootstrap replaces the target's state with the upstream's, when the
	// upstream's log no longer holds Applied()+1.
	Bootstrap(ctx context.Context, upstream string) error
}

// Group is a run of consecutive entries applied together.
type Group interface {
	// AppendEntry applies the next entry. It must follow the last one by
	// index and chain hash; otherwise nothing of it is applied and the
	// error wraps argent.ErrCorruption or argent.ErrChainMismatch.
	AppendEntry(e *argent.Entry) error
	// Len is the number of entries appended.
	Len() int
	// Commit makes the entries durable, then visible.
	Commit() error
	// Discard drops the entries appended. It is safe after Commit.
	Discard()
}

// storeTarget follows the log into a replica's store and bootstraps it
// from snapshots.
type storeTarget struct {
	s *kv.Store
	f *Follower
}

func (t storeTarget) Applied() argent.Index     { return t.s.Applied() }
func (t storeTarget) Dataset() argent.DatasetID { return t.s.Dataset() }
func (t storeTarget) Begin() Group              { return t.s.NewWriter() }

func (t storeTarget) AdoptDataset(id argent.DatasetID) error {
	_, err := t.s.AdoptDataset(id)
	return err
}

// BootstrapPending: a snapshot load was cut and must go on (a load that
// only replays the log to its target follows the log).
func (t storeTarget) BootstrapPending() bool {
	if !t.s.Restoring() {
		return false
	}
	p, ok := t.s.RestoreProgress()
	return !ok || p.Target == 0
}

func (t storeTarget) Bootstrap(ctx context.Context, up string) error {
	return t.f.loadSnapshot(ctx, t.s, up)
}

// loadSnapshot loads a snapshot from up into s, replacing its contents.
//
// A load that was cut (lost link, crash) resumes after the last key it
// stored, possibly from a newer state of this or another upstream; the
// store then replays the log from the load's base before it serves (see
// kv.RestoreProgress). A load that cannot resume starts over.
func (f *Follower) loadSnapshot(ctx context.Context, s *kv.Store, up string) error {
	prog, resume := s.RestoreProgress()
	resume = resume && prog.Target == 0
	err := f.transfer(ctx, s, up, prog, resume)
	if errors.Is(err, errCannotResume) {
		f.cfg.Logger.Info("snapshot load cannot resume: starting over", "upstream", up, "err", err)
		err = f.transfer(ctx, s, up, prog, false)
	}
	return err
}

// errCannotResume: the upstream's snapshot is older than the cut load's base.
var errCannotResume = errors.New("pull: snapshot cannot resume the cut load")

// transfer runs one snapshot transfer: from the start, or after
// prog.LastKey when resume is set.
func (f *Follower) transfer(ctx context.Context, s *kv.Store, up string, prog kv.RestoreProgress, resume bool) error {
	var after []byte
	if resume {
		after = prog.LastKey
	}
	f.cfg.Logger.Info("loading snapshot", "upstream", up, "applied", s.Applied(), "resume", resume, "after", len(prog.LastKey))
	l := &storeLoader{s: s, prog: prog, resume: resume, m: f.cfg.Metrics}
	defer l.abort()
	if err := f.FetchSnapshot(ctx, up, after, l); err != nil {
		return err
	}
	f.cfg.Logger.Info("snapshot loaded", "upstream", up, "index", l.h.Index, "records", l.res.Records())
	return nil
}

// storeLoader is a SnapshotLoader into a kv.Store.
type storeLoader struct {
	s      *kv.Store
	prog   kv.RestoreProgress
	resume bool
	m      *Metrics
	h      wire.SnapshotHeader
	res    *kv.Restore // nil until Begin succeeds
}

func (l *storeLoader) Begin(h wire.SnapshotHeader) error {
	l.h = h
	st := kv.State{Index: h.Index, Time: h.Time, Chain: h.Chain}
	var res *kv.Restore
	var err error
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
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	l.res = res
	return nil
}

func (l *storeLoader) Add(rec wire.SnapshotRecord) error {
	return l.res.Add(rec.Key, rec.ModIndex, rec.Value)
}

func (l *storeLoader) End(records uint64) error { return l.res.Finish(records) }

func (l *storeLoader) abort() {
	if l.res != nil {
		l.res.Abort()
	}
}
