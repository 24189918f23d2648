// Package faultproxy is an in-process TCP proxy on loopback that injects faults
// into one link between two nodes, in the manner of toxiproxy: delay, cut,
// blackhole and bit flips.
//
// Put a proxy in front of a node and give its address to the node's child:
//
//	p := faultproxy.Start(t, root.Addr) // closed at t.Cleanup
//	replica := cluster.StartReplica(t, []string{p.Addr()})
//	p.SetDelay(50 * time.Millisecond)    // each way
//	p.Cut()                              // drop and refuse connections
//	p.Restore()                          // forward again
//
// "Up" is the direction from the dialing side (the client) to the upstream;
// "down" is the direction from the upstream to the client. Bytes are moved in
// chunks: whatever one read from a socket returned, at most 32 KiB.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	chunkSize   = 32 << 10        // largest chunk moved by one read and one write
	queueLen    = 1024            // chunks in flight per direction before reads stop
	dialTimeout = 5 * time.Second // bound on connecting to the upstream
)

// mode is the fault state of the link as a whole.
type mode int

const (
	modeOpen      mode = iota // forward bytes
	modeCut                   // close connections, refuse new ones
	modeBlackhole             // keep connections, hold bytes
)

// Proxy forwards TCP connections from a loopback listener to one upstream
// address and injects the faults it is told to. Its methods are safe for
// concurrent use. The zero value is not usable; call New or Start.
type Proxy struct {
	upstream string
	ln       net.Listener
	ctx      context.Context // canceled by Close; bounds upstream dials
	cancel   context.CancelFunc
	wg       sync.WaitGroup // every goroutine the proxy started

	bytesUp, bytesDown, conns, refused, corrupted atomic.Int64

	mu struct {
		sync.Mutex
		closed      bool
		mode        mode
		release     chan struct{} // closed unless mode is modeBlackhole
		delay       time.Duration
		corruptNext int
		corruptRate float64
		rng         *rand.Rand
		links       map[*link]struct{}
	}
}

// Stats are the proxy's counters since it was created.
type Stats struct {
	BytesUp   int64 // bytes written to the upstream
	BytesDown int64 // bytes written to clients, corrupted ones included
	Conns     int64 // connections accepted and joined to the upstream
	Refused   int64 // connections accepted and closed at once: cut, closing, or upstream dial failed
	Active    int   // connections open now
	Corrupted int64 // down chunks that had one bit flipped
}

// New starts a proxy that listens on 127.0.0.1 on a free port and forwards
// each connection to upstream. Call Close when done.
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{upstream: upstream, ln: ln}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.release = make(chan struct{})
	close(p.mu.release)
	p.mu.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	p.mu.links = make(map[*link]struct{})
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Start is New for tests: it fails t if the proxy cannot start and closes the
// proxy at t.Cleanup.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the address clients should dial, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// SetDelay delays every chunk, in each direction, by d from the moment it was
// read; a round trip through the proxy therefore takes at least 2*d. Chunks
// keep their order and many may be in flight, so throughput is not limited to
// one chunk per d. Zero (the default) turns delay off for chunks read from
// then on.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.delay = d
}

// Cut closes every open connection and, until Restore, accepts new ones only
// to close them at once, as a peer whose process died would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(modeCut)
	for l := range p.mu.links {
		l.close()
	}
}

// Blackhole stalls the link: connections stay open and new ones are accepted,
// but no byte is delivered in either direction until Restore. Bytes already
// read are held (up to 1024 chunks each way, after which the proxy stops
// reading and TCP flow control stalls the sender) and delivered in order on
// Restore, the way a TCP connection over a link that heals behaves. Close,
// Cut, or either end closing its socket drops them.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(modeBlackhole)
}

// Restore ends a Cut or a Blackhole. It does not change delay or corruption
// settings.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(modeOpen)
}

// setModeLocked switches mode and opens or closes the blackhole gate.
func (p *Proxy) setModeLocked(m mode) {
	switch {
	case p.mu.mode == modeBlackhole && m != modeBlackhole:
		close(p.mu.release)
	case p.mu.mode != modeBlackhole && m == modeBlackhole:
		p.mu.release = make(chan struct{})
	}
	p.mu.mode = m
}

// CorruptNext flips one random bit in each of the next n chunks sent down
// (upstream to client). It replaces any count still pending; n <= 0 cancels it.
func (p *Proxy) CorruptNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.corruptNext = max(n, 0)
}

// SetCorruptRate flips one random bit in each chunk sent down with
// probability prob (0, the default, turns it off; 1 corrupts every chunk).
// Chunks counted by CorruptNext are corrupted regardless.
func (p *Proxy) SetCorruptRate(prob float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.corruptRate = prob
}

// Seed makes the choice of corrupted chunks, bytes and bits repeatable. By
// default the proxy is seeded at random.
func (p *Proxy) Seed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.rng = rand.New(rand.NewPCG(seed, seed))
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.mu.links)
	p.mu.Unlock()
	return Stats{
		BytesUp:   p.bytesUp.Load(),
		BytesDown: p.bytesDown.Load(),
		Conns:     p.conns.Load(),
		Refused:   p.refused.Load(),
		Active:    active,
		Corrupted: p.corrupted.Load(),
	}
}

// Close stops listening, closes every connection and waits for all of the
// proxy's goroutines to exit. Calling it again does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.closed = true
	for l := range p.mu.links {
		l.close()
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy: close: %w", err)
	}
	return nil
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error such as EMFILE: back off; Close ends the wait.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve joins one client connection to a new upstream connection and moves
// bytes both ways until both directions end or the link is closed.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if p.refusing() {
		p.refuse(client)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(p.ctx, "tcp", p.upstream)
	if err != nil {
		p.refuse(client)
		return
	}
	l := &link{client: client, upstream: up, done: make(chan struct{})}
	if !p.register(l) {
		p.refused.Add(1)
		l.close()
		return
	}
	p.conns.Add(1)
	defer p.unregister(l)
	defer l.close()

	upQ := make(chan chunk, queueLen)
	downQ := make(chan chunk, queueLen)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); p.read(l, client, upQ) }()
	go func() { defer wg.Done(); p.read(l, up, downQ) }()
	go func() { defer wg.Done(); p.write(l, up, upQ, false) }()
	p.write(l, client, downQ, true)
	wg.Wait()
}

func (p *Proxy) refusing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.closed || p.mu.mode == modeCut
}

func (p *Proxy) refuse(c net.Conn) {
	p.refused.Add(1) // before Close, so a client that sees the close sees the count
	_ = c.Close()
}

// register adds l to the open links unless the proxy is closed or cut.
func (p *Proxy) register(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed || p.mu.mode == modeCut {
		return false
	}
	p.mu.links[l] = struct{}{}
	return true
}

func (p *Proxy) unregister(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.links, l)
}

// chunk is one read's worth of bytes, or the end of a direction (eof), with
// the time it may be written.
type chunk struct {
	data []byte
	eof  bool
	due  time.Time
}

// link is one proxied connection: the client side and the upstream side.
type link struct {
	client, upstream net.Conn
	done             chan struct{} // closed by close
	once             sync.Once
}

// close closes both sockets, which ends both reads, and wakes every wait.
func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		_ = l.client.Close()
		_ = l.upstream.Close()
	})
}

// read moves chunks from src into q, stamped with their due time. At EOF it
// queues an eof chunk so the writer half-closes the other side; on any other
// error it closes the link. It closes q when it returns.
func (p *Proxy) read(l *link, src net.Conn, q chan<- chunk) {
	defer close(q)
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: append([]byte(nil), buf[:n]...), due: p.dueTime()}
			select {
			case q <- c:
			case <-l.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				select {
				case q <- chunk{eof: true, due: p.dueTime()}:
				case <-l.done:
				}
				return
			}
			l.close()
			return
		}
	}
}

// write takes chunks from q, waits until each is due and the link is not
// blackholed, and writes it to dst. down selects the direction that may be
// corrupted and counted as BytesDown.
func (p *Proxy) write(l *link, dst net.Conn, q <-chan chunk, down bool) {
	for c := range q {
		if !p.hold(l, c.due) {
			return
		}
		if c.eof {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			continue
		}
		if down {
			p.maybeCorrupt(c.data)
		}
		n, err := dst.Write(c.data)
		if down {
			p.bytesDown.Add(int64(n))
		} else {
			p.bytesUp.Add(int64(n))
		}
		if err != nil {
			l.close()
			return
		}
	}
}

// hold waits until due and then until the proxy is not blackholed. It
// returns false if the link closed first.
func (p *Proxy) hold(l *link, due time.Time) bool {
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-l.done:
			return false
		}
	}
	p.mu.Lock()
	release := p.mu.release
	p.mu.Unlock()
	select {
	case <-release:
		return true
	case <-l.done:
		return false
	}
}

func (p *Proxy) dueTime() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Add(p.mu.delay)
}

// maybeCorrupt flips one random bit of b if CorruptNext or SetCorruptRate
// says this chunk is to be corrupted.
func (p *Proxy) maybeCorrupt(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.corruptNext > 0:
		p.mu.corruptNext--
	case p.mu.corruptRate > 0 && p.mu.rng.Float64() < p.mu.corruptRate:
	default:
		return
	}
	b[p.mu.rng.IntN(len(b))] ^= 1 << p.mu.rng.IntN(8)
	p.corrupted.Add(1)
}
