// Package limit bounds what clients can hold of a node: connections open at
// once on a listener, and the count of refusals of every bound a node keeps
// (argent_limit_refused_total{limit}). The bounds on requests in flight,
// watch streams and request rates live where those are served (internal/api,
// internal/resp, internal/auth) and count their refusals here.
package limit

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The limit label values of argent_limit_refused_total.
const (
	Connections = "connections" // a listener's open connections
	InFlight    = "in_flight"   // API requests being served at once
	Watchers    = "watchers"    // watch streams open at once
	Rate        = "rate"        // a token's request rate
)

// Refusals counts refused requests and connections by limit. A nil
// *Refusals counts nothing.
type Refusals struct {
	c *prometheus.CounterVec
}

// NewRefusals returns the counter registered on reg, or the one already
// registered there (several servers of one node share it). A nil reg
// registers it nowhere.
func NewRefusals(reg prometheus.Registerer) *Refusals {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "argent_limit_refused_total",
		Help: "Requests and connections refused because a limit was reached, by limit (connections, in_flight, watchers, rate).",
	}, []string{"limit"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic("limit: register metrics: " + err.Error())
			}
			c = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, l := range []string{Connections, InFlight, Watchers, Rate} {
		c.WithLabelValues(l)
	}
	return &Refusals{c: c}
}

// Inc counts one refusal of limit.
func (r *Refusals) Inc(limit string) {
	if r != nil {
		r.c.WithLabelValues(limit).Inc()
	}
}

// maxRejecting bounds the refused connections being answered at once; past
// it a refused connection is closed without an answer.
const maxRejecting = 64

// rejectTimeout bounds the time spent answering one refused connection.
const rejectTimeout = time.Second

// Listener is a net.Listener that keeps at most max connections open. A
// connection over the bound is refused: answered with the reject function
// (on its own goroutine, within a second) and closed, and Accept waits for
// the next one.
type Listener struct {
	net.Listener
	max       int64
	reject    func(net.Conn)
	refusals  *Refusals
	open      atomic.Int64
	rejecting atomic.Int64
	wg        sync.WaitGroup
}

// NewListener returns ln bounded to max open connections (max <= 0: no
// bound). reject, if not nil, writes the refusal to a refused connection.
func NewListener(ln net.Listener, max int, reject func(net.Conn), refusals *Refusals) *Listener {
	return &Listener{Listener: ln, max: int64(max), reject: reject, refusals: refusals}
}

// Open returns the connections open now.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept returns the next connection within the bound.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 || l.open.Add(1) <= l.max {
			if l.max <= 0 {
				l.open.Add(1)
			}
			return &conn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refusals.Inc(Connections)
		l.refuse(c)
	}
}

// refuse answers and closes a connection over the bound.
func (l *Listener) refuse(c net.Conn) {
	if l.reject == nil || l.rejecting.Add(1) > maxRejecting {
		if l.reject != nil {
			l.rejecting.Add(-1)
		}
		c.Close()
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.rejecting.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		l.reject(c)
	}()
}

// Close closes the listener and waits for the refusals under way.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// conn is an accepted connection; closing it frees its place.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
