package pull

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// InmemTransport connects Followers to Servers in the same process, with no
// sockets, so that the protocol is unit-tested in milliseconds (as
// hashicorp/raft's InmemTransport does). A request runs the Server's own
// handler code (serveLog, serveSnapshot) on a goroutine that writes its
// frames into an io.Pipe the Follower reads: the framing, checks and
// refusals are exactly those of HTTPTransport; only the carrier differs.
//
// Faults can be injected per address (Inject): a refusal, a stream cut or
// stalled after some frames, a corrupted frame. Cut drops the open streams
// to a parent; Unregister also takes it off the network.
type InmemTransport struct {
	mu struct {
		sync.Mutex
		servers map[string]*Server
		faults  map[string][]Fault
		streams map[*inmemStream]string // open streams, by parent address
	}
}

var _ Transport = (*InmemTransport)(nil)

// NewInmemTransport returns a transport with no parents registered.
func NewInmemTransport() *InmemTransport {
	t := &InmemTransport{}
	t.mu.servers = make(map[string]*Server)
	t.mu.faults = make(map[string][]Fault)
	t.mu.streams = make(map[*inmemStream]string)
	return t
}

// Register makes s reachable at addr, replacing any Server there.
func (t *InmemTransport) Register(addr string, s *Server) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.servers[addr] = s
}

// Unregister takes the parent at addr off the network: its open streams are
// cut, as by a lost link, and new requests fail to connect.
func (t *InmemTransport) Unregister(addr string) {
	t.mu.Lock()
	delete(t.mu.servers, addr)
	t.mu.Unlock()
	t.Cut(addr)
}

// Cut cuts every stream open to the parent at addr now, as a lost link
// would: the children read ErrInmemCut. New requests are served.
func (t *InmemTransport) Cut(addr string) {
	t.mu.Lock()
	var cut []*inmemStream
	for st, a := range t.mu.streams {
		if a == addr {
			cut = append(cut, st)
		}
	}
	t.mu.Unlock()
	for _, st := range cut {
		st.shut(ErrInmemCut)
	}
}

// RequestKind names the kind of request a Fault hits.
type RequestKind int

// The requests a Follower makes.
const (
	LogRequest      RequestKind = iota // OpenLog
	SnapshotRequest                    // OpenSnapshot
	ProbeRequest                       // Probe
)

// FaultKind is what an injected Fault does.
type FaultKind int

// The faults an InmemTransport injects.
const (
	// FaultRefuse answers Status (default 503) and Message instead of
	// serving, before any frame. A probe fails.
	FaultRefuse FaultKind = iota + 1
	// FaultCut ends the stream after After frames, as a dropped
	// connection: the child reads ErrInmemCut.
	FaultCut
	// FaultStall sends After frames, then nothing more while keeping the
	// stream open, until the child gives up (or the Server's write
	// deadline passes). A probe waits for its context to end.
	FaultStall
	// FaultCorrupt flips the last payload byte of frame After+1 (the one
	// after the first After frames), which its checksum catches. Every
	// frame the Server sends has a payload.
	FaultCorrupt
)

// Fault is one fault for the next request of its kind to an address.
type Fault struct {
	Request RequestKind
	Kind    FaultKind
	// After counts the frames sent before the fault strikes; frame 1 is the
	// Hello or the SnapBegin. Heartbeats count too: a parent sends one
	// after each burst of entries, and others while idle.
	After int
	// Status and Message are FaultRefuse's answer.
	Status  int
	Message string
}

// ErrInmemCut is what a child reads from a stream cut by FaultCut, Cut or
// Unregister.
var ErrInmemCut = errors.New("pull: in-memory stream cut")

// Inject queues f for the next request of kind f.Request to addr. Faults
// are used in the order they were injected, one per request.
func (t *InmemTransport) Inject(addr string, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.faults[addr] = append(t.mu.faults[addr], f)
}

// lookup returns the Server at addr and the first fault queued for a
// request of kind req, which it takes off the queue.
func (t *InmemTransport) lookup(addr string, req RequestKind) (*Server, Fault, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var f Fault
	q := t.mu.faults[addr]
	for i := range q {
		if q[i].Request == req {
			f = q[i]
			t.mu.faults[addr] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	s := t.mu.servers[addr]
	if s == nil {
		return nil, f, fmt.Errorf("pull: connect: no in-memory node at %s", addr)
	}
	return s, f, nil
}

// Probe implements Transport with the Server's own view of its node.
func (t *InmemTransport) Probe(ctx context.Context, up string) (ParentStatus, error) {
	s, f, err := t.lookup(up, ProbeRequest)
	if err != nil {
		return ParentStatus{}, err
	}
	switch f.Kind {
	case FaultRefuse:
		return ParentStatus{}, fmt.Errorf("status %d", orDefault(f.Status, http.StatusServiceUnavailable))
	case FaultStall:
		<-ctx.Done()
		return ParentStatus{}, ctx.Err()
	}
	st := ParentStatus{NodeID: s.cfg.NodeID, Applied: s.cfg.Source.Applied()}
	if ds := s.cfg.Source.Dataset(); !ds.IsZero() {
		st.Dataset = ds.String()
	}
	return st, nil
}

// OpenLog implements Transport by running the Server's serveLog.
func (t *InmemTransport) OpenLog(ctx context.Context, up string, from argent.Index, c Child) (io.ReadCloser, error) {
	return t.open(ctx, up, LogRequest, logParams(from, c), (*Server).serveLog)
}

// OpenSnapshot implements Transport by running the Server's serveSnapshot.
func (t *InmemTransport) OpenSnapshot(ctx context.Context, up string, after []byte, c Child) (io.ReadCloser, error) {
	return t.open(ctx, up, SnapshotRequest, snapshotParams(after, c), (*Server).serveSnapshot)
}

// open runs serve for p on a goroutine and returns the stream of its
// frames once it answers, or its refusal.
func (t *InmemTransport) open(ctx context.Context, up string, kind RequestKind, p params,
	serve func(*Server, context.Context, params, responder)) (io.ReadCloser, error) {
	s, f, err := t.lookup(up, kind)
	if err != nil {
		return nil, err
	}
	if f.Kind == FaultRefuse {
		return nil, refusal(orDefault(f.Status, http.StatusServiceUnavailable), f.Message)
	}
	p.remote = "inmem"
	pr, pw := io.Pipe()
	sctx, scancel := context.WithCancel(ctx)
	st := &inmemStream{t: t, pr: pr, pw: pw, cancel: scancel, closed: make(chan struct{}), served: make(chan struct{})}
	t.mu.Lock()
	t.mu.streams[st] = up
	t.mu.Unlock()
	// A child's read of a stream fails once its context ends, as an HTTP
	// body's does.
	st.stopAfter = context.AfterFunc(ctx, func() { st.shut(context.Cause(ctx)) })
	resp := &inmemResponder{sink: &inmemSink{st: st, pw: pw, fault: f}, answered: make(chan struct{})}
	go func() {
		defer close(st.served)
		serve(s, sctx, p, resp)
		resp.answer(http.StatusInternalServerError, "pull: in-memory server gave no answer")
		_ = pw.Close() // the end of the stream, as a finished response
	}()
	select {
	case <-resp.answered:
	case <-ctx.Done():
		_ = st.Close()
		return nil, fmt.Errorf("pull: connect: %w", ctx.Err())
	}
	if resp.status != http.StatusOK {
		_ = st.Close()
		return nil, refusal(resp.status, resp.msg)
	}
	return st, nil
}

// orDefault returns v, or def when v is zero.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// inmemStream is the child's end of a stream.
type inmemStream struct {
	t         *InmemTransport
	pr        *io.PipeReader
	pw        *io.PipeWriter
	cancel    context.CancelFunc // ends the Server's request context
	stopAfter func() bool        // stops ending the stream with the child's context
	once      sync.Once
	closed    chan struct{} // closed by shut: releases a stalled writer
	served    chan struct{} // closed when the Server's handler returned
}

func (st *inmemStream) Read(p []byte) (int, error) { return st.pr.Read(p) }

// Close ends the stream and waits for the Server's handler to return, so
// that nothing of it outlives the child's request.
func (st *inmemStream) Close() error {
	st.stopAfter()
	st.shut(io.ErrClosedPipe)
	<-st.served
	return nil
}

// shut ends the stream with cause: the child's reads and the Server's
// writes fail, and the Server's request context ends.
func (st *inmemStream) shut(cause error) {
	st.once.Do(func() {
		// Closing the writer's end fails both the child's reads (with
		// cause) and the Server's writes.
		st.pw.CloseWithError(cause)
		st.cancel()
		close(st.closed)
		st.t.mu.Lock()
		delete(st.t.mu.streams, st)
		st.t.mu.Unlock()
	})
}

// inmemResponder takes the Server's answer: a refusal, or frames.
type inmemResponder struct {
	sink     *inmemSink
	once     sync.Once
	answered chan struct{} // closed once status and msg are set
	status   int
	msg      string
}

func (r *inmemResponder) answer(status int, msg string) {
	r.once.Do(func() {
		r.status, r.msg = status, msg
		close(r.answered)
	})
}

func (r *inmemResponder) refuse(status int, msg string) { r.answer(status, msg) }

func (r *inmemResponder) frames() frameSink {
	r.answer(http.StatusOK, "")
	return r.sink
}

// inmemSink writes a Server's frames into the pipe, injecting its fault. It
// follows the frame boundaries in the byte stream only while a fault is
// pending.
type inmemSink struct {
	st       *inmemStream
	pw       *io.PipeWriter
	fault    Fault // Kind 0: none (left)
	deadline time.Time

	hdr    [wire.HeaderSize]byte // the current frame's header, as far as seen
	nhdr   int                   // bytes of hdr seen
	left   int                   // payload bytes of the current frame to come
	frames int                   // whole frames written
}

// SetWriteDeadline makes writes past t fail, and the stream with them, as
// on a connection.
func (w *inmemSink) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

// Flush is a no-op: a pipe write returns once the child has read it.
func (w *inmemSink) Flush() error { return nil }

func (w *inmemSink) Write(p []byte) (int, error) {
	if w.fault.Kind == 0 {
		return w.write(p)
	}
	n := 0
	for len(p) > 0 {
		if w.fault.Kind != 0 && w.nhdr == 0 && w.frames == w.fault.After {
			// At the boundary before the frame the fault strikes.
			switch w.fault.Kind {
			case FaultCut:
				w.pw.CloseWithError(ErrInmemCut)
				return n, ErrInmemCut
			case FaultStall:
				return n, w.stall()
			}
		}
		k := w.span(len(p))
		chunk := p[:k]
		if w.fault.Kind == FaultCorrupt && w.frames == w.fault.After && w.nhdr == wire.HeaderSize && k == w.left {
			// This chunk ends the frame to corrupt: flip its last byte.
			chunk = append([]byte(nil), chunk...)
			chunk[k-1] ^= 0xff
			w.fault.Kind = 0
		}
		m, err := w.write(chunk)
		n += m
		w.advance(p[:m])
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// span returns how many of the next n bytes belong to the current part of
// the current frame (its header, or its payload).
func (w *inmemSink) span(n int) int {
	if w.nhdr < wire.HeaderSize {
		return min(n, wire.HeaderSize-w.nhdr)
	}
	return min(n, w.left)
}

// advance follows the frame boundaries over b, written.
func (w *inmemSink) advance(b []byte) {
	for len(b) > 0 {
		if w.nhdr < wire.HeaderSize {
			k := copy(w.hdr[w.nhdr:], b)
			w.nhdr += k
			b = b[k:]
			if w.nhdr == wire.HeaderSize {
				w.left = int(binary.BigEndian.Uint32(w.hdr[0:4]))
			}
		} else {
			k := min(len(b), w.left)
			w.left -= k
			b = b[k:]
		}
		if w.nhdr == wire.HeaderSize && w.left == 0 {
			w.nhdr = 0
			w.frames++
		}
	}
}

// stall sends nothing until the stream ends or the write deadline passes.
func (w *inmemSink) stall() error {
	var timeout <-chan time.Time
	if !w.deadline.IsZero() {
		tm := time.NewTimer(time.Until(w.deadline))
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case <-w.st.closed:
		return io.ErrClosedPipe
	case <-timeout:
		w.pw.CloseWithError(os.ErrDeadlineExceeded)
		return os.ErrDeadlineExceeded
	}
}

// write writes b to the pipe, failing it at the write deadline.
func (w *inmemSink) write(b []byte) (int, error) {
	if w.deadline.IsZero() {
		return w.pw.Write(b)
	}
	d := time.Until(w.deadline)
	if d <= 0 {
		w.pw.CloseWithError(os.ErrDeadlineExceeded)
		return 0, os.ErrDeadlineExceeded
	}
	tm := time.AfterFunc(d, func() { w.pw.CloseWithError(os.ErrDeadlineExceeded) })
	defer tm.Stop()
	return w.pw.Write(b)
}
