package apiwire

import (
	"context"
	"errors"
	"net/http"

	"github.com/argent-kv/argent"
)

// The error codes of the HTTP API. Every non-2xx answer carries one in
// {"error":{"code":"...","message":"..."}}; see ErrorBody. A client maps
// each code to the argent sentinel error it stands for (see Sentinel and
// NewError), and a server picks the code of an error with CodeOf.
const (
	CodeNotFound        = "not_found"        // argent.ErrNotFound, 404
	CodeTimeout         = "timeout"          // argent.ErrTimeout, 504
	CodeInvalid         = "invalid"          // argent.ErrInvalid, 400
	CodeTooLarge        = "too_large"        // argent.ErrTooLarge, 413
	CodeConditionFailed = "condition_failed" // *argent.ConditionError, 409
	CodeCompacted       = "compacted"        // argent.ErrCompacted, 410
	CodeUnavailable     = "unavailable"      // argent.ErrUnavailable, 503
	CodeDatasetMismatch = "dataset_mismatch" // argent.ErrDatasetMismatch, 409
	CodeInternal        = "internal"         // no sentinel, 500
	CodeUnauthorized    = "unauthorized"     // argent.ErrUnauthorized, 401
	CodeForbidden       = "forbidden"        // argent.ErrForbidden, 403

	// CodeNotReady: the node has not reached its first state (a fresh
	// replica or proxy that never synced), so it cannot say a key is absent;
	// try again later or read another node. argent.ErrUnavailable, 503.
	CodeNotReady = "not_ready"
	// CodeRootUnreachable: a node forwarding a write got no answer from its
	// upstream on the way to the root (refused, cut, timed out); the message
	// names the address. argent.ErrUnavailable, 503.
	CodeRootUnreachable = "root_unreachable"
	// CodeRateLimited: the token sent more requests than its rate allows;
	// retry after the Retry-After header's seconds. argent.ErrUnavailable,
	// 429.
	CodeRateLimited = "rate_limited"
	// CodeOverloaded: the node serves as many requests (or watch streams,
	// or connections) as it takes at once; retry later or elsewhere.
	// argent.ErrUnavailable, 503.
	CodeOverloaded = "overloaded"
	// CodeInsufficientStorage: the root refused a write because its disk
	// has less free space than its floor (--min-free-disk), or, in a root
	// group, the disk of a member does (its disk alarm is raised); nothing
	// was written, and writes are taken again once space returns.
	// argent.ErrUnavailable, 507.
	CodeInsufficientStorage = "insufficient_storage"
)

// The headers of a read response.
const (
	// HeaderIndex is the index S of the state a read was served from. Every
	// read response carries it, a 404 included.
	HeaderIndex = "Argent-Index"
	// HeaderModIndex is the mod index of the key read; only when it exists.
	HeaderModIndex = "Argent-Mod-Index"
	// HeaderTier names the layer that answered a read (for example "replica"
	// or "proxy-l1"); the values are the server's to choose.
	HeaderTier = "Argent-Tier"
)

// codeInfo ties an error code to its sentinel and HTTP status.
type codeInfo struct {
	sentinel error
	status   int
}

var codes = map[string]codeInfo{
	CodeNotFound:            {argent.ErrNotFound, http.StatusNotFound},
	CodeTimeout:             {argent.ErrTimeout, http.StatusGatewayTimeout},
	CodeInvalid:             {argent.ErrInvalid, http.StatusBadRequest},
	CodeTooLarge:            {argent.ErrTooLarge, http.StatusRequestEntityTooLarge},
	CodeConditionFailed:     {argent.ErrConditionFailed, http.StatusConflict},
	CodeCompacted:           {argent.ErrCompacted, http.StatusGone},
	CodeUnavailable:         {argent.ErrUnavailable, http.StatusServiceUnavailable},
	CodeDatasetMismatch:     {argent.ErrDatasetMismatch, http.StatusConflict},
	CodeInternal:            {nil, http.StatusInternalServerError},
	CodeUnauthorized:        {argent.ErrUnauthorized, http.StatusUnauthorized},
	CodeForbidden:           {argent.ErrForbidden, http.StatusForbidden},
	CodeNotReady:            {argent.ErrUnavailable, http.StatusServiceUnavailable},
	CodeRootUnreachable:     {argent.ErrUnavailable, http.StatusServiceUnavailable},
	CodeRateLimited:         {argent.ErrUnavailable, http.StatusTooManyRequests},
	CodeOverloaded:          {argent.ErrUnavailable, http.StatusServiceUnavailable},
	CodeInsufficientStorage: {argent.ErrUnavailable, http.StatusInsufficientStorage},
}

// Sentinel returns the argent sentinel error that code stands for, or nil for
// CodeInternal and unknown codes. For CodeConditionFailed it returns
// argent.ErrConditionFailed; an *Error with that code unwraps to a
// *argent.ConditionError instead.
func Sentinel(code string) error { return codes[code].sentinel }

// HTTPStatus returns the HTTP status the server sends with code: 500 for
// CodeInternal and unknown codes.
func HTTPStatus(code string) int {
	if ci, ok := codes[code]; ok {
		return ci.status
	}
	return http.StatusInternalServerError
}

// codeForStatus guesses a code from a status, for answers without an error
// body (a load balancer's 503, a plain-text 404).
func codeForStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusConflict:
		return CodeConditionFailed
	case http.StatusGone:
		return CodeCompacted
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return CodeUnavailable
	case http.StatusGatewayTimeout:
		return CodeTimeout
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusInsufficientStorage:
		return CodeInsufficientStorage
	}
	return CodeInternal
}

// CodeOf returns the error code the server sends for err: the code of an
// *Error it wraps (so an error forwarded from another node keeps its code),
// else that of an error in its chain with an ErrorCode method (a server's
// error finer than its sentinel, such as CodeNotReady for
// argent.ErrUnavailable), else the code of the first argent sentinel it
// wraps, else CodeInternal. argent.ErrFuture and context.DeadlineExceeded map
// to CodeTimeout (the state did not reach the index asked for in time) and
// argent.ErrClosed to CodeUnavailable.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		if c := coded.ErrorCode(); c != "" {
			return c
		}
	}
	for _, c := range []struct {
		err  error
		code string
	}{
		{argent.ErrConditionFailed, CodeConditionFailed},
		{argent.ErrNotFound, CodeNotFound},
		{argent.ErrTimeout, CodeTimeout},
		{argent.ErrFuture, CodeTimeout},
		{context.DeadlineExceeded, CodeTimeout},
		{argent.ErrTooLarge, CodeTooLarge},
		{argent.ErrInvalid, CodeInvalid},
		{argent.ErrCompacted, CodeCompacted},
		{argent.ErrDatasetMismatch, CodeDatasetMismatch},
		{argent.ErrUnavailable, CodeUnavailable},
		{argent.ErrClosed, CodeUnavailable},
		{argent.ErrUnauthorized, CodeUnauthorized},
		{argent.ErrForbidden, CodeForbidden},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}
