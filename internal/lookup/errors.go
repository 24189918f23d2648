package lookup

import (
	"errors"
	"fmt"

	"github.com/argent-kv/argent"
)

// ErrProtocol is returned (inside an *Error, together with
// argent.ErrUnavailable) when a replica's answer breaks this protocol: a
// missing or impossible Argent-Index, a 404 that is not this API's
// not_found, a many-key answer whose items do not match the keys asked for,
// a filter that does not decode. Such an answer is never used; ask another
// replica.
var ErrProtocol = errors.New("lookup: malformed answer")

// ErrBehind is returned by Client.Scan (inside an *Error, together with
// argent.ErrUnavailable) when the replica had not reached the index asked
// for within its wait: it answers a scan only as of that index, never as
// of its own lower one. The Error's Index is the replica's applied index.
// Ask another replica, or this one again later.
var ErrBehind = errors.New("lookup: replica behind the index asked for")

// Error is a lookup that failed. It unwraps to what went wrong:
//
//   - an answer with an error body: a *apiwire.Error, which unwraps to the
//     argent sentinel of its code, so errors.Is(err, argent.ErrCompacted)
//     (410: the index asked for is older than the replica's history) or
//     argent.ErrUnavailable (503: the replica has no data yet) hold;
//   - no answer (connection refused, reset, timed out): argent.ErrUnavailable
//     and the transport's error, unless the caller's context ended, which
//     leaves only the context's error;
//   - an answer that breaks the protocol: argent.ErrUnavailable and
//     ErrProtocol;
//   - a scan that the replica, behind the index asked for, refused:
//     argent.ErrUnavailable and ErrBehind.
//
// So errors.Is(err, argent.ErrUnavailable) means "try another replica".
type Error struct {
	Op   string // "get", "get many", "scan" or "filter"
	Addr string // the replica's base URL
	// Index is the Argent-Index of the answer, 0 if it had none. For a 410
	// compacted answer, and a scan refused as behind, it is the replica's
	// applied index.
	Index argent.Index
	Err   error
}

func (e *Error) Error() string {
	if e.Index != 0 {
		return fmt.Sprintf("lookup: %s from %s (replica at %d): %v", e.Op, e.Addr, e.Index, e.Err)
	}
	return fmt.Sprintf("lookup: %s from %s: %v", e.Op, e.Addr, e.Err)
}

// Unwrap returns the cause; see Error.
func (e *Error) Unwrap() error { return e.Err }

// protocolErr returns an error wrapping argent.ErrUnavailable and
// ErrProtocol.
func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{argent.ErrUnavailable, ErrProtocol}, args...)...)
}
