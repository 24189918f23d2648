package client

import "github.com/argent-kv/argent/internal/apiwire"

// The error codes of the HTTP API. Every non-2xx answer carries one in
// {"error":{"code":"...","message":"..."}}; see ErrorBody. The client maps
// each code to the argent sentinel error it stands for (see Sentinel), and the
// server picks the code of an error with CodeOf.
const (
	CodeNotFound        = apiwire.CodeNotFound        // argent.ErrNotFound, 404
	CodeTimeout         = apiwire.CodeTimeout         // argent.ErrTimeout, 504
	CodeInvalid         = apiwire.CodeInvalid         // argent.ErrInvalid, 400
	CodeTooLarge        = apiwire.CodeTooLarge        // argent.ErrTooLarge, 413
	CodeConditionFailed = apiwire.CodeConditionFailed // *argent.ConditionError, 409
	CodeCompacted       = apiwire.CodeCompacted       // argent.ErrCompacted, 410
	CodeUnavailable     = apiwire.CodeUnavailable     // argent.ErrUnavailable, 503
	CodeDatasetMismatch = apiwire.CodeDatasetMismatch // argent.ErrDatasetMismatch, 409
	CodeInternal        = apiwire.CodeInternal        // no sentinel, 500
	CodeUnauthorized    = apiwire.CodeUnauthorized    // argent.ErrUnauthorized, 401
	CodeForbidden       = apiwire.CodeForbidden       // argent.ErrForbidden, 403

	// CodeNotReady: the node has not reached its first state (a fresh
	// replica or proxy that never synced), so it cannot say a key is absent;
	// try again later or read another node. argent.ErrUnavailable, 503.
	CodeNotReady = apiwire.CodeNotReady
	// CodeRootUnreachable: a node forwarding a write got no answer from its
	// upstream on the way to the root (refused, cut, timed out); the message
	// names the address. argent.ErrUnavailable, 503.
	CodeRootUnreachable = apiwire.CodeRootUnreachable
	// CodeRateLimited: the token sent more requests than its rate allows.
	CodeRateLimited = apiwire.CodeRateLimited
	// CodeOverloaded: the node serves as many requests as it takes at once.
	CodeOverloaded = apiwire.CodeOverloaded
	// CodeInsufficientStorage: a write was refused because the root's disk
	// (in a root group, a member's) has less free space than its floor;
	// nothing was written, and writes are taken again once space returns.
	// argent.ErrUnavailable, 507.
	CodeInsufficientStorage = apiwire.CodeInsufficientStorage
)

// The headers of a read response.
const (
	// HeaderIndex is the index S of the state a read was served from. Every
	// read response carries it, a 404 included.
	HeaderIndex = apiwire.HeaderIndex
	// HeaderModIndex is the mod index of the key read; only when it exists.
	HeaderModIndex = apiwire.HeaderModIndex
	// HeaderTier names the layer that answered a read (for example "replica"
	// or "proxy-l1"); the values are the server's to choose.
	HeaderTier = apiwire.HeaderTier
)

// Sentinel returns the argent sentinel error that code stands for, or nil for
// CodeInternal and unknown codes. For CodeConditionFailed it returns
// argent.ErrConditionFailed; an *Error with that code unwraps to a
// *argent.ConditionError instead.
func Sentinel(code string) error { return apiwire.Sentinel(code) }

// HTTPStatus returns the HTTP status the server sends with code: 500 for
// CodeInternal and unknown codes.
func HTTPStatus(code string) int { return apiwire.HTTPStatus(code) }

// CodeOf returns the error code the server sends for err: the code of an
// *Error it wraps (so an error forwarded from another node keeps its code),
// else that of an error in its chain with an ErrorCode method (a server's
// error finer than its sentinel, such as CodeNotReady for
// argent.ErrUnavailable), else the code of the first argent sentinel it
// wraps, else CodeInternal. argent.ErrFuture and context.DeadlineExceeded map
// to CodeTimeout (the state did not reach the index asked for in time) and
// argent.ErrClosed to CodeUnavailable.
func CodeOf(err error) string { return apiwire.CodeOf(err) }
