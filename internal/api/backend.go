package api

import (
	"context"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/kv"
)

// Backend is what the HTTP API needs from a node.
type Backend interface {
	// Store is the node's local versioned store: every read is served from it
	// at its published applied index (or a newer one for min_index reads).
	Store() *kv.Store
	// Write commits a batch (root) or forwards it to the root (other roles)
	// and returns the index it was committed at. A failed condition gives a
	// *argent.ConditionError; bad input an error wrapping argent.ErrInvalid or
	// argent.ErrTooLarge.
	Write(ctx context.Context, b argent.Batch) (argent.Index, error)
	// Status describes the node for GET /v1/status.
	Status() client.StatusResponse
	// Tier names the layer that answers reads on this node, for the
	// Argent-Tier header: "root", "replica", ...
	Tier() string
	// Limits are the size limits on keys, values and batches.
	Limits() argent.Limits
}
