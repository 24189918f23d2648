// Package resp serves a node's store over RESP2, the Redis protocol, so that
// Redis tools (redis-cli, redis-benchmark, client libraries) can read from
// argent and send simple writes to it.
//
// Reads obey argent's consistency contract: every command reads at one
// index, the store's published applied index, which is never below the
// connection's minimum index set with READINDEX. SET and DEL are forwarded
// through the node's Backend.Write. See commands.go for the command set.
//
// Connections run on gnet event loops, as Redis runs its clients on one:
// a loop reads what every ready connection sent, answers the commands that
// cannot block (reads of a node's own store, PING, INFO...) and writes the
// replies, without a goroutine per connection to wake for each request.
// A command that may wait (SET and DEL go to the root, a read waits for
// READINDEX or asks other nodes, SCAN walks many keys) hands the connection
// to a goroutine, which runs it and every command after it until the
// connection has nothing left to run, and then hands it back. Replies keep
// the order of the commands throughout.
package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/limit"
)

// ErrClosed is returned by Serve when it is called after Close.
var ErrClosed = errors.New("resp: server closed")

// Timeouts of the operations a command waits for.
const (
	writeTimeout = 10 * time.Second // Backend.Write of SET and DEL; a client taking no replies
	readIndexMax = 5 * time.Second  // waiting for a connection's READINDEX
)

// Flow control of replies. The loop answers commands until it holds
// loopReplies bytes of replies for one connection; the rest of its input
// goes to a goroutine, which sends its replies every replyChunk bytes and,
// while the connection holds more than outboundHigh bytes its client has
// not taken, waits for the client to read.
const (
	loopReplies  = 1 << 20
	replyChunk   = 256 << 10
	outboundHigh = 4 << 20
)

// Server answers RESP connections from one Backend.
type Server struct {
	b     api.Backend
	ready api.Readiness   // b, if it can be not ready; nil otherwise
	async api.AsyncWriter // b, if it takes writes without waiting; nil otherwise
	log   *slog.Logger
	auth  *auth.Authorizer // nil: no token check (see RequireAuth)
	// maxConns bounds the connections open at once (0: no bound; see
	// SetMaxConnections); open counts them from accept to OnClose.
	maxConns int64
	open     atomic.Int64
	refusals *limit.Refusals
	m        *metrics
	maxBulk  int
	// maxPending bounds the input a connection sends while a command
	// waits; past it the connection is closed, as Redis closes a client
	// past its query buffer limit.
	maxPending atomic.Int64

	readIndexWait time.Duration // readIndexMax; shorter in tests

	ctx    context.Context // cancelled by Close: ends waits and writes
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve loops and command goroutines

	mu struct {
		sync.Mutex
		closed bool
		loops  *gnet.Client // started by the first Serve
		lns    map[net.Listener]struct{}
		// streams are the connections of ServeConns, each served by a
		// goroutine counted in wg.
		streams map[net.Conn]struct{}
	}
}

// New returns a Server over b, with its metrics in reg. A nil logger
// discards log lines; a nil reg registers the metrics nowhere.
func New(b api.Backend, logger *slog.Logger, reg prometheus.Registerer) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := b.Limits().WithDefaults()
	maxBulk := max(l.MaxBatch, l.MaxValue) + l.MaxKey + bulkOverhead
	s := &Server{b: b, log: logger, m: newMetrics(reg), maxBulk: maxBulk, readIndexWait: readIndexMax, refusals: limit.NewRefusals(reg)}
	s.ready, _ = b.(api.Readiness)
	s.async, _ = b.(api.AsyncWriter)
	s.maxPending.Store(int64(2*maxBulk + keepBuffer))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.lns = make(map[net.Listener]struct{})
	return s
}

// loops returns the event loops, starting them on first use.
func (s *Server) loops() (*gnet.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, ErrClosed
	}
	if s.mu.loops != nil {
		return s.mu.loops, nil
	}
	cli, err := gnet.NewClient(&events{s: s},
		gnet.WithNumEventLoop(runtime.GOMAXPROCS(0)),
		gnet.WithLogger(gnetLogger{s.log}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	if err != nil {
		return nil, fmt.Errorf("resp: event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("resp: start event loops: %w", err)
	}
	s.mu.loops = cli
	return cli, nil
}

// Serve accepts connections on ln until Close is called, and then returns
// nil. It returns ErrClosed at once if Close was called before, and the
// accept error if ln fails otherwise. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	loops, err := s.loops()
	if err != nil {
		ln.Close()
		return err
	}
	return s.acceptLoop(ln, func(nc net.Conn) bool {
		c := &conn{s: s, remote: nc.RemoteAddr().String()}
		c.counted.Store(s.maxConns > 0)
		// Enroll hands the socket to a loop (which owns a copy of it
		// from now on) and closes nc; the loop's OnOpen registers c.
		if _, err := loops.EnrollContext(nc, c); err != nil {
			s.log.Debug("resp: enroll connection", "remote", c.remote, "err", err)
			c.uncount()
		}
		return true
	})
}

// acceptLoop accepts connections on ln until Close is called, and then
// returns nil; it retries temporary accept errors and returns others. A
// connection over the bound of connections (SetMaxConnections) is refused;
// every other one, counted under the bound, goes to serve, which reports
// false when the server is closing. ln is closed when acceptLoop returns.
func (s *Server) acceptLoop(ln net.Listener, serve func(net.Conn) bool) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.mu.lns[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.mu.lns, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("resp: accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		if s.maxConns > 0 && s.open.Add(1) > s.maxConns {
			s.open.Add(-1)
			s.refusals.Inc(limit.Connections)
			s.refuse(nc)
			continue
		}
		if !serve(nc) {
			return nil
		}
	}
}

// isTemporary reports accept errors worth retrying, such as running out of
// file descriptors.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

// Close stops every Serve loop, closes every connection, and waits until
// their goroutines have ended. Commands in progress are cut short.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.cancel()
	var err error
	for ln := range s.mu.lns {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	for nc := range s.mu.streams {
		nc.Close()
	}
	loops := s.mu.loops
	s.mu.Unlock()
	// Commands under way see the cancelled context and end; then the
	// loops stop and close every connection.
	s.wg.Wait()
	if loops != nil {
		if serr := loops.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("resp: stop event loops: %w", serr)
		}
	}
	return err
}

// events is the Server's handler of the loops' events.
type events struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (e *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c, ok := gc.Context().(*conn)
	if !ok || e.s.isClosed() {
		return nil, gnet.Close
	}
	c.gc = gc
	c.ctx, c.cancel = context.WithCancel(e.s.ctx)
	e.s.m.connections.Inc()
	return nil, gnet.None
}

func (e *events) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if ok {
		c.uncount()
	}
	if !ok || c.gc == nil {
		return gnet.None
	}
	e.s.m.connections.Dec()
	if !c.busy && c.waiting > 0 && errors.Is(err, io.EOF) {
		// The client shut down its side with SETs in flight: a goroutine
		// answers them, and the commands sent after them, on a copy of
		// the socket.
		c.finishOnGoroutine(gc)
	}
	if c.busy && errors.Is(err, io.EOF) {
		// The client shut down its side; the commands it sent before
		// still run on a goroutine, which answers them on a copy of the
		// socket.
		if hc, derr := dupConn(gc); derr == nil {
			c.mu.Lock()
			c.mu.halfClosed = hc
			c.mu.Unlock()
		}
	}
	c.closed.Store(true)
	if c.halfClosedConn() == nil {
		// Nothing answers this connection any more: reads under way stop
		// (a proxy's miss stops asking replicas). Commands still running
		// for a client that only shut down its side keep the context until
		// their goroutine ends (see run).
		c.cancel()
	}
	if err != nil {
		e.s.log.Debug("resp: connection ended", "remote", c.remote, "err", err)
	}
	return gnet.None
}

// finishOnGoroutine hands a connection whose client shut down its side
// while the loop had SETs in flight to a goroutine: it waits for their
// results and answers them and the commands after them (the carried input)
// on a copy of the socket, as run does for a busy connection.
func (c *conn) finishOnGoroutine(gc gnet.Conn) {
	hc, err := dupConn(gc)
	if err != nil {
		return
	}
	if !c.s.startCommand() {
		hc.Close()
		return
	}
	c.mu.Lock()
	c.mu.halfClosed = hc
	if c.mu.completed < c.mu.submitted {
		c.mu.drained = make(chan struct{})
	}
	drained := c.mu.drained
	c.mu.Unlock()
	c.busy = true // the loop is done with it: the goroutine owns its state
	rest := append([]byte(nil), c.carry...)
	c.carry = nil
	go func() {
		if drained != nil {
			select {
			case <-drained:
			case <-c.s.ctx.Done():
				hc.Close()
				c.s.wg.Done()
				return
			}
		}
		c.takeReplies()
		c.run(rest)
	}()
}

// dupConn returns a net.Conn on a copy of gc's socket, which stays open
// when the loop closes gc.
func dupConn(gc gnet.Conn) (net.Conn, error) {
	fd, err := gc.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "resp")
	defer f.Close() // FileConn holds its own copy
	return net.FileConn(f)
}

func (e *events) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	in, err := gc.Next(-1)
	if err != nil {
		return gnet.Close
	}
	if c.waiting > 0 {
		c.takeReplies()
	}
	if c.busy {
		// A goroutine runs this connection's commands: queue the input
		// for it, in order.
		c.mu.Lock()
		defer c.mu.Unlock()
		if int64(len(c.mu.backlog)+len(in)) > c.s.maxPending.Load() {
			c.s.log.Debug("resp: connection sent too much while a command waited", "remote", c.remote)
			c.s.m.cut.WithLabelValues(cutBacklog).Inc()
			return gnet.Close
		}
		c.mu.backlog = append(c.mu.backlog, in...)
		return gnet.None
	}
	return c.serve(in)
}

// conn is one client connection's state. Outside a command goroutine, the
// connection's loop owns every field but mu; while busy, the goroutine
// owns w, args, minIndex, quit and carry.
type conn struct {
	s  *Server
	gc gnet.Conn
	// nc is the socket of a connection of ServeConns, which has no loop
	// (gc is nil): its goroutine reads it and writes replies to it.
	nc     net.Conn
	remote string
	closed atomic.Bool // the loop closed the connection
	// counted is set while the connection holds a place under the
	// server's maxConns.
	counted atomic.Bool
	// ctx is the context of the connection's reads, set by OnOpen: it ends
	// when the connection closes (for a client that only shut down its
	// side, once the commands it sent are answered) or the server stops.
	ctx    context.Context
	cancel context.CancelFunc

	w        writer
	args     [][]byte
	minIndex uint64 // READINDEX: reads wait until the applied index reaches it
	auth     connAuth
	// ratePaid is set when a command handed to a goroutine has taken its
	// place in the token's rate on the loop already.
	ratePaid bool
	quit     bool
	// onLoop is set while a command runs on the loop; a read that would
	// wait then sets wouldBlock and writes nothing, and the command is
	// handed to a goroutine.
	onLoop, wouldBlock bool
	// carry is input not run yet: the start of an incomplete command.
	carry []byte
	// busy is set while a goroutine runs this connection's commands; only
	// the loop reads and changes it.
	busy bool
	// pending holds the SETs a command goroutine submitted and has not
	// answered yet (see queueSet).
	pending []pendingWrite
	// waiting counts the SETs the loop submitted (loopSet) whose replies
	// are not written yet; while it is not 0, the loop runs no command but
	// another SET, so that replies keep their order.
	waiting   int
	onSetDone func(argent.Index, error) // c.setDone, made once

	mu struct {
		sync.Mutex
		backlog []byte // input that arrived while busy
		// halfClosed is a copy of the socket, kept when the client shut
		// down its side while a goroutine ran commands: their replies go
		// there. The goroutine closes it.
		halfClosed net.Conn
		// The replies of the loop's SETs that committed (setDone), not yet
		// taken by the loop (takeReplies); waking is set while a wake-up
		// of the loop for them is under way.
		replies              []byte
		submitted, completed int
		waking               bool
		drained              chan struct{} // closed when completed reaches submitted
	}
}

// serve runs the commands in the carried input and in, on the loop: those
// that cannot block at once, and from the first that may, all of them on
// a goroutine. It sends the replies and keeps an incomplete command for the
// next call.
func (c *conn) serve(in []byte) gnet.Action {
	buf := in
	if len(c.carry) > 0 {
		c.carry = append(c.carry, in...)
		buf = c.carry
	}
	if c.waiting > 0 && (c.gc.OutboundBuffered() > outboundHigh || len(buf) > keepBuffer) {
		// SETs are in flight and the client takes no replies, or sends
		// more than a pipeline: keep the input, up to the bound, until
		// their replies are out.
		return c.holdInput(buf)
	}
	if c.gc.OutboundBuffered() > outboundHigh {
		// The client is not taking its replies: wait for it on a goroutine.
		return c.handOff(buf)
	}
	used := 0
	action := gnet.None
	for used < len(buf) {
		if len(c.w.buf) >= loopReplies {
			if c.waiting > 0 {
				break
			}
			return c.handOff(buf[used:])
		}
		args, n, err := parse(c.args[:0], buf[used:], c.s.maxBulk)
		c.args = args
		if err != nil && c.waiting > 0 {
			break // answered once the SETs before it are
		}
		if err != nil {
			c.protocolError(err)
			action = gnet.Close
			break
		}
		if n == 0 {
			break
		}
		if len(args) > 0 {
			var nb [16]byte
			name := cmdName(&nb, args[0])
			if name == "SET" && c.s.async != nil && c.loopSet(args) {
				used += n
				continue
			}
			if c.waiting > 0 {
				// Wait for the SETs in flight: setDone wakes the loop,
				// which runs the rest then.
				break
			}
			if !runsOnLoop(name) {
				return c.handOff(buf[used:])
			}
			mark := len(c.w.buf)
			c.onLoop = true
			c.dispatch(name, args)
			c.onLoop = false
			if c.wouldBlock {
				c.wouldBlock = false
				c.w.buf = c.w.buf[:mark]
				c.ratePaid = c.s.auth != nil && name != "SET"
				return c.handOff(buf[used:])
			}
		}
		used += n
		if c.quit {
			action = gnet.Close
			break
		}
	}
	// Keep the incomplete command; in is the loop's buffer, valid only
	// until this event returns.
	c.carry = append(c.carry[:0], buf[used:]...)
	if cap(c.carry) > keepBuffer {
		c.carry = append([]byte(nil), c.carry...)
	}
	c.send()
	return action
}

// holdInput keeps buf, input not run yet, for when the loop's SETs in
// flight are answered, and closes a connection that sends more than the
// server queues behind a waiting command.
func (c *conn) holdInput(buf []byte) gnet.Action {
	c.send()
	if int64(len(buf)) > c.s.maxPending.Load() {
		c.s.log.Debug("resp: connection sent too much while its writes waited", "remote", c.remote)
		c.s.m.cut.WithLabelValues(cutBacklog).Inc()
		return gnet.Close
	}
	if len(c.carry) == 0 || &buf[0] != &c.carry[0] {
		c.carry = append(c.carry[:0], buf...)
	}
	return gnet.None
}

// handOff sends the replies written so far and starts a goroutine that
// runs the commands in buf and all input after it. From here on the
// goroutine owns the connection's command state until it hands it back.
func (c *conn) handOff(buf []byte) gnet.Action {
	c.send()
	if !c.s.startCommand() {
		return gnet.Close
	}
	rest := append([]byte(nil), buf...)
	c.carry = c.carry[:0]
	c.busy = true
	c.s.m.offLoop.Inc()
	go c.run(rest)
	return gnet.None
}

// send writes the replies written so far, on the loop.
func (c *conn) send() {
	if len(c.w.buf) == 0 {
		return
	}
	_, _ = c.gc.Write(c.w.buf) // copies what the socket does not take now
	c.w.buf = c.w.buf[:0]
	if cap(c.w.buf) > keepBuffer {
		c.w.buf = nil
	}
}

func (c *conn) protocolError(err error) {
	var pe *protocolError
	if errors.As(err, &pe) {
		c.w.error("ERR Protocol error: " + pe.msg)
	}
	c.s.m.cut.WithLabelValues(cutProtocol).Inc()
	c.s.log.Debug("resp: protocol error", "remote", c.remote, "err", err)
}

// runsOnLoop reports whether the command name may run on the loop:
// anything but a write and a SCAN (which may walk many keys). A read that
// turns out to need a wait (READINDEX, a proxy's miss) sets wouldBlock
// instead.
func runsOnLoop(name string) bool {
	switch name {
	case "SET", "DEL", "SCAN":
		return false
	}
	return true
}

// open reports whether a command goroutine can still answer: the
// connection is open, or the client only shut down its side.
func (c *conn) open() bool {
	return !c.closed.Load() || c.halfClosedConn() != nil
}

// startCommand counts a command goroutine about to start in wg; it
// reports false once Close has begun waiting for them.
func (s *Server) startCommand() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// run runs commands on a goroutine, starting with those in buf, then the
// input that arrives meanwhile, until only an incomplete command is left;
// then it hands the connection back to its loop.
func (c *conn) run(buf []byte) {
	defer c.s.wg.Done()
	// A goroutine that handed the connection back leaves the socket to the
	// loop, or to the goroutine after it; one that ends otherwise ends the
	// connection's commands and closes the copy kept for a half-closed
	// client.
	var handedBack atomic.Bool
	defer func() {
		if hc := c.halfClosedConn(); hc != nil && !handedBack.Load() {
			hc.Close()
			c.cancel()
		}
	}()
	for {
		for len(buf) > 0 && c.open() {
			args, n, err := parse(c.args[:0], buf, c.s.maxBulk)
			c.args = args
			if err != nil {
				c.awaitWrites()
				c.protocolError(err)
				c.flushThen(func(gc gnet.Conn) { _ = gc.Close() })
				return
			}
			if n == 0 {
				break
			}
			if len(args) > 0 {
				var nb [16]byte
				name := cmdName(&nb, args[0])
				if name == "SET" && c.s.async != nil {
					c.queueSet(args)
				} else {
					// Every other command sees the writes before it.
					c.awaitWrites()
					c.dispatch(name, args)
				}
			}
			buf = buf[n:]
			if len(c.w.buf) >= replyChunk && !c.flushAndWait() {
				return
			}
			if c.quit {
				c.flushThen(func(gc gnet.Conn) { _ = gc.Close() })
				return
			}
		}
		if !c.open() {
			return
		}
		if more := c.takeBacklog(); len(more) > 0 {
			buf = append(append([]byte(nil), buf...), more...)
			continue
		}
		if len(c.pending) > 0 {
			// The input so far is run: answer its SETs, then look for
			// input that came meanwhile.
			c.awaitWrites()
			continue
		}
		// Hand back on the loop, after the last replies are written:
		// input that arrived since is run there, in order.
		rest := append([]byte(nil), buf...)
		c.flushThen(func(gc gnet.Conn) {
			handedBack.Store(true)
			c.busy = false
			c.carry = rest
			if c.serve(c.takeBacklog()) == gnet.Close {
				_ = gc.Close()
			}
		})
		if handedBack.Load() || c.halfClosedConn() == nil {
			return
		}
		// The client shut down its side meanwhile, and the loop closed
		// the connection: what it sent before that is run here.
		more := c.takeBacklog()
		if len(more) == 0 {
			return
		}
		buf = append(rest, more...)
	}
}

// takeBacklog returns the input queued while a goroutine ran commands.
func (c *conn) takeBacklog() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	more := c.mu.backlog
	c.mu.backlog = nil
	return more
}

// flush sends the replies written so far from a command goroutine.
func (c *conn) flush() {
	switch {
	case len(c.w.buf) == 0:
	case c.nc != nil:
		c.writeStream()
	default:
		c.flushThen(nil)
	}
}

// flushAndWait sends the replies written so far from a command goroutine
// and waits while the client has more than outboundHigh bytes of replies
// to take. It closes the connection and reports false when the client
// takes none for writeTimeout, or when the connection or the server closes.
func (c *conn) flushAndWait() bool {
	deadline, last := time.Now().Add(writeTimeout), -1
	for {
		n := c.flushThen(nil)
		switch {
		case n < 0:
			return false
		case n <= outboundHigh:
			return true
		case n != last:
			deadline, last = time.Now().Add(writeTimeout), n
		case time.Now().After(deadline):
			c.s.log.Debug("resp: client takes no replies", "remote", c.remote, "pending", n)
			c.s.m.cut.WithLabelValues(cutNotReader).Inc()
			_ = c.gc.Close()
			return false
		}
		select {
		case <-time.After(time.Millisecond):
		case <-c.s.ctx.Done():
			return false
		}
	}
}

// flushThen sends the replies written so far from a command goroutine
// through the loop, then calls then (if set) on the loop, and
// waits for both: the goroutine's writes stay in order with each other and
// with the loop's. It returns how many bytes of replies the client has yet
// to take, 0 when the replies went to a half-closed connection, or -1 once
// the connection or the server has closed.
//
// A client that sends its commands and then shuts down its side (as
// `printf ... | nc -N` does) makes the loop close the connection while
// commands still run here; their replies then go straight to the socket,
// which OnClose kept open for them (halfClosed).
func (c *conn) flushThen(then func(gnet.Conn)) int {
	out := c.w.buf
	c.w.buf = nil
	pending := make(chan int, 1)
	err := c.gc.AsyncWrite(out, func(gc gnet.Conn, err error) error {
		if err != nil || c.closed.Load() {
			pending <- -1
			return nil
		}
		if then != nil {
			then(gc)
		}
		pending <- gc.OutboundBuffered()
		return nil
	})
	n := -1
	if err == nil {
		select {
		case n = <-pending:
		case <-c.s.ctx.Done():
			return -1
		}
	}
	if n >= 0 {
		return n
	}
	hc := c.halfClosedConn()
	if hc == nil || len(out) == 0 {
		return -1
	}
	hc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := hc.Write(out); err != nil {
		c.s.log.Debug("resp: write after the client shut down its side", "remote", c.remote, "err", err)
		return -1
	}
	return 0
}

func (c *conn) halfClosedConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.halfClosed
}

// gnetLogger passes gnet's log lines to slog at debug level (errors at
// warn): they are about the loops, not about argent's data.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("resp: gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("resp: gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("resp: gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Warn("resp: gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("resp: gnet: " + fmt.Sprintf(f, a...)) }
