package raftnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/wire"
)

const (
	// failureLogInterval is the least time between two log lines about one
	// peer that cannot be reached.
	failureLogInterval = 30 * time.Second
	// maxKeptBuffer is the largest encoding buffer a writer keeps between
	// batches; a larger one, grown for a large message, is left to the GC.
	maxKeptBuffer = 4 << 20
)

var (
	// errPeerClosed: the receiver ended the stream; its reason follows.
	errPeerClosed = errors.New("raftnet: peer closed the stream")
	// errConnectTimeout: the peer did not answer the stream's request in
	// DialTimeout.
	errConnectTimeout = errors.New("raftnet: no answer from peer in time")
)

// peer is the sending side towards one peer: its queue, and the goroutine
// (run) that keeps a stream open to it and writes what is queued.
type peer struct {
	t      *Transport
	id     uint64
	queue  chan *raftpb.Message
	ctx    context.Context // canceled by RemovePeer and Close
	cancel context.CancelFunc
	moved  chan struct{} // cuts the wait before the next attempt short (restart)

	// down is set while the peer cannot be reached: from a failed attempt or
	// a broken stream until a stream opens again. Send drops rather than
	// queue meanwhile.
	down      atomic.Bool
	connected atomic.Bool
	sent      atomic.Uint64
	dropped   atomic.Uint64
	bigLog    rate.Sometimes // messages too large to send

	mu struct {
		sync.Mutex
		addr string
		// stop ends the attempt or stream under way (a no-op once it
		// ended), for restart.
		stop context.CancelCauseFunc
	}

	fails failureLog // run's own
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	p := &peer{
		t:      t,
		id:     id,
		queue:  make(chan *raftpb.Message, t.cfg.QueueLen),
		moved:  make(chan struct{}, 1),
		bigLog: rate.Sometimes{Interval: failureLogInterval},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.addr = addr
	return p
}

// setAddr moves the peer to addr.
func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	same := p.mu.addr == addr
	p.mu.addr = addr
	p.mu.Unlock()
	if !same {
		p.restart()
	}
}

// restart ends the stream or attempt under way, or the wait before the next
// attempt, so that the peer is reached again at once with the current
// address and group. The queue is kept.
func (p *peer) restart() {
	p.mu.Lock()
	if p.mu.stop != nil {
		p.mu.stop(errRestart)
	}
	p.mu.Unlock()
	select {
	case p.moved <- struct{}{}:
	default:
	}
}

// enqueue queues m, or drops it if the peer is down or its queue full.
func (p *peer) enqueue(m *raftpb.Message) {
	if !p.down.Load() {
		select {
		case p.queue <- m:
			return
		default:
		}
	}
	p.drop(m)
}

// drop counts m as dropped and reports it.
func (p *peer) drop(m *raftpb.Message) {
	p.dropped.Add(1)
	p.t.reports.dropped(p.id, isSnap(m))
}

// dropQueued drops every queued message.
func (p *peer) dropQueued() {
	for {
		select {
		case m := <-p.queue:
			p.drop(m)
		default:
			return
		}
	}
}

func (p *peer) stats() PeerStats {
	p.mu.Lock()
	addr := p.mu.addr
	p.mu.Unlock()
	return PeerStats{
		Addr:      addr,
		Connected: p.connected.Load(),
		Queued:    len(p.queue),
		Sent:      p.sent.Load(),
		Dropped:   p.dropped.Load(),
	}
}

// run keeps a stream open to the peer and writes its queue to it, until
// RemovePeer or Close. After a failed attempt or a broken stream it drops
// what is queued, marks the peer down and tries again after a wait that
// doubles from RetryMin to RetryMax; a stream that lasted RetryMax resets
// the wait.
func (p *peer) run() {
	defer p.t.wg.Done()
	defer p.cancel()
	cfg := &p.t.cfg
	wait := cfg.RetryMin
	for {
		select {
		case <-p.moved:
		default:
		}
		s, addr, err := p.connect()
		if err == nil {
			p.down.Store(false)
			p.connected.Store(true)
			p.logConnected(addr)
			opened := time.Now()
			err = p.stream(s)
			p.connected.Store(false)
			if time.Since(opened) >= cfg.RetryMax {
				wait = cfg.RetryMin
			}
		}
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			continue
		}
		p.down.Store(true)
		p.dropQueued()
		p.logFailure(addr, err)
		if !p.sleep(jitter(wait)) {
			return
		}
		wait = min(2*wait, cfg.RetryMax)
	}
}

// jitter returns a wait between d/2 and d, so that members do not retry in
// step.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// sleep waits d, or less if the peer moves; false means the peer is gone.
func (p *peer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.moved:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// connect opens a stream to the peer: a POST whose body is the write side
// of a pipe, answered with 200 by a receiver that accepts it. It returns the
// address it tried.
func (p *peer) connect() (*stream, string, error) {
	ctx, stop := context.WithCancelCause(p.ctx)
	p.mu.Lock()
	addr := p.mu.addr
	p.mu.stop = stop
	p.mu.Unlock()
	pr, pw := io.Pipe()
	// However the attempt or the stream ends, the client's writer must stop
	// waiting for the body.
	context.AfterFunc(ctx, func() { _ = pw.CloseWithError(context.Cause(ctx)) })
	fail := func(err error) (*stream, string, error) {
		stop(err)
		_ = pw.CloseWithError(err)
		return nil, addr, context.Cause(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+Path, pr)
	if err != nil {
		return fail(fmt.Errorf("raftnet: stream request: %w", err))
	}
	h := req.Header
	h.Set(HeaderProtocol, ProtocolVersion)
	h.Set(HeaderFrom, strconv.FormatUint(p.t.cfg.ID, 10))
	h.Set(HeaderTo, strconv.FormatUint(p.id, 10))
	if g := p.t.group(); !g.IsZero() {
		h.Set(HeaderGroup, g.String())
	}
	h.Set("Content-Type", ContentType)
	// The client holds the body back until the peer answers. Without this,
	// a connection closed before the answer (a proxy, a peer going down)
	// would leave the client reading the body, which is written only after
	// the answer, until DialTimeout.
	h.Set("Expect", "100-continue")
	// The client's own timeouts cannot bound the wait for the answer: they
	// start once the request is written, and this one's body never ends.
	timer := time.AfterFunc(p.t.cfg.DialTimeout, func() { stop(errConnectTimeout) })
	resp, err := p.t.client.Do(req)
	if !timer.Stop() && err == nil {
		_ = resp.Body.Close()
		err = errConnectTimeout
	}
	if err != nil {
		return fail(fmt.Errorf("raftnet: connect: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		err := refusal(resp)
		_ = resp.Body.Close()
		return fail(err)
	}
	s := &stream{ctx: ctx, stop: stop, pw: pw, body: resp.Body, done: make(chan struct{})}
	go s.watch()
	return s, addr, nil
}

// refusal is the error of a receiver's answer other than 200: its JSON
// error, which unwraps to the sentinel of its code (argent.ErrDatasetMismatch
// for another group), wrapped in errRefused.
func refusal(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body apiwire.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil {
		body.Error = apiwire.ErrorDetail{Message: strings.TrimSpace(string(b))}
	}
	return fmt.Errorf("%w: %w", errRefused, apiwire.NewError(resp.StatusCode, body.Error))
}

// stream is one open stream to a peer: the request body this side writes,
// and the answer, which the receiver keeps open until it ends the stream.
type stream struct {
	ctx  context.Context // the request's; canceled when the stream ends, with why
	stop context.CancelCauseFunc
	pw   *io.PipeWriter
	body io.ReadCloser // the answer's body
	done chan struct{} // closed when watch returns
}

// watch waits for the answer to end, which it does when the receiver ends
// the stream (after a line saying why) or the connection breaks, and ends
// the stream with that reason.
func (s *stream) watch() {
	defer close(s.done)
	b, err := io.ReadAll(io.LimitReader(s.body, 1024))
	_ = s.body.Close()
	if err == nil {
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = "no reason given"
		}
		err = fmt.Errorf("%w: %s", errPeerClosed, msg)
	} else {
		err = fmt.Errorf("raftnet: read answer: %w", err)
	}
	s.end(err)
}

// end ends the stream for cause, unless it ended already: the request is
// canceled (which closes its connection) and writes fail from then on.
func (s *stream) end(cause error) {
	s.stop(cause)
	_ = s.pw.CloseWithError(cause)
}

// close ends the stream, waits for watch, and returns why the stream ended:
// the first cause given.
func (s *stream) close(cause error) error {
	s.end(cause)
	<-s.done
	return context.Cause(s.ctx)
}

// stream writes the queue to s until s breaks or ends, and returns why. Each
// turn takes what is queued, writes it and flushes once, so a message queued
// while the stream is idle goes out at once, and a burst goes out in one
// flush. A batch lost with a broken stream is dropped and reported.
func (p *peer) stream(s *stream) error {
	fw := wire.NewWriter(s.pw)
	// A peer that stops reading (or a link that stalls) blocks the writes
	// once the socket buffers fill; the watchdog breaks the stream then, so
	// that the queue drops and Raft hears of it.
	stalled := time.AfterFunc(time.Hour, func() { s.end(errStalled) })
	stalled.Stop()
	defer stalled.Stop()
	var (
		batch []*raftpb.Message
		buf   []byte
	)
	for {
		select {
		case m := <-p.queue:
			batch = append(batch[:0], m)
		case <-s.ctx.Done():
			return s.close(errStreamDone)
		}
		for n := len(p.queue); n > 0; n-- {
			batch = append(batch, <-p.queue) // run is the only receiver: never blocks
		}
		stalled.Reset(p.t.cfg.WriteTimeout)
		err := p.write(fw, batch, &buf)
		stalled.Stop()
		if err != nil {
			for _, m := range batch {
				if m != nil {
					p.drop(m)
				}
			}
			clear(batch)
			return s.close(err)
		}
		for _, m := range batch {
			if m == nil {
				continue
			}
			p.sent.Add(1)
			if isSnap(m) {
				p.t.reports.snapshotSent(p.id)
			}
		}
		clear(batch) // let the GC have the messages
	}
}

// write writes batch to fw and flushes it. A message that cannot be encoded
// or is larger than MaxMessageSize is dropped and its slot set to nil; an
// error means the stream broke.
func (p *peer) write(fw *wire.Writer, batch []*raftpb.Message, buf *[]byte) error {
	for i, m := range batch {
		b, err := proto.MarshalOptions{}.MarshalAppend((*buf)[:0], m)
		if err == nil && len(b) > MaxMessageSize {
			err = fmt.Errorf("%w: message of %d bytes, the limit is %d", argent.ErrTooLarge, len(b), MaxMessageSize)
		}
		if err != nil {
			p.bigLog.Do(func() {
				p.t.cfg.Logger.Error("raftnet: message dropped", "peer", p.id, "type", m.GetType().String(), "err", err)
			})
			p.drop(m)
			batch[i] = nil
			continue
		}
		*buf = b
		if err := fw.WriteFrame(wire.FrameRaftMessage, b); err != nil {
			return fmt.Errorf("raftnet: write to stream: %w", err)
		}
	}
	if err := fw.Flush(); err != nil {
		return fmt.Errorf("raftnet: write to stream: %w", err)
	}
	if cap(*buf) > maxKeptBuffer {
		*buf = nil
	}
	return nil
}

// failureLog keeps the log of one peer's failures to a line per
// failureLogInterval, however often the attempts fail.
type failureLog struct {
	last       time.Time // when a failure was last logged
	suppressed int       // failures not logged since
	reported   bool      // a failure was logged and no stream opened since
	downSince  time.Time // the first failure since the last stream opened
}

// logFailure logs that an attempt failed or a stream broke, unless a line
// about this peer was logged less than failureLogInterval ago.
func (p *peer) logFailure(addr string, err error) {
	f := &p.fails
	now := time.Now()
	if f.downSince.IsZero() {
		f.downSince = now
	}
	if !f.last.IsZero() && now.Sub(f.last) < failureLogInterval {
		f.suppressed++
		return
	}
	p.t.cfg.Logger.Warn("raftnet: cannot reach peer", "peer", p.id, "addr", addr, "err", err,
		"failures_not_logged", f.suppressed)
	f.last, f.suppressed, f.reported = now, 0, true
}

// logConnected logs that a stream opened: at Info after a logged failure,
// else at Debug.
func (p *peer) logConnected(addr string) {
	f := &p.fails
	if f.reported {
		p.t.cfg.Logger.Info("raftnet: peer reachable again", "peer", p.id, "addr", addr,
			"down_for", time.Since(f.downSince).Round(time.Millisecond))
	} else {
		p.t.cfg.Logger.Debug("raftnet: stream open", "peer", p.id, "addr", addr)
	}
	f.reported, f.downSince = false, time.Time{}
}
