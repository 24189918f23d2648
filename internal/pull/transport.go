package pull

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
)

// Transport is how a Follower reaches its upstreams: HTTPTransport between
// nodes, InmemTransport between a Follower and Servers in one process, so
// that the protocol can be tested in milliseconds without sockets.
//
// A transport only carries bytes and refusals; the framing, the checks and
// the stall watchdog are the Follower's and the Server's, shared by every
// transport. A stream a transport opens must fail its reads soon after ctx
// ends (the Follower's stall watchdog cancels ctx), and Close must release
// it at once.
type Transport interface {
	// OpenLog asks up for its log from index from on. The stream is the
	// parent's frames: Hello, then entries and heartbeats, or TooOld. A
	// parent's refusal is returned as the error that refusal makes of it,
	// the same over every transport: one that must not be followed
	// (another dataset, this node itself) wraps ErrRefused.
	OpenLog(ctx context.Context, up string, from argent.Index, c Child) (io.ReadCloser, error)
	// OpenSnapshot asks up for a snapshot of its live keys: all of them
	// when after is empty, else those after that key (a cut load
	// resuming). The stream is SnapBegin, chunks, SnapEnd.
	OpenSnapshot(ctx context.Context, up string, after []byte, c Child) (io.ReadCloser, error)
	// Probe asks up for its status, for the choice of an upstream.
	Probe(ctx context.Context, up string) (ParentStatus, error)
}

// Child is what a child says about itself when it opens a stream. Over
// HTTP it travels in the Argent-* headers.
type Child struct {
	NodeID string
	// Addr, Role and DC are the child's listen address, role and data
	// center, for the parent's status and for discovery.
	Addr, Role, DC string
	// Dataset is the child's dataset, zero before it has one.
	Dataset argent.DatasetID
}

// ParentStatus is what a probe learns of a parent.
type ParentStatus struct {
	NodeID string
	// Dataset is argent.DatasetID.String(), empty while the parent has no
	// data.
	Dataset string
	Applied argent.Index
}

// params is a child's request as a Server checks it: the HTTP request's
// headers and query, still unparsed, so that every transport goes through
// the same checks in the same order (serveLog, serveSnapshot).
type params struct {
	protocol string // HeaderProtocol
	node     string // HeaderNode
	addr     string // HeaderAddr
	role, dc string // HeaderRole, HeaderDC
	dataset  string // HeaderDataset, "" if the child has none
	from     string // the log's ?from=, decimal
	after    string // the snapshot's ?after=, hex
	remote   string // the connection's remote address, for status
}

// childParams encodes c as a request of this protocol version.
func childParams(c Child) params {
	p := params{protocol: ProtocolVersion, node: c.NodeID, addr: c.Addr, role: c.Role, dc: c.DC}
	if !c.Dataset.IsZero() {
		p.dataset = c.Dataset.String()
	}
	return p
}

// logParams is the request for the log from index from on.
func logParams(from argent.Index, c Child) params {
	p := childParams(c)
	p.from = strconv.FormatUint(uint64(from), 10)
	return p
}

// snapshotParams is the request for a snapshot, after a key if resuming.
func snapshotParams(after []byte, c Child) params {
	p := childParams(c)
	if len(after) > 0 {
		p.after = hex.EncodeToString(after)
	}
	return p
}

// refusal is the error a child sees when a parent answers status (not 200)
// with msg. A 409 (another dataset, the child itself) wraps ErrRefused: that
// parent must not be followed at all.
func refusal(status int, msg string) error {
	err := fmt.Errorf("pull: upstream answered %d: %s", status, strings.TrimSpace(msg))
	if status == http.StatusConflict {
		err = fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// responder is how a Server answers one request, whatever the transport:
// with a refusal before any frame, or with frames.
type responder interface {
	// refuse answers status (an HTTP status code) and a one-line message.
	refuse(status int, msg string)
	// frames answers OK and returns where the frames go.
	frames() frameSink
}

// frameSink carries a stream's frames to the child.
type frameSink interface {
	io.Writer
	// SetWriteDeadline bounds the writes until the next call, so that a
	// child that takes no bytes is dropped.
	SetWriteDeadline(t time.Time) error
	// Flush sends what the writes buffered.
	Flush() error
}
