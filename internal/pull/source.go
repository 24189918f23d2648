package pull

import (
	"errors"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
)

// Source is what a Server serves its children from: a root's or replica's
// *kv.Store, or a relay's in-memory log buffer, which keeps the recent log
// only and serves no snapshots.
type Source interface {
	// Dataset is the dataset served, zero while the node has none (its
	// children are then refused with 503).
	Dataset() argent.DatasetID
	// Restoring reports a state that must not be served yet (a snapshot
	// being loaded); children are refused with 503 meanwhile.
	Restoring() bool
	// Applied is the index of the last entry ReadLog can give.
	Applied() argent.Index
	// Changed returns a channel closed when Applied or LogFirst next moves.
	Changed() <-chan struct{}
	// LogFirst is the oldest index ReadLog can give; a child asking for an
	// older one is told TooOld.
	LogFirst() argent.Index
	// ReadLog calls fn with the entries from index from on, up to Applied
	// and about maxBytes, and returns the index after the last one given.
	// It fails with an error wrapping argent.ErrCompacted when from is
	// older than LogFirst.
	ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error)
	// NewSnapshot returns a view of the live keys at Applied, for a child
	// that bootstraps. A Source that keeps no data fails with an error
	// wrapping ErrNoSnapshots, and the child is refused with 409.
	NewSnapshot() (*kv.Snapshot, error)
}

var _ Source = (*kv.Store)(nil)

// ErrNoSnapshots is returned by a Source's NewSnapshot when the node keeps
// no data to snapshot (a relay): the child must bootstrap elsewhere.
var ErrNoSnapshots = errors.New("pull: this node serves no snapshots")
