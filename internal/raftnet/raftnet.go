// Package raftnet carries Raft messages between the members of argent's root
// group, over the HTTP listener each member already has for the client API,
// the node-to-node streams and /metrics.
//
// Each member keeps one long-lived stream to each peer: a POST to Path whose
// chunked body it keeps writing, so a message costs a frame, not a request.
// The stream's headers name the protocol version, the sender, the receiver
// it expects and the group; the receiver refuses a stream that does not
// match (a 4xx with the API's JSON error). Frames are internal/wire frames
// (length and CRC32C, with a checksummed header) of type
// wire.FrameRaftMessage whose payload is the protobuf encoding of one
// raftpb.Message. A frame that fails its checksum closes the stream; the
// sender reconnects.
//
// Send never blocks: it puts each message on its peer's bounded queue. One
// goroutine per peer drains the queue, writes all it found and flushes once,
// so an idle stream sends a message at once and a busy one batches. While a
// peer cannot be reached its messages are dropped and reported through
// Unreachable; Raft retransmits what it needs, and memory stays bounded.
//
//	tr := raftnet.New(raftnet.Config{
//		ID:    1,
//		Group: datasetID,
//		// The Ready loop steps what it receives; the callbacks must not block.
//		Deliver:      func(m *raftpb.Message) { select { case recvc <- m: default: } },
//		Unreachable:  func(id uint64) { reports.unreachable(id) },
//		SnapshotDone: func(id uint64, ok bool) { reports.snapshot(id, ok) },
//	})
//	defer tr.Close()
//	mux.Handle(raftnet.Path, tr.Handler())
//	tr.SetPeer(2, "10.0.0.2:7700")
//	tr.SetPeer(3, "10.0.0.3:7700")
//	...
//	tr.Send(rd.Messages) // in the Ready loop
package raftnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// Path is where a member serves its Raft streams; the node mounts Handler
// there on its listen address.
const Path = "/internal/raft/stream"

// ProtocolVersion is the version of the stream protocol, sent in
// HeaderProtocol. A member refuses a stream of another version.
const ProtocolVersion = "1"

// The headers that open a stream.
const (
	HeaderProtocol = "Argent-Raft-Protocol" // ProtocolVersion
	HeaderFrom     = "Argent-Raft-From"     // the sender's Raft ID, decimal
	HeaderTo       = "Argent-Raft-To"       // the Raft ID the sender expects at this address, decimal
	HeaderGroup    = "Argent-Raft-Group"    // the group (dataset ID) in hex; absent while the sender does not know it
	ContentType    = "application/x-argent-frames"
)

// MaxMessageSize bounds the encoding of one message: the largest root batch
// with room for its encoding. The sender drops a larger message (and reports
// its peer unreachable) rather than send what the receiver would refuse, so
// Raft's MaxSizePerMsg must stay well below it.
const MaxMessageSize = wire.DefaultMaxFrame

// Config configures a Transport. Zero fields take the defaults their
// comments state.
type Config struct {
	// ID is this member's Raft ID. Required: not zero.
	ID uint64
	// Group is the group's identity, the dataset ID. A stream whose sender
	// names another group is refused, so a member whose address book points
	// at another group's members neither feeds nor follows them.
	//
	// Zero means "not known yet", and matches any group on either side: a
	// member that has not learned its group accepts every stream, and its
	// own streams are accepted by members of any group. That is what lets a
	// new member (empty Raft state, not a voter in its own eyes) join before
	// it has the dataset, and the harm is bounded by Raft itself: a member
	// ignores votes and append answers from IDs outside its configuration.
	// It is not safe for a member with Raft state: a member that has ever
	// joined must pass its group here, and one that learns it later must call
	// SetGroup before it votes or applies.
	Group argent.DatasetID
	// Deliver hands a received message to the local Raft node (the Ready
	// loop steps it). Required. It is called from the goroutine that reads
	// the sender's stream: in the order the sender sent, never concurrently
	// for one sender, concurrently for different senders. The message is the
	// callee's. It must not block long: while it blocks, that stream is not
	// read, and the sender's queue fills and drops.
	Deliver func(m *raftpb.Message)
	// Unreachable is called when messages to a peer were dropped: its queue
	// was full, it could not be reached, or its stream broke with messages
	// in flight (Raft's ReportUnreachable). Default: nothing.
	Unreachable func(id uint64)
	// SnapshotDone is called when a MsgSnap to id was written to its stream
	// and flushed (ok), or was dropped (not ok) (Raft's ReportSnapshot).
	// Default: nothing.
	SnapshotDone func(id uint64, ok bool)
	// Client makes the streams. It must have no overall timeout, since a
	// stream lasts as long as the peer is reachable, and its transport
	// should have an ExpectContinueTimeout (http.DefaultTransport has one):
	// without it a peer that closes the connection before it answers is
	// noticed only after DialTimeout. Default: a client of its own with
	// DialTimeout and TCP keepalives, no proxy, no compression.
	Client *http.Client
	// Logger receives the transport's logs: refusals, corruption, peers
	// that cannot be reached (at most one line per peer per 30 s). Default:
	// discard.
	Logger *slog.Logger

	// QueueLen is the number of messages queued for one peer; Send drops
	// beyond it. Default 1024.
	QueueLen int
	// DialTimeout bounds opening a stream: the TCP connection and the
	// peer's answer to the request. Default 2 s.
	DialTimeout time.Duration
	// WriteTimeout breaks a stream on which one batch of writes has not
	// gone through for this long (a peer that stopped reading). It must
	// cover the largest message at the slowest link. Default 10 s.
	WriteTimeout time.Duration
	// RetryMin and RetryMax bound the wait before the next attempt to reach
	// a peer; it doubles from RetryMin after each failure, with jitter.
	// Defaults 50 ms and 1 s.
	RetryMin, RetryMax time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Unreachable == nil {
		c.Unreachable = func(uint64) {}
	}
	if c.SnapshotDone == nil {
		c.SnapshotDone = func(uint64, bool) {}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 1024
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 50 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Second
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	return c
}

// Validate reports what makes c unusable: no ID or no Deliver.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return errors.New("raftnet: Config.ID is 0")
	}
	if c.Deliver == nil {
		return errors.New("raftnet: Config.Deliver is nil")
	}
	return nil
}

// PeerStats is what a Transport knows of one peer, for metrics and status.
type PeerStats struct {
	// Addr is the peer's address as SetPeer gave it; empty for a member
	// known only by the streams it opened to this one.
	Addr string
	// Connected is true while the stream to the peer is open.
	Connected bool
	// Queued is the number of messages waiting in the peer's queue.
	Queued int
	// Sent counts the messages written and flushed to the peer's streams.
	Sent uint64
	// Dropped counts the messages to the peer that were dropped: queue
	// full, peer unreachable, stream broken, or message too large.
	Dropped uint64
	// Received counts the messages from the peer handed to Deliver.
	Received uint64
}

// Errors a stream ends with, in logs.
var (
	// errRefused: the peer answered the stream's request with a refusal
	// (another group, another member at that address, another version).
	errRefused = errors.New("raftnet: peer refused the stream")
	// errRestart: the peer's address or the group changed; the stream is
	// opened again at once.
	errRestart = errors.New("raftnet: stream restarted")
	// errStalled: a batch of writes did not go through in WriteTimeout.
	errStalled = errors.New("raftnet: stream stalled")
	// errStreamDone: the stream was ended by this side (RemovePeer, Close).
	errStreamDone = errors.New("raftnet: stream closed")
	// errClosed: the Transport is closed.
	errClosed = fmt.Errorf("raftnet: transport closed: %w", argent.ErrUnavailable)
)
