package replica

import (
	"context"
	"errors"
	"fmt"

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
func (t *storeTarget) Begin() pull.Group {
	if t.cfg.MinFreeDisk == 0 {
		return t.store.NewWriter()
	}
	return &floorGroup{Writer: t.store.NewWriter(), t: t}
}

// ErrDiskFull is returned (wrapped) by a group's Commit when the disk has
// less free space than Config.MinFreeDisk: the group is dropped, the
// stream ends, and the Follower asks for the entries again after its
// back-off.
var ErrDiskFull = errors.New("replica: disk space below the floor")

// floorGroup is a group that commits only while the disk has room.
type floorGroup struct {
	*kv.Writer
	t *storeTarget
}

func (g *floorGroup) Commit() error {
	floor := g.t.cfg.MinFreeDisk
	// A file system that cannot tell its free space passes: a real full
	// disk still stops the store.
	if free, err := g.t.store.FreeDisk(); err == nil && free < floor {
		if !g.t.diskFull.Swap(true) {
			g.t.cfg.Logger.Error("disk below the floor: applying no more entries until space returns; serving the state held", "free", free, "floor", floor)
		}
		g.Writer.Discard()
		return fmt.Errorf("%w: %d bytes free, the floor is %d", ErrDiskFull, free, floor)
	}
	if g.t.diskFull.Swap(false) {
		g.t.cfg.Logger.Info("disk above the floor again: applying entries")
	}
	return g.Writer.Commit()
}

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
