// Package hop is the HTTP/1.1 client of the reads one node sends another
// on a client's behalf: a proxy asking the owner of an L2 shard, a proxy
// or relay looking keys up at a replica. Such a read waits on the hop, so
// the hop's latency is the read's.
//
// net/http's Transport gives each connection a read loop and a write loop
// of their own, so one round trip hands the request and the answer between
// three goroutines. On an idle machine each hand-off can wake a sleeping
// CPU, and a round trip costs about twice what the network does. Transport
// here writes the request and reads the answer on the caller's goroutine,
// over kept-alive connections that one caller has at a time. The request
// and the answer are written and parsed by net/http itself
// (http.Request.Write, http.ReadResponse); only the connection handling is
// this package's.
package hop

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Transport is an http.RoundTripper for short request-answer exchanges
// between nodes. Its zero value is ready to use. It speaks HTTP/1.1 only,
// with or without TLS, and follows no redirects and uses no proxy.
//
// A request whose connection was reused and failed before any of the
// answer arrived (the other side had closed it while idle) is sent once
// more on a new connection, after the other idle connections to the same
// address are dropped, if its body can be had again (GetBody): callers
// send it only reads, which are safe to repeat.
type Transport struct {
	// TLS, if set, is the configuration of every connection, whatever the
	// URL's scheme: a node with TLS speaks it to all its peers.
	TLS *tls.Config
	// DialTimeout bounds connecting and the TLS handshake; the request's
	// context bounds them too. Default 5 s.
	DialTimeout time.Duration
	// MaxIdlePerHost is how many idle connections are kept for each
	// address. Default 64.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept; it should be
	// shorter than the servers' own idle timeout. Default 60 s.
	IdleTimeout time.Duration

	mu     sync.Mutex
	idle   map[string][]*conn // by host:port, most recently used last
	closed bool
}

// conn is one connection, owned by one round trip at a time.
type conn struct {
	t      *Transport
	key    string
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

const (
	defaultDialTimeout    = 5 * time.Second
	defaultMaxIdlePerHost = 64
	defaultIdleTimeout    = 60 * time.Second
)

// errClosed is a round trip on a closed Transport.
var errClosed = errors.New("hop: transport closed")

// RoundTrip sends req on an idle connection to its host, or a new one,
// and returns the answer. The connection goes back to the idle set once
// the answer's body has been read to its end (or closed at its end);
// closing a body before its end closes the connection.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Host == "" {
		closeBody(req)
		return nil, errors.New("hop: request without a host")
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		closeBody(req)
		return nil, fmt.Errorf("hop: unsupported scheme %q", s)
	}
	key := hostPort(req.URL.Host, t.TLS != nil || req.URL.Scheme == "https")
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(req.Context(), key)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		if attempt > 0 || !reused || !retryable(err) || req.Context().Err() != nil {
			closeBody(req)
			return nil, err
		}
		// The other side closed an idle connection: it may have closed
		// them all (a restart), and nothing reads idle connections to
		// notice, so the next attempt dials.
		t.dropIdle(key)
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = body
			req = &r2
		}
	}
}

// CloseIdleConnections closes the connections no round trip holds.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
}

// dropIdle closes the idle connections to key.
func (t *Transport) dropIdle(key string) {
	t.mu.Lock()
	idle := t.idle[key]
	delete(t.idle, key)
	t.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// Close closes the idle connections and makes later round trips fail;
// connections in use close when their round trip ends.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// get returns an idle connection to key that has not been idle too long,
// else a new one.
func (t *Transport) get(ctx context.Context, key string) (*conn, bool, error) {
	now := time.Now()
	var stale []*conn
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, errClosed
	}
	var c *conn
	cs := t.idle[key]
	for len(cs) > 0 {
		last := cs[len(cs)-1]
		cs = cs[:len(cs)-1]
		if now.Sub(last.idleAt) < t.idleTimeout() {
			c = last
			break
		}
		stale = append(stale, last)
	}
	if t.idle != nil {
		t.idle[key] = cs
	}
	t.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
	if c != nil {
		return c, true, nil
	}
	c, err := t.dial(ctx, key)
	return c, false, err
}

// put keeps c for the next round trip to its host, or closes it when
// there are enough idle ones already.
func (t *Transport) put(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	if !t.closed && len(t.idle[c.key]) < t.maxIdle() {
		if t.idle == nil {
			t.idle = make(map[string][]*conn)
		}
		t.idle[c.key] = append(t.idle[c.key], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

func (t *Transport) dial(ctx context.Context, key string) (*conn, error) {
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", key)
	if err != nil {
		return nil, err
	}
	if t.TLS != nil {
		cfg := t.TLS
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(key)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("hop: TLS handshake with %s: %w", key, err)
		}
		nc = tc
	}
	return &conn{t: t, key: key, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return defaultIdleTimeout
}

func (t *Transport) maxIdle() int {
	if t.MaxIdlePerHost > 0 {
		return t.MaxIdlePerHost
	}
	return defaultMaxIdlePerHost
}

// errNoAnswer is a round trip whose connection failed before any of the
// answer arrived.
type errNoAnswer struct{ err error }

func (e errNoAnswer) Error() string { return "hop: " + e.err.Error() }
func (e errNoAnswer) Unwrap() error { return e.err }

func retryable(err error) bool {
	var na errNoAnswer
	return errors.As(err, &na)
}

// roundTrip writes req on c and reads its answer's header. The request's
// context ends the exchange by expiring the connection's deadline.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A connection has no deadline of its own (one whose context ended
	// is closed, never reused): the context's end sets one in the past.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("hop: %s %s: %w", req.Method, req.URL.Redacted(), cerr)
		}
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(errNoAnswer{err})
	}
	if err := c.bw.Flush(); err != nil {
		return fail(errNoAnswer{err})
	}
	if _, err := c.br.Peek(1); err != nil {
		return fail(errNoAnswer{err})
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return fail(fmt.Errorf("hop: answer of %s: %w", req.URL.Host, err))
	}
	if resp.StatusCode == http.StatusContinue || resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return fail(fmt.Errorf("hop: unexpected status %s from %s", resp.Status, req.URL.Host))
	}
	resp.Body = &body{rc: resp.Body, c: c, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// body is an answer's body: at its end the connection goes back to the
// idle set, if the exchange may be followed by another.
type body struct {
	rc   io.ReadCloser
	c    *conn
	stop func() bool
	keep bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

// Close ends the answer. What is left of a short answer is read, so that
// its connection can carry the next one; a connection with more left is
// closed.
func (b *body) Close() error {
	if !b.done {
		n, err := io.CopyN(io.Discard, b.rc, drainLimit+1)
		b.finish(n <= drainLimit && err == io.EOF)
	}
	return nil
}

// drainLimit is how much of an answer's unread body Close reads to keep its
// connection.
const drainLimit = 4 << 10

func (b *body) finish(atEnd bool) {
	b.done = true
	b.rc.Close()
	// stop reports false when the context already ended: its deadline
	// may have been set on the connection, so the connection is done.
	if b.stop() && atEnd && b.keep && b.c.br.Buffered() == 0 {
		b.c.t.put(b.c)
		return
	}
	b.c.nc.Close()
}

// hostPort returns host with a port, the scheme's default when it has none.
func hostPort(host string, secure bool) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if secure {
		return net.JoinHostPort(host, "443")
	}
	return net.JoinHostPort(host, "80")
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
