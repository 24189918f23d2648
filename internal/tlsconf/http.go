package tlsconf

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/argent-kv/argent/internal/apiwire"
)

// CodeClientCertRequired is the error code of a node-to-node request made
// without a client certificate.
const CodeClientCertRequired = "client_cert_required"

// NodePath reports whether path is one nodes call each other on (the log
// and snapshot streams, lookups, filters, scans, L2, the DC miss stream,
// Raft): all of them live under /internal/.
func NodePath(path string) bool { return strings.HasPrefix(path, "/internal/") }

type stateKey struct{}

// ConnContext is an http.Server's ConnContext: it keeps the TLS state of
// a connection net/http does not see as a *tls.Conn (one wrapped by
// another listener, such as a fast lane's hand-off), for State.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for c != nil {
		if tc, ok := c.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, stateKey{}, &st)
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return ctx
}

// State returns the TLS state of r's connection, or nil over plain TCP.
func State(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	st, _ := r.Context().Value(stateKey{}).(*tls.ConnectionState)
	return st
}

// RequireClientCert answers 403 client_cert_required to a request for a
// NodePath whose connection carries no client certificate, and passes
// everything else to next. A certificate that is there was verified
// against the CA during the handshake (Server).
func (c *Config) RequireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if NodePath(r.URL.Path) {
			if st := State(r); st == nil || len(st.PeerCertificates) == 0 {
				c.metrics.certMissing()
				b, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: CodeClientCertRequired,
					Message: "argent: " + r.URL.Path + " is node-to-node: it needs a client certificate signed by the cluster's CA"}})
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write(append(b, '\n'))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// HTTPClient returns a client over t (whose TLSClientConfig it sets to
// Client) that sends every http:// request as https://. The packages that
// talk to other nodes build http://host:port URLs; a node with TLS gives
// them this client, so that the scheme is decided here only.
func (c *Config) HTTPClient(t *http.Transport) *http.Client {
	t.TLSClientConfig = c.Client()
	t.ForceAttemptHTTP2 = false // servers speak HTTP/1.1 (see Server)
	return &http.Client{Transport: upgrade{t}}
}

// upgrade sends http:// requests as https:// through rt.
type upgrade struct{ rt http.RoundTripper }

func (u upgrade) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		r2 := *r // the RoundTripper contract: do not change r
		url := *r.URL
		url.Scheme = "https"
		r2.URL = &url
		r = &r2
	}
	return u.rt.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (u upgrade) CloseIdleConnections() {
	if ci, ok := u.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
