package node

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/hop"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/statustree"
)

// tlsWatchInterval is how often a TLS node looks for new certificate files.
const tlsWatchInterval = 10 * time.Second

// listen opens the node's listener at addr: plain TCP, or TLS when the node
// has a certificate (each accepted connection is handshaken before the
// fast lane or net/http sees it). bound, if set, wraps the TCP listener
// (under TLS, so that the handshaken connections stay *tls.Conn).
func (n *Node) listen(addr string, bound func(net.Listener) net.Listener) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if bound != nil {
		ln = bound(ln)
	}
	if n.tls == nil {
		return ln, nil
	}
	return n.tls.NewListener(ln), nil
}

// handler puts the node-to-node policy of TLS in front of h: with TLS, a
// request under /internal/ needs a client certificate signed by the CA.
func (n *Node) handler(h http.Handler) http.Handler {
	if n.tls == nil {
		return h
	}
	return n.tls.RequireClientCert(h)
}

// peerClient returns the client of requests to other nodes, over t: with
// TLS, one that speaks https with the node's certificate (mutual TLS); nil
// without, so that each package keeps its own default client.
func (n *Node) peerClient(t *http.Transport) *http.Client {
	if n.tls == nil {
		return nil
	}
	n.peersMu.Lock()
	n.peerTransports = append(n.peerTransports, t)
	n.peersMu.Unlock()
	return n.tls.HTTPClient(t)
}

// closePeerClients closes the idle connections of the clients peerClient
// made, at Close.
func (n *Node) closePeerClients() {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	for _, t := range n.peerTransports {
		t.CloseIdleConnections()
	}
}

// hopClient is the client of the reads a node sends another on a client's
// behalf (a proxy's L2 asks and lookups, a relay's lookups), whose latency
// is the client's: hop's Transport, which makes each round trip on the
// caller's goroutine, with the node's certificate under TLS.
func (n *Node) hopClient() *http.Client {
	t := &hop.Transport{}
	if n.tls != nil {
		t.TLS = n.tls.Client()
	}
	n.peersMu.Lock()
	n.peerTransports = append(n.peerTransports, t)
	n.peersMu.Unlock()
	return &http.Client{Transport: t}
}

// apiClient is the client of requests in the client API's style (write
// forwarding, a relay's lookups): nil (the callers' default) without TLS.
func (n *Node) apiClient() *http.Client {
	if n.tls == nil {
		return nil
	}
	return n.peerClient(client.NewHTTPClient().Transport.(*http.Transport))
}

// pullClient is the client of a follower's log and snapshot streams.
func (n *Node) pullClient() *http.Client {
	return n.peerClient(&http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4})
}

// raftClient is the client of a group member's Raft streams, as
// raftnet's default (2 s to connect and be answered, TCP keepalives) with
// TLS; nil without TLS.
func (n *Node) raftClient() *http.Client {
	if n.tls == nil {
		return nil
	}
	const dial = 2 * time.Second
	d := &net.Dialer{Timeout: dial, KeepAlive: 15 * time.Second}
	return n.peerClient(&http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: dial,
		ExpectContinueTimeout: dial, DisableCompression: true, IdleConnTimeout: time.Minute})
}

// pullTransport is pull.Transport of a follower whose config takes one
// rather than a client: nil (the default) without TLS.
func (n *Node) pullTransport() pull.Transport {
	if n.tls == nil {
		return nil
	}
	return pull.NewHTTPTransport(n.pullClient())
}

// startTLSWatch reloads the certificate when its files change, until ctx
// ends (see also ReloadTLS).
func (n *Node) startTLSWatch(ctx context.Context) {
	if n.tls != nil {
		n.goRun(func() { n.tls.Watch(ctx, tlsWatchInterval) })
	}
}

// ReloadTLS reads the certificate, key and CA files again (on SIGHUP); new
// connections use them. On error the node keeps the ones it has. Without
// TLS it does nothing.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	return n.tls.Reload()
}

// TLS reports whether the node serves TLS.
func (n *Node) TLS() bool { return n.tls != nil }

// warnPlain says loudly, once at start, that a node reachable from other
// hosts runs without TLS.
func (n *Node) warnPlain() {
	if exposedPlain(n.ln.Addr(), n.tls != nil) {
		n.log.Warn("listening on a non-loopback address without TLS: the client API, the RESP port and node-to-node streams are unencrypted and unauthenticated; set --tls-cert, --tls-key and --tls-ca")
	}
}

// exposedPlain reports whether a node at addr is reachable from other
// hosts (any address but loopback, the unspecified one included) without
// TLS.
func exposedPlain(addr net.Addr, tls bool) bool {
	if tls {
		return false
	}
	a, ok := addr.(*net.TCPAddr)
	return !ok || !a.IP.IsLoopback()
}

// statusWalker is the walker of the status page: it asks the nodes of the
// tree over the node's client of other nodes (mutual TLS when on).
func (n *Node) statusWalker() *statustree.Walker {
	hc := n.apiClient()
	if hc == nil {
		return &statustree.Walker{Metrics: true, HTTP: &http.Client{}}
	}
	return &statustree.Walker{Metrics: true, HTTP: hc, NewClient: func(addr string) (*client.Client, error) {
		return client.New(addr, client.WithHTTPClient(hc))
	}}
}
