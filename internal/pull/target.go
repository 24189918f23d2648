package pull

import (
	"context"

	"github.com/argent-kv/argent"
)

// Target is the state a Follower keeps up to date with its upstream's log:
// a replica's store (internal/replica), or a proxy's cache
// (internal/proxy). The Follower speaks the protocol; the Target says what
// applying an entry and bootstrapping mean for it.
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
	// upstream's log no longer holds Applied()+1 (a Target that loads a
	// snapshot gets it with Follower.FetchSnapshot). An error wrapping
	// ErrRefused moves the Follower to another upstream as a refusal.
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
