package api

import (
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// ErrNotReady is returned by Readiness.Ready, and so by every read, on a node
// that has not reached its first state (docs/DECISIONS.md says when it has).
// The Server answers it 503 with code apiwire.CodeNotReady, never 404. It
// wraps argent.ErrUnavailable.
var ErrNotReady error = &codeError{
	code: apiwire.CodeNotReady,
	err:  fmt.Errorf("%w: node has not reached its first state (it has never synced with an upstream); retry later or read another node", argent.ErrUnavailable),
}

// codeError is an error with an API code finer than the sentinel it wraps;
// apiwire.CodeOf picks the code through ErrorCode.
type codeError struct {
	code string
	err  error
}

func (e *codeError) Error() string     { return e.err.Error() }
func (e *codeError) Unwrap() error     { return e.err }
func (e *codeError) ErrorCode() string { return e.code }

// UpstreamError is returned by a Backend's Write when the node it forwards
// the write to, on the way to the root, gave no answer: the connection was
// refused, cut or timed out, or the node has no upstream at all. The Server
// answers it 503 with code apiwire.CodeRootUnreachable. It wraps
// argent.ErrUnavailable and Err. An answer the upstream did give (a 409, or
// its own 503 root_unreachable from further up) is not an UpstreamError: it
// is passed on as it came.
type UpstreamError struct {
	// Addr is the upstream the write was sent to, such as
	// "http://10.0.0.1:7400" (or the list of upstreams when none is
	// followed).
	Addr string
	// Err is what went wrong on the way.
	Err error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("argent: root unreachable: cannot forward the write to upstream %s: %v", e.Addr, e.Err)
}

// Unwrap makes errors.Is(err, argent.ErrUnavailable) true, and reaches the
// transport error.
func (e *UpstreamError) Unwrap() []error { return []error{argent.ErrUnavailable, e.Err} }

// ErrorCode returns apiwire.CodeRootUnreachable, for apiwire.CodeOf.
func (e *UpstreamError) ErrorCode() string { return apiwire.CodeRootUnreachable }
