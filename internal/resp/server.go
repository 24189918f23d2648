// Package resp serves a node's store over RESP2, the Redis protocol, so that
// Redis tools (redis-cli, redis-benchmark, client libraries) can read from
// argent and send simple writes to it.
//
// Reads obey argent's consistency contract: every command reads at one
// index, the store's published applied index, which is never below the
// connection's minimum index set with READINDEX. SET and DEL are forwarded
// through the node's Backend.Write. See commands.go for the command set.
package resp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/argent-kv/argent/internal/api"
)

// ErrClosed is returned by Serve when it is called after Close.
var ErrClosed = errors.New("resp: server closed")

// Timeouts of the operations a command waits for.
const (
	writeTimeout = 10 * time.Second // Backend.Write of SET and DEL
	readIndexMax = 5 * time.Second  // waiting for a connection's READINDEX
)

// Server answers RESP connections from one Backend.
type Server struct {
	b       api.Backend
	log     *slog.Logger
	maxBulk int

	readIndexWait time.Duration // readIndexMax; shorter in tests

	ctx    context.Context // cancelled by Close: ends waits and writes
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve loops and connection goroutines

	mu struct {
		sync.Mutex
		closed bool
		lns    map[net.Listener]struct{}
		conns  map[net.Conn]struct{}
	}
}

// New returns a Server over b. A nil logger discards log lines.
func New(b api.Backend, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := b.Limits().WithDefaults()
	s := &Server{b: b, log: logger, maxBulk: max(l.MaxBatch, l.MaxValue) + l.MaxKey + bulkOverhead, readIndexWait: readIndexMax}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.lns = make(map[net.Listener]struct{})
	s.mu.conns = make(map[net.Conn]struct{})
	return s
}

// Serve accepts connections on ln until Close is called, and then returns
// nil. It returns ErrClosed at once if Close was called before, and the
// accept error if ln fails otherwise. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
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
		c, err := ln.Accept()
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
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.mu.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
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
	for c := range s.mu.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// conn is one client connection's state.
type conn struct {
	s        *Server
	nc       net.Conn
	rd       *reader
	w        *writer
	minIndex uint64 // READINDEX: reads wait until the applied index reaches it
	quit     bool
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.mu.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	c := &conn{s: s, nc: nc, w: newWriter(nc)}
	c.rd = newReader(flushReader{nc, c.w}, s.maxBulk)
	for {
		args, err := c.rd.next()
		if err != nil {
			if pe := (*protocolError)(nil); errors.As(err, &pe) {
				c.w.error("ERR Protocol error: " + pe.msg)
				c.w.flush()
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("resp: connection ended", "remote", nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		c.dispatch(args)
		if c.quit {
			c.w.flush()
			return
		}
	}
}

// flushReader reads from a connection, first sending the replies written
// so far. The command reader reads from the connection only when it has no
// complete command buffered, so the replies to pipelined commands go out
// together, and never wait for more input.
type flushReader struct {
	nc net.Conn
	w  *writer
}

func (r flushReader) Read(p []byte) (int, error) {
	if r.w.w.Buffered() > 0 {
		if err := r.w.flush(); err != nil {
			return 0, err
		}
	}
	return r.nc.Read(p)
}
