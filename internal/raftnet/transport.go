package raftnet

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/time/rate"

	"github.com/argent-kv/argent"
)

// Transport carries one member's Raft messages: a stream to each peer
// (SetPeer) for what it sends, and the Handler for the streams of the others.
// Its methods are safe for concurrent use.
//
// Lock order: Transport.mu, then peer.mu, reporter.mu or inbound.mu.
type Transport struct {
	cfg       Config
	client    *http.Client
	ownClient bool          // client was made by New: Close closes its idle connections
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // peer writers, the reporter, and admitted handlers
	reports   reporter

	// Refusals and corrupt streams are logged at most this often, so a
	// misconfigured member retrying cannot flood the log.
	refusedLog, corruptLog rate.Sometimes

	mu struct {
		sync.Mutex
		closed  bool
		group   argent.DatasetID
		peers   map[uint64]*peer
		inbound map[uint64]*inbound // the open stream from each sender
		// received counts the messages delivered from each sender, over all
		// its streams.
		received map[uint64]*atomic.Uint64
	}
}

// New returns a Transport for cfg. It panics if cfg is invalid (see
// Config.Validate): a member without an ID or a Deliver is a programming
// error.
func New(cfg Config) *Transport {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	t := &Transport{
		cfg:        cfg,
		client:     cfg.Client,
		done:       make(chan struct{}),
		refusedLog: rate.Sometimes{Interval: 10 * time.Second},
		corruptLog: rate.Sometimes{Interval: time.Second},
	}
	if t.client == nil {
		t.client, t.ownClient = defaultClient(cfg.DialTimeout), true
	}
	t.reports.init()
	t.mu.group = cfg.Group
	t.mu.peers = make(map[uint64]*peer)
	t.mu.inbound = make(map[uint64]*inbound)
	t.mu.received = make(map[uint64]*atomic.Uint64)
	t.wg.Add(1)
	go t.runReporter()
	return t
}

// defaultClient is the client of a Transport given none: bounded dials,
// keepalives that find a dead peer's idle connection, no proxy from the
// environment (members talk directly) and no compression.
func defaultClient(dialTimeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: d.DialContext,
		// The stream's body waits for the peer's answer (see connect).
		ExpectContinueTimeout: dialTimeout,
		DisableCompression:    true,
		IdleConnTimeout:       time.Minute,
	}}
}

// SetPeer adds peer id at addr (host:port of its listen address) or moves
// it there: a stream open to its old address is closed and opened again at
// addr, keeping the queue. Setting the same address again does nothing.
// This member's own ID and 0 are ignored.
func (t *Transport) SetPeer(id uint64, addr string) {
	if id == 0 || id == t.cfg.ID {
		t.cfg.Logger.Error("raftnet: SetPeer ignored", "peer", id, "self", t.cfg.ID, "addr", addr)
		return
	}
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return
	}
	if p := t.mu.peers[id]; p != nil {
		t.mu.Unlock()
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	t.mu.peers[id] = p
	t.wg.Add(1)
	t.mu.Unlock()
	go p.run()
}

// RemovePeer stops sending to peer id: its stream is closed and its queue
// dropped, without reports. Streams the peer opened to this member are left
// alone (Raft ignores a removed member). Removing an unknown peer does
// nothing.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.mu.peers[id]
	delete(t.mu.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// SetGroup sets the group once this member learns it (see Config.Group).
// Streams to peers are opened again to carry it, and streams from senders of
// another group are closed.
func (t *Transport) SetGroup(g argent.DatasetID) {
	t.mu.Lock()
	if t.mu.closed || t.mu.group == g {
		t.mu.Unlock()
		return
	}
	t.mu.group = g
	for _, p := range t.mu.peers {
		p.restart()
	}
	for _, in := range t.mu.inbound {
		if !groupsMatch(in.group, g) {
			in.close()
		}
	}
	t.mu.Unlock()
}

// group returns the group this member names in its streams.
func (t *Transport) group() argent.DatasetID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.group
}

// Send queues msgs for their peers (Message.To) and returns at once; a
// peer's writer sends them in order. A message is dropped, and its peer
// reported through Unreachable (and SnapshotDone for a MsgSnap), when its
// peer is unknown, cannot be reached now, or has a full queue: Raft
// retransmits.
//
// The messages are the Transport's from then on: the caller must not modify
// them or the entries they point to (Raft does not). Messages for this
// member itself, such as those of asynchronous storage writes, are the
// caller's to handle and must not be passed. After Close, Send does nothing.
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return
	}
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if p := t.mu.peers[m.GetTo()]; p != nil {
			p.enqueue(m)
			continue
		}
		t.reports.dropped(m.GetTo(), isSnap(m))
	}
}

// isSnap reports whether m is a MsgSnap, whose fate Raft must be told.
func isSnap(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap }

// Stats returns the counters of every peer: those set with SetPeer, and the
// members that opened streams to this one.
func (t *Transport) Stats() map[uint64]PeerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]PeerStats, len(t.mu.peers)+len(t.mu.received))
	for id, p := range t.mu.peers {
		out[id] = p.stats()
	}
	for id, n := range t.mu.received {
		st := out[id]
		st.Received = n.Load()
		out[id] = st
	}
	return out
}

// Close ends every stream, both ways, and waits for the Transport's
// goroutines and the Deliver calls in progress to return. No callback is
// called after Close returns, and Handler answers 503 from then on. Calling
// it again does nothing.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		for _, p := range t.mu.peers {
			p.cancel()
		}
		for _, in := range t.mu.inbound {
			in.close()
		}
		t.mu.Unlock()
		close(t.done)
		t.wg.Wait()
		if t.ownClient {
			t.client.CloseIdleConnections()
		}
	})
	return nil
}

// reporter hands drops and snapshot results to the callbacks from one
// goroutine of its own (runReporter), so that Send, called from the Ready
// loop, never calls back into it, and a flood of drops to one peer becomes
// one Unreachable call.
type reporter struct {
	signal chan struct{} // one pending wake-up for runReporter
	mu     struct {
		sync.Mutex
		unreachable map[uint64]struct{}
		snapshots   map[uint64]bool // the latest result per peer
	}
}

func (r *reporter) init() {
	r.signal = make(chan struct{}, 1)
	r.mu.unreachable = make(map[uint64]struct{})
	r.mu.snapshots = make(map[uint64]bool)
}

// dropped records that a message to id was dropped; snap says it was a
// MsgSnap.
func (r *reporter) dropped(id uint64, snap bool) {
	r.mu.Lock()
	r.mu.unreachable[id] = struct{}{}
	if snap {
		r.mu.snapshots[id] = false
	}
	r.mu.Unlock()
	r.wake()
}

// snapshotSent records that a MsgSnap to id was written and flushed.
func (r *reporter) snapshotSent(id uint64) {
	r.mu.Lock()
	r.mu.snapshots[id] = true
	r.mu.Unlock()
	r.wake()
}

func (r *reporter) wake() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// take returns the pending reports and clears them.
func (r *reporter) take() (map[uint64]struct{}, map[uint64]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, s := r.mu.unreachable, r.mu.snapshots
	if len(u) == 0 && len(s) == 0 {
		return nil, nil
	}
	r.mu.unreachable = make(map[uint64]struct{})
	r.mu.snapshots = make(map[uint64]bool)
	return u, s
}

// runReporter calls the callbacks with what reporter gathered, until Close.
func (t *Transport) runReporter() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case <-t.reports.signal:
		}
		unreachable, snapshots := t.reports.take()
		for id, ok := range snapshots {
			if t.closing() {
				return
			}
			t.cfg.SnapshotDone(id, ok)
		}
		for id := range unreachable {
			if t.closing() {
				return
			}
			t.cfg.Unreachable(id)
		}
	}
}

// closing reports whether Close has begun.
func (t *Transport) closing() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}
