package fastlane

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// conn is one connection on the lane.
type conn struct {
	l      *Listener
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	// tls is the connection's TLS state when it is a *tls.Conn (whose
	// handshake the listener completed), for the handlers' Request.TLS.
	tls *tls.ConnectionState

	hdr  http.Header // request header, reused: handlers must not keep it
	rw   responseWriter
	body []byte // request body buffer, reused
}

// crlf2 ends a request header.
var crlf2 = []byte("\r\n\r\n")

// serve answers lane requests until the client goes, an error, Close, or a
// request that is not simple, which hands the connection to net/http.
func (lc *conn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			lc.c.Close()
		}
	}()
	defer lc.l.wg.Done()
	defer lc.l.forget(lc)
	lc.remote = lc.c.RemoteAddr().String()
	if tc, ok := lc.c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		lc.tls = &st
	}
	lc.hdr = make(http.Header, 4)
	lc.rw.header = make(http.Header, 8)
	for {
		n, err := lc.awaitHeader()
		if err != nil {
			return
		}
		var req *http.Request
		if n > 0 {
			req, err = lc.parse(n)
		}
		if n == 0 || err != nil {
			lc.handOff()
			handedOff = true
			return
		}
		if !lc.handle(req) {
			return
		}
		if lc.br.Buffered() == 0 {
			if err := lc.bw.Flush(); err != nil {
				return
			}
		}
	}
}

// awaitHeader waits until the buffer holds a whole request header and
// returns its length. It returns 0 when the header does not fit the buffer
// (net/http takes those), and an error when the client goes or stalls.
func (lc *conn) awaitHeader() (int, error) {
	if lc.br.Buffered() == 0 {
		// Idle keep-alive: wait for the next request up to IdleTimeout.
		// The deadline may outlive the wait; the header, body and net/http
		// (on a hand-off) each set their own before they read.
		if err := lc.c.SetReadDeadline(time.Now().Add(lc.l.opts.IdleTimeout)); err != nil {
			return 0, err
		}
	}
	if _, err := lc.br.Peek(1); err != nil {
		return 0, err
	}
	deadline := false
	defer func() {
		if deadline {
			_ = lc.c.SetReadDeadline(time.Time{})
		}
	}()
	for {
		buf, _ := lc.br.Peek(lc.br.Buffered())
		if i := bytes.Index(buf, crlf2); i >= 0 {
			return i + len(crlf2), nil
		}
		if len(buf) == lc.br.Size() {
			return 0, nil
		}
		if !deadline {
			deadline = true
			if err := lc.c.SetReadDeadline(time.Now().Add(lc.l.opts.HeaderTimeout)); err != nil {
				return 0, err
			}
		}
		if _, err := lc.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// handOff gives the connection, with every byte it has read, to net/http,
// after the answers the lane owes it.
func (lc *conn) handOff() {
	if err := lc.bw.Flush(); err != nil {
		lc.l.forget(lc)
		lc.c.Close()
		return
	}
	lc.l.forget(lc) // before give: Close must not close what net/http owns
	lc.l.give(&replayConn{Conn: lc.c, br: lc.br})
}

// handle reads the body of req, calls the handler and buffers its answer.
// It reports whether the connection may serve another request.
func (lc *conn) handle(req *http.Request) (ok bool) {
	if req.ContentLength > 0 {
		if err := lc.readBody(int(req.ContentLength)); err != nil {
			return false
		}
		req.Body = io.NopCloser(bytes.NewReader(lc.body))
	} else {
		req.Body = http.NoBody
	}
	lc.rw.reset()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				lc.l.opts.Logger.Error("fastlane: handler panicked", "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(p))
			}
			ok = false
		}
	}()
	lc.l.handler.ServeHTTP(&lc.rw, req)
	if err := lc.rw.writeTo(lc.bw, lc.l.dateHeader(time.Now())); err != nil {
		return false
	}
	if cap(lc.body) > lc.l.opts.MaxBody { // keep small buffers only
		lc.body = nil
	}
	return true
}

// readBody reads n bytes of body into lc.body, within the header timeout.
func (lc *conn) readBody(n int) error {
	if cap(lc.body) < n {
		lc.body = make([]byte, n)
	}
	lc.body = lc.body[:n]
	if lc.br.Buffered() < n {
		if err := lc.c.SetReadDeadline(time.Now().Add(lc.l.opts.HeaderTimeout)); err != nil {
			return err
		}
		defer lc.c.SetReadDeadline(time.Time{})
	}
	if _, err := io.ReadFull(lc.br, lc.body); err != nil {
		return fmt.Errorf("fastlane: read body: %w", err)
	}
	return nil
}

// replayConn is a handed-off connection: reads drain the lane's buffer
// first.
type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// NetConn returns the connection the lane read from, such as a *tls.Conn,
// whose state an http.Server's ConnContext may want: net/http sees only
// the replayConn.
func (c *replayConn) NetConn() net.Conn { return c.Conn }

// errNotSimple marks a request the lane leaves to net/http.
var errNotSimple = errors.New("fastlane: not a simple request")
