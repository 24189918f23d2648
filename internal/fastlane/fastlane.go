// Package fastlane serves the hot, simple HTTP/1.1 requests of a listener
// without net/http, and hands every other connection to an http.Server.
//
// A replica spends most of its CPU answering GET /v1/kv/{key}. Under
// net/http a keep-alive request costs, beside the handler, a header map and
// a context per request, a sorted header write, and a background read after
// each answer that wakes a goroutine and makes one more read(2). fastlane
// reads requests with one bufio.Reader per connection, calls the same
// http.Handler with a small buffered ResponseWriter, and writes each answer
// with one write(2) (one for several answers when the client pipelines).
//
// Only requests that are plainly simple take the lane: HTTP/1.1 in origin
// form, a method and path the Eligible function accepts, a Host header, no
// Transfer-Encoding, Expect or Upgrade, not "Connection: close", a body of at
// most MaxBody bytes given by Content-Length, and a header that fits the
// read buffer. The first request that is not simple hands its connection,
// with the bytes already read, to the http.Server for the rest of its life,
// so every edge of HTTP stays net/http's job.
//
//	ln, _ := net.Listen("tcp", addr)
//	fl := fastlane.New(ln, handler, fastlane.Options{Eligible: isKV})
//	go fl.Serve()
//	_ = (&http.Server{Handler: handler}).Serve(fl) // the handed-off connections
//
// Handlers called on the lane see a Request with Method, URL, Proto*, Host,
// Header, RemoteAddr, RequestURI, TLS (when the underlying listener returns
// handshaken *tls.Conns), a Body over the bytes read and the lane's
// context; they must not keep the Request, its Header or the ResponseWriter
// after they return, must not stream (the ResponseWriter has no Flush) and
// cannot hijack.
package fastlane

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Listener. The zero value of each field means its
// default.
type Options struct {
	// Eligible reports whether a request with this method and path (the
	// request target before '?', still escaped) may take the lane. Default:
	// none, so every connection goes to the http.Server.
	Eligible func(method, path string) bool
	// BufferSize is the size of each connection's read buffer, and so the
	// largest request header the lane parses; larger ones go to net/http.
	// Default 4 KiB.
	BufferSize int
	// MaxBody is the largest request body the lane reads into memory; a
	// request announcing more goes to net/http. Default 64 KiB.
	MaxBody int
	// HeaderTimeout bounds the time to receive the rest of a request once
	// its first bytes arrived. Default 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection; a client silent for longer is disconnected, so that idle
	// clients cannot hold connections forever. Default 2 min.
	IdleTimeout time.Duration
	// Logger receives handler panics. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Eligible == nil {
		o.Eligible = func(string, string) bool { return false }
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 4 << 10
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Listener accepts connections from an underlying listener, serves their
// simple requests itself and, as a net.Listener, returns the connections it
// hands off, for an http.Server to Serve.
type Listener struct {
	ln      net.Listener
	handler http.Handler
	opts    Options

	handoff chan net.Conn
	ctx     context.Context // cancelled by Close: ends handlers' waits
	cancel  context.CancelFunc
	base    *http.Request // empty but for ctx: the template of lane requests
	closed  chan struct{}
	once    sync.Once
	date    atomic.Pointer[dateLine]

	mu struct {
		sync.Mutex
		conns map[*conn]struct{} // connections on the lane
	}
	wg sync.WaitGroup // Serve and the lane's connection goroutines
}

// errClosed is returned by Accept after Close.
var errClosed = net.ErrClosed

// New returns a Listener over ln that serves lane requests with h.
func New(ln net.Listener, h http.Handler, opts Options) *Listener {
	l := &Listener{ln: ln, handler: h, opts: opts.withDefaults(),
		handoff: make(chan net.Conn), closed: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.base = (&http.Request{}).WithContext(l.ctx)
	l.mu.conns = make(map[*conn]struct{})
	return l
}

// Serve accepts connections until the Listener is closed, then returns nil;
// it returns the accept error if the underlying listener fails otherwise.
func (l *Listener) Serve() error {
	l.wg.Add(1)
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off as
				// net/http does, instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		lc := l.newConn(c)
		if lc == nil {
			c.Close()
			return nil
		}
		go lc.serve()
	}
}

// newConn registers a lane connection, or returns nil after Close.
func (l *Listener) newConn(c net.Conn) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return nil
	default:
	}
	lc := &conn{l: l, c: c, br: bufio.NewReaderSize(c, l.opts.BufferSize), bw: bufio.NewWriterSize(c, 4<<10)}
	l.mu.conns[lc] = struct{}{}
	l.wg.Add(1)
	return lc
}

// forget unregisters a lane connection that closed or was handed off. It
// is idempotent.
func (l *Listener) forget(lc *conn) {
	l.mu.Lock()
	delete(l.mu.conns, lc)
	l.mu.Unlock()
}

// Accept returns the next connection handed off to net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case <-l.closed:
		return nil, errClosed
	}
}

// give hands c to Accept, or closes it if the Listener closed first.
func (l *Listener) give(c net.Conn) {
	select {
	case l.handoff <- c:
	case <-l.closed:
		c.Close()
	}
}

// Close stops accepting, closes every connection on the lane (handed-off
// ones belong to the http.Server) and waits for their goroutines. It is safe
// to call more than once.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.closed)
		for lc := range l.mu.conns {
			lc.c.Close()
		}
		l.mu.Unlock()
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the underlying listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// dateLine is a cached Date header line for one second.
type dateLine struct {
	sec  int64
	line []byte // "Date: ...\r\n"
}

// dateHeader returns the Date header line for now, formatted once a second.
func (l *Listener) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateLine{sec: sec}
	d.line = append(d.line, "Date: "...)
	d.line = now.UTC().AppendFormat(d.line, "Mon, 02 Jan 2006 15:04:05 GMT")
	d.line = append(d.line, "\r\n"...)
	l.date.Store(d)
	return d.line
}
