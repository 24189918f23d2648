package resp

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"
)

// ServeConns accepts connections on ln until Close is called, and then
// returns nil, like Serve, but serves each connection on a goroutine of its
// own rather than on the event loops: it is for listeners whose
// connections the loops cannot read themselves, such as TLS ones (a
// *tls.Conn decrypts in Go, the loops read the socket). The commands are
// the same code, run as a command goroutine of Serve runs them. ln is
// closed when ServeConns returns.
func (s *Server) ServeConns(ln net.Listener) error {
	return s.acceptLoop(ln, func(nc net.Conn) bool {
		if !s.trackStream(nc) {
			nc.Close()
			if s.maxConns > 0 {
				s.open.Add(-1)
			}
			return false
		}
		go s.serveStream(nc)
		return true
	})
}

// trackStream registers a connection of ServeConns, counted in wg, so that
// Close closes it; it reports false once Close has begun.
func (s *Server) trackStream(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	if s.mu.streams == nil {
		s.mu.streams = make(map[net.Conn]struct{})
	}
	s.mu.streams[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrackStream(nc net.Conn) {
	s.mu.Lock()
	delete(s.mu.streams, nc)
	s.mu.Unlock()
	nc.Close()
	if s.maxConns > 0 {
		s.open.Add(-1) // counted by acceptLoop
	}
	s.wg.Done()
}

// streamRead is the size of a stream connection's reads.
const streamRead = 16 << 10

// serveStream reads commands from nc and runs them until the client goes,
// sends QUIT or malformed input, or the server closes.
func (s *Server) serveStream(nc net.Conn) {
	defer s.untrackStream(nc)
	c := &conn{s: s, remote: nc.RemoteAddr().String(), nc: nc}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	defer c.cancel()
	s.m.connections.Inc()
	defer s.m.connections.Dec()
	buf := make([]byte, 0, streamRead)
	for {
		if cap(buf)-len(buf) < streamRead/4 {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			used, ok := c.runStream(buf)
			buf = buf[:copy(buf, buf[used:])]
			if !ok {
				return
			}
			if cap(buf) > keepBuffer && len(buf) < streamRead {
				buf = append(make([]byte, 0, streamRead), buf...)
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("resp: connection ended", "remote", c.remote, "err", err)
			}
			return
		}
		if int64(len(buf)) > s.maxPending.Load() {
			s.log.Debug("resp: connection sent too much of one command", "remote", c.remote)
			s.m.cut.WithLabelValues(cutBacklog).Inc()
			return
		}
	}
}

// runStream runs the complete commands in buf, in order, and sends their
// replies once the SETs among them are answered (a pipeline's SETs commit
// together). It returns the bytes it ran and whether the connection goes
// on.
func (c *conn) runStream(buf []byte) (int, bool) {
	used := 0
	for used < len(buf) {
		args, n, err := parse(c.args[:0], buf[used:], c.s.maxBulk)
		c.args = args
		if err != nil {
			c.awaitWrites()
			c.protocolError(err)
			c.writeStream()
			return used, false
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
		used += n
		if len(c.w.buf) >= replyChunk && !c.writeStream() {
			return used, false
		}
		if c.quit {
			c.awaitWrites()
			c.writeStream()
			return used, false
		}
	}
	c.awaitWrites()
	return used, c.writeStream()
}

// writeStream sends the replies written so far on a stream connection. It
// reports false, having closed the connection, when the client does not
// take them within writeTimeout or the write fails.
func (c *conn) writeStream() bool {
	if len(c.w.buf) == 0 {
		return true
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(c.w.buf)
	c.w.buf = c.w.buf[:0]
	if cap(c.w.buf) > keepBuffer {
		c.w.buf = nil
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.s.log.Debug("resp: client takes no replies", "remote", c.remote)
			c.s.m.cut.WithLabelValues(cutNotReader).Inc()
		}
		c.nc.Close()
		return false
	}
	return true
}
