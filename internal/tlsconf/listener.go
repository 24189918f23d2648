package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeTimeout bounds a server-side handshake.
const HandshakeTimeout = 10 * time.Second

// logEvery is the least time between two logged handshake refusals.
const logEvery = 10 * time.Second

// Listener accepts TLS connections on a TCP listener. Each handshake runs
// on a goroutine of its own, so a slow client does not hold up the others,
// and Accept returns only connections whose handshake succeeded, as
// *tls.Conn. A failed handshake is counted by reason and logged (one line
// per logEvery at most).
type Listener struct {
	ln    net.Listener
	c     *Config
	tcfg  *tls.Config
	conns chan *tls.Conn

	ctx    context.Context // cancelled by Close: ends handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    atomic.Pointer[error] // the accept error that ended the listener
	done   chan struct{}         // closed when the accept loop ends

	lastLog    atomic.Int64 // unix nanos of the last logged refusal
	suppressed atomic.Int64 // refusals not logged since
}

// NewListener returns a Listener that serves c's certificate on ln.
func (c *Config) NewListener(ln net.Listener) *Listener {
	l := &Listener{ln: ln, c: c, tcfg: c.Server(), conns: make(chan *tls.Conn), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	defer close(l.done)
	var delay time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if l.ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.err.Store(&err)
			return
		}
		delay = 0
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

func (l *Listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.tcfg)
	ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		raw.Close()
		if l.ctx.Err() == nil {
			l.refused(raw.RemoteAddr().String(), err)
		}
		return
	}
	select {
	case l.conns <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

// Handshake refusal reasons, the label of argent_tls_handshake_errors_total.
const (
	ReasonUntrustedPeer = "untrusted_peer" // a certificate the CA did not sign
	ReasonPeerAlert     = "peer_alert"     // the client refused ours (or the version)
	ReasonNotTLS        = "not_tls"        // plain text on a TLS port
	ReasonTimeout       = "timeout"        // no handshake within HandshakeTimeout
	ReasonClosed        = "closed"         // the client went mid-handshake
	ReasonOther         = "other"
)

// Reason classifies a handshake error.
func Reason(err error) string {
	var rh tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.Is(err, ErrUntrustedPeer):
		return ReasonUntrustedPeer
	case errors.As(err, &rh):
		return ReasonNotTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonClosed
	case strings.Contains(err.Error(), "remote error"):
		return ReasonPeerAlert
	}
	return ReasonOther
}

// refused counts and (rate-limited) logs a failed handshake.
func (l *Listener) refused(remote string, err error) {
	reason := Reason(err)
	l.c.metrics.handshakeError(reason)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(logEvery) || !l.lastLog.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	l.c.log.Warn("tls: handshake refused", "remote", remote, "reason", reason, "err", err,
		"suppressed_since_last", l.suppressed.Swap(0))
}

// Accept returns the next connection whose handshake succeeded.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case tc := <-l.conns:
		return tc, nil
	case <-l.done:
		if p := l.err.Load(); p != nil && l.ctx.Err() == nil {
			return nil, *p
		}
		return nil, net.ErrClosed
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends the handshakes under way and waits for them.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the TCP listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }
