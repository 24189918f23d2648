package api

import (
	"context"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/logstore"
)

// Reader is where a node's reads come from: a *kv.Store on roots and
// replicas, the cache, window and filter of a proxy. Reads take the index
// they are served at, at most Applied, and the context of the request they
// serve: a read that must wait (for an index, or for another node, as a
// proxy's miss does) stops when the client leaves or the server stops.
type Reader interface {
	// Applied is the published applied index: reads at it are served.
	Applied() argent.Index
	// WaitApplied waits until Applied reaches i, ctx ends or the timeout
	// passes, and returns Applied; an error wrapping argent.ErrTimeout
	// when i was not reached.
	WaitApplied(ctx context.Context, timeout time.Duration, i argent.Index) (argent.Index, error)
	// Changed returns a channel closed when Applied next moves.
	Changed() <-chan struct{}
	// Get reads key at index at: argent.ErrNotFound when absent, an error
	// wrapping argent.ErrCompacted when at is no longer readable, one
	// wrapping ctx's error when ctx ended first.
	Get(ctx context.Context, key []byte, at argent.Index) (argent.Value, error)
	// Scan reads up to limit keys with prefix after after, at index at.
	Scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error)
	// LogFirst and ReadLog serve watch streams from the node's log. ReadLog
	// takes no context: it never waits (it reads what the log holds, up to
	// maxBytes), and its caller stops it by returning false from fn.
	LogFirst() argent.Index
	ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error)
}

// TierReader is a Reader whose reads come from several layers (a proxy's
// window, cache, filter or a replica): Argent-Tier names the one that
// answered, instead of Backend.Tier.
type TierReader interface {
	Reader
	GetTier(ctx context.Context, key []byte, at argent.Index) (argent.Value, string, error)
}

// ManyReader is a Reader that reads the keys of an mget better together
// than one Get at a time: a proxy resolves their misses with one lookup
// per replica tried instead of one per key. Its answers are those Get would
// give.
type ManyReader interface {
	Reader
	// GetMany reads every key at index at: vals[i] is keys[i]'s value and
	// found[i] is false where keys[i] is absent. Any other failure fails the
	// whole read, with the error one Get would return.
	GetMany(ctx context.Context, keys [][]byte, at argent.Index) (vals []argent.Value, found []bool, err error)
}

// LocalReader is a Reader that can say, without waiting, whether it
// answers a read from the node's own state: a proxy answers a hit in its
// window, cache or filter at once, and asks a replica on a miss. The RESP
// port answers such reads on its event loop.
type LocalReader interface {
	Reader
	// GetLocal reads key at index at from the node's own state only. ok is
	// false when only another node can answer; otherwise the value and
	// error are those Get would give.
	GetLocal(ctx context.Context, key []byte, at argent.Index) (v argent.Value, ok bool, err error)
}

// Backend is what the HTTP API needs from a node.
type Backend interface {
	// Reader serves the node's reads at its published applied index (or a
	// newer one for min_index reads).
	Reader() Reader
	// Write commits a batch (root) or forwards it to the root (other roles)
	// and returns the index it was committed at. A failed condition gives a
	// *argent.ConditionError; bad input an error wrapping argent.ErrInvalid or
	// argent.ErrTooLarge.
	Write(ctx context.Context, b argent.Batch) (argent.Index, error)
	// Status describes the node for GET /v1/status.
	Status() apiwire.StatusResponse
	// Tier names the layer that answers reads on this node, for the
	// Argent-Tier header: "root", "replica", ...
	Tier() string
	// Limits are the size limits on keys, values and batches.
	Limits() argent.Limits
}

// Readiness is implemented by a Backend whose node can be without a first
// state: a fresh replica or proxy that has never synced with an upstream.
// Until Ready returns nil the Server answers every read (get, mget, scan)
// 503 not_ready instead of reading, since an empty store would answer 404
// for keys the dataset holds. A Backend without it is always ready.
type Readiness interface {
	// Ready returns nil once the node has reached its first state, else
	// ErrNotReady. It is called on every read, so it must be cheap.
	Ready() error
}

// Linearizer is implemented by a Backend that can serve linearizable reads
// (?linearizable=true): a root.
type Linearizer interface {
	// ReadBarrier returns an index S such that a read at S or later sees
	// every write acknowledged before the call, at any node of the root:
	// a single root's applied index, a root group's read index. A node
	// that cannot give one fails with argent.ErrInvalid.
	ReadBarrier(ctx context.Context) (argent.Index, error)
}

// AsyncWriter is implemented by a Backend that can take a write without
// waiting for its commit, so that one client can have many writes in flight
// and an event loop can take them without a goroutine each: the RESP port
// submits a pipeline's SETs together, and the root merges them into one
// batch.
type AsyncWriter interface {
	// SubmitWrite queues b, which must pass Limits().CheckBatch, and
	// returns at once: done is called once, from another goroutine, with
	// b's index or the error that failed it; it must not block. The writes
	// one caller submits commit in the order it submitted them. It reports
	// false, without calling done, when b cannot be queued now (the queue
	// is full; a node that forwards its writes): the caller then uses
	// Write.
	SubmitWrite(b argent.Batch, done func(argent.Index, error)) bool
}

// Tracer is implemented by a Reader whose reads go through several tiers
// (a proxy): GET /v1/trace/{key} shows the path of one read through them.
// Readers without it are traced as one step, their own store.
type Tracer interface {
	Trace(ctx context.Context, key []byte, at argent.Index) (apiwire.TraceResponse, error)
}
