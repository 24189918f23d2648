// Package pull is the node-to-node log protocol: a parent (Server) serves its
// log and snapshots; a child (Follower) pulls them, checks them and applies
// them.
//
// Children pull; parents never push into a child that did not ask. A log
// stream is GET /internal/v1/log?from=N with the child's dataset and node ID
// in headers; the answer is a stream of wire frames: a Hello, then entries and
// heartbeats, or TooOld when N is older than the parent's log. A snapshot is
// GET /internal/v1/snapshot: SnapBegin, chunks, SnapEnd.
//
// The requests travel over a Transport: HTTPTransport between nodes (the
// Server's handlers, Register, answer it), InmemTransport inside one process
// for tests, with faults to inject. Both go through the same Server and
// Follower code; a transport only carries the bytes.
//
//	tr := pull.NewInmemTransport()
//	tr.Register("parent", srv) // srv := pull.NewServer(...)
//	f := pull.NewFollower(pull.FollowerConfig{Target: t, Upstreams: []string{"parent"}, Transport: tr})
//	go f.Run(ctx)
//
// What the log is applied to is a Target: a replica's store
// (internal/replica, which also loads snapshots into it through
// Follower.FetchSnapshot), or a proxy's cache (internal/proxy).
package pull

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/wire"
)

// ProtocolVersion is the version of the stream protocol. A parent refuses a
// child that speaks another one.
const ProtocolVersion = "1"

// RootClock reports the newest root index and its commit time that a node
// knows of (its own state on the root, the latest heartbeat elsewhere), and
// the root's wall clock when it last vouched for that index (now on the root,
// the latest heartbeat's RootSent elsewhere).
type RootClock interface {
	Root() (argent.Index, int64)
	RootSent() int64
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Source is the log (and snapshots) served: a *kv.Store on roots and
	// replicas, a relay's in-memory log buffer. Required.
	Source Source
	NodeID string
	Root   RootClock
	// RefuseRoles lists the roles of children this node must not feed
	// (their Child.Role); they are refused with 409 and move on to another
	// upstream. A relay refuses replicas, which need snapshots and a full
	// history it does not keep. Default: none.
	RefuseRoles []string
	// Heartbeat is the interval between heartbeats. Default 1s.
	Heartbeat time.Duration
	// WriteTimeout drops a child that does not take bytes for this long.
	// Default 30s.
	WriteTimeout time.Duration
	// SnapshotChunk is the payload size of snapshot chunks. Default 1 MiB.
	SnapshotChunk int
	// SnapshotRate bounds the bytes per second of all snapshot transfers of
	// this node together, so bootstrapping children cannot starve the log
	// streams of the others. Default 128 MiB/s; negative means no limit.
	SnapshotRate int64
	// SnapshotConcurrency bounds the snapshot transfers served at once; a
	// child asking for one more gets 503 and tries again later. Default 2.
	SnapshotConcurrency int
	Metrics             *Metrics
	Logger              *slog.Logger
}

// Server serves a node's log and snapshots to its children.
type Server struct {
	cfg ServerConfig

	done      chan struct{} // closed by Close: ends every stream
	closeOnce sync.Once
	snapSlots chan struct{} // one token per snapshot transfer under way
	snapRate  *rate.Limiter // nil: no limit

	mu struct {
		sync.Mutex
		children map[*childStream]struct{}
	}
}

// Close ends every open log stream and snapshot transfer.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// childStream is one connected log stream, for status.
type childStream struct {
	nodeID   string
	addr     string
	role, dc string
	remote   string
	since    time.Time
	sent     atomic.Uint64 // last index sent
	sentTime atomic.Int64  // root commit time of that index, Unix ns
}

// ChildInfo describes a connected child.
type ChildInfo struct {
	NodeID    string
	Addr      string // the child's listen address, as it reported it
	Role, DC  string // as the child reported them
	Remote    string // the connection's remote address
	Since     time.Time
	SentIndex argent.Index
	SentTime  int64 // root commit time of SentIndex, Unix ns; 0 if unknown
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.SnapshotChunk == 0 {
		cfg.SnapshotChunk = 1 << 20
	}
	if cfg.SnapshotRate == 0 {
		cfg.SnapshotRate = 128 << 20
	}
	if cfg.SnapshotConcurrency == 0 {
		cfg.SnapshotConcurrency = 2
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, done: make(chan struct{}), snapSlots: make(chan struct{}, cfg.SnapshotConcurrency)}
	if cfg.SnapshotRate > 0 {
		s.snapRate = rate.NewLimiter(rate.Limit(cfg.SnapshotRate), cfg.SnapshotChunk)
	}
	s.mu.children = make(map[*childStream]struct{})
	return s
}

// Children lists the connected children.
func (s *Server) Children() []ChildInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChildInfo, 0, len(s.mu.children))
	for c := range s.mu.children {
		out = append(out, ChildInfo{NodeID: c.nodeID, Addr: c.addr, Role: c.role, DC: c.dc, Remote: c.remote, Since: c.since,
			SentIndex: argent.Index(c.sent.Load()), SentTime: c.sentTime.Load()})
	}
	return out
}

// refuse answers a refusal; children log it and move on.
func refuse(resp responder, status int, format string, args ...any) {
	resp.refuse(status, fmt.Sprintf(format, args...))
}

// admit checks a child's request: protocol, dataset, not ourselves.
func (s *Server) admit(p params, resp responder) (argent.DatasetID, bool) {
	if p.protocol != ProtocolVersion {
		refuse(resp, http.StatusBadRequest, "protocol version %q, this node speaks %q", p.protocol, ProtocolVersion)
		return argent.DatasetID{}, false
	}
	if p.node == s.cfg.NodeID {
		refuse(resp, http.StatusConflict, "refusing to feed node %s its own log", s.cfg.NodeID)
		return argent.DatasetID{}, false
	}
	if slices.Contains(s.cfg.RefuseRoles, p.role) {
		refuse(resp, http.StatusConflict, "node %s does not feed a %s: follow another upstream", s.cfg.NodeID, p.role)
		return argent.DatasetID{}, false
	}
	ours := s.cfg.Source.Dataset()
	if ours.IsZero() || s.cfg.Source.Restoring() {
		refuse(resp, http.StatusServiceUnavailable, "node has no data yet")
		return ours, false
	}
	if p.dataset != "" {
		theirs, err := argent.ParseDatasetID(p.dataset)
		if err != nil {
			refuse(resp, http.StatusBadRequest, "%v", err)
			return ours, false
		}
		if theirs != ours {
			refuse(resp, http.StatusConflict, "%v: child has %s, this node %s", argent.ErrDatasetMismatch, theirs, ours)
			return ours, false
		}
	}
	return ours, true
}

// startFrames answers OK and returns a frame writer and a flush that sends
// what is buffered, dropping a child that takes no bytes for WriteTimeout.
func (s *Server) startFrames(resp responder) (*wire.Writer, func() error) {
	sink := resp.frames()
	fw := wire.NewWriter(sink)
	return fw, func() error {
		_ = sink.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := fw.Flush(); err != nil {
			return err
		}
		return sink.Flush()
	}
}

// serveLog answers a request for the log (over any transport) until the
// child goes away (ctx ends), falls behind the log, or the Server closes.
func (s *Server) serveLog(ctx context.Context, p params, resp responder) {
	ds, ok := s.admit(p, resp)
	if !ok {
		return
	}
	from, err := strconv.ParseUint(p.from, 10, 64)
	if err != nil || from == 0 {
		refuse(resp, http.StatusBadRequest, "from must be an index >= 1")
		return
	}
	c := &childStream{nodeID: p.node, addr: p.addr, role: p.role, dc: p.dc, remote: p.remote, since: time.Now()}
	c.sent.Store(from - 1)
	s.mu.Lock()
	s.mu.children[c] = struct{}{}
	s.mu.Unlock()
	s.cfg.Metrics.Children.Inc()
	defer func() {
		s.mu.Lock()
		delete(s.mu.children, c)
		s.mu.Unlock()
		s.cfg.Metrics.Children.Dec()
	}()

	fw, flush := s.startFrames(resp)
	rootIdx, rootTime := s.cfg.Root.Root()
	hello := wire.Hello{Dataset: ds, NodeID: s.cfg.NodeID, Applied: s.cfg.Source.Applied(), RootIndex: rootIdx, RootTime: rootTime, RootSent: s.cfg.Root.RootSent()}
	if err := fw.WriteFrame(wire.FrameHello, hello.Append(nil)); err != nil {
		return
	}
	if err := flush(); err != nil {
		return
	}
	err = s.stream(ctx, fw, flush, c, argent.Index(from))
	if err != nil && ctx.Err() == nil {
		s.cfg.Logger.Debug("log stream ended", "child", c.nodeID, "remote", c.remote, "err", err)
	}
}

// stream sends entries from index next on, heartbeats while idle, until the
// child goes away or falls behind the log.
func (s *Server) stream(ctx context.Context, fw *wire.Writer, flush func() error, c *childStream, next argent.Index) error {
	st := s.cfg.Source
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	var payload []byte
	heartbeat := func() error {
		ri, rt := s.cfg.Root.Root()
		h := wire.Heartbeat{RootIndex: ri, RootTime: rt, Applied: st.Applied(), RootSent: s.cfg.Root.RootSent()}
		payload = h.Append(payload[:0])
		if err := fw.WriteFrame(wire.FrameHeartbeat, payload); err != nil {
			return err
		}
		return flush()
	}
	for {
		changed := st.Changed()
		if next < st.LogFirst() {
			t := wire.TooOld{FirstIndex: st.LogFirst()}
			if err := fw.WriteFrame(wire.FrameTooOld, t.Append(nil)); err != nil {
				return err
			}
			s.cfg.Metrics.TooOld.Inc()
			return flush()
		}
		if next <= st.Applied() {
			var werr error
			n, err := st.ReadLog(next, 4<<20, func(e *logstore.Entry) bool {
				if werr = fw.WriteFrame(wire.FrameEntry, e.Raw); werr != nil {
					return false
				}
				s.cfg.Metrics.EntriesSent.Inc()
				c.sentTime.Store(e.Time)
				s.cfg.Metrics.BytesSent.Add(float64(len(e.Raw) + wire.HeaderSize))
				return true
			})
			if werr != nil {
				return werr
			}
			if errors.Is(err, argent.ErrCompacted) {
				continue // TooOld on the next turn
			}
			if err != nil {
				return err
			}
			next = n
			c.sent.Store(uint64(next - 1))
			// Send a heartbeat with each burst so children learn the root
			// index without waiting a full interval.
			if err := heartbeat(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-changed:
		case <-hb.C:
			if err := heartbeat(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return nil
		}
	}
}

// serveSnapshot answers a request for a snapshot (over any transport): the
// live keys at one index, after p.after if set, in rate-limited chunks.
func (s *Server) serveSnapshot(ctx context.Context, p params, resp responder) {
	ds, ok := s.admit(p, resp)
	if !ok {
		return
	}
	select {
	case s.snapSlots <- struct{}{}:
		defer func() { <-s.snapSlots }()
	default:
		refuse(resp, http.StatusServiceUnavailable, "%d snapshot transfers under way: try again later", cap(s.snapSlots))
		return
	}
	snap, err := s.cfg.Source.NewSnapshot()
	if errors.Is(err, ErrNoSnapshots) {
		refuse(resp, http.StatusConflict, "%v", err)
		return
	}
	if err != nil {
		refuse(resp, http.StatusServiceUnavailable, "%v", err)
		return
	}
	defer snap.Close()
	var after []byte
	if v := p.after; v != "" {
		if after, err = hex.DecodeString(v); err != nil {
			refuse(resp, http.StatusBadRequest, "after must be hex: %v", err)
			return
		}
	}
	fw, flush := s.startFrames(resp)
	h := wire.SnapshotHeader{Dataset: ds, Index: snap.State.Index, Time: snap.State.Time, Chain: snap.State.Chain, Source: snap.Source}
	if err := fw.WriteFrame(wire.FrameSnapBegin, h.Append(nil)); err != nil {
		return
	}
	s.cfg.Metrics.SnapshotsServed.Inc()
	var (
		chunk   []byte
		records uint64
	)
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if s.snapRate != nil {
			// A chunk may pass the burst by one large record: wait in steps.
			for n := len(chunk); n > 0; n -= s.snapRate.Burst() {
				if err := s.snapRate.WaitN(ctx, min(n, s.snapRate.Burst())); err != nil {
					return err
				}
			}
		}
		if err := fw.WriteFrame(wire.FrameSnapChunk, chunk); err != nil {
			return err
		}
		s.cfg.Metrics.BytesSent.Add(float64(len(chunk) + wire.HeaderSize))
		chunk = chunk[:0]
		return flush()
	}
	err = snap.Records(after, func(key []byte, mod argent.Index, value []byte) error {
		chunk = wire.AppendSnapshotRecord(chunk, &argent.Item{Key: key, Value: argent.Value{Value: value, ModIndex: mod}})
		records++
		if len(chunk) >= s.cfg.SnapshotChunk {
			return send()
		}
		select {
		case <-s.done:
			return argent.ErrClosed
		default:
		}
		return ctx.Err()
	})
	if err == nil {
		err = send()
	}
	if err != nil {
		s.cfg.Logger.Debug("snapshot transfer ended", "remote", p.remote, "err", err)
		return
	}
	t := wire.SnapshotTrailer{Records: records}
	if err := fw.WriteFrame(wire.FrameSnapEnd, t.Append(nil)); err != nil {
		return
	}
	_ = flush()
}
