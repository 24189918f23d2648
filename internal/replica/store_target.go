package replica

import (
	"context"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
)

// storeTarget is the pull.Target of a Replica: its store.
type storeTarget Replica

var (
	_ pull.Target = (*storeTarget)(nil)
	// A group of entries is one kv.Writer: one Pebble batch, committed
	// with one fsync, after which the store publishes the new index. The
	// Follower decides where a group ends (what arrived together, at most
	// MaxGroup entries), so a restart never goes back and many entries
	// share an fsync.
	_ pull.Group = (*kv.Writer)(nil)
)

func (t *storeTarget) Applied() argent.Index     { return t.store.Applied() }
func (t *storeTarget) Dataset() argent.DatasetID { return t.store.Dataset() }
func (t *storeTarget) Begin() pull.Group         { return t.store.NewWriter() }

// AdoptDataset takes the first upstream's dataset and refuses any other
// (kv.Store.AdoptDataset wraps argent.ErrDatasetMismatch).
func (t *storeTarget) AdoptDataset(id argent.DatasetID) error {
	_, err := t.store.AdoptDataset(id)
	return err
}

// BootstrapPending reports a snapshot load that was cut and must go on
// before the log can be followed. A load that only has to replay the log
// to its target (kv.RestoreProgress.Target) follows the log: the store's
// Writers do the replay.
func (t *storeTarget) BootstrapPending() bool {
	if !t.store.Restoring() {
		return false
	}
	p, ok := t.store.RestoreProgress()
	return !ok || p.Target == 0
}

// Bootstrap loads a snapshot from up into the store.
func (t *storeTarget) Bootstrap(ctx context.Context, up string) error {
	return (*Replica)(t).loadSnapshot(ctx, up)
}
