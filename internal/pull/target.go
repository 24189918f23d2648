package pull

import (
	"context"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
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
