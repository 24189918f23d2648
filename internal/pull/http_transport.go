package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// HTTP paths and headers of the protocol.
const (
	LogPath      = "/internal/v1/log"
	SnapshotPath = "/internal/v1/snapshot"

	HeaderDataset  = "Argent-Dataset"  // the child's dataset ID, empty if it has none yet
	HeaderNode     = "Argent-Node"     // the child's node ID
	HeaderAddr     = "Argent-Addr"     // the child's own listen address, for status
	HeaderRole     = "Argent-Role"     // the child's role (replica, proxy), for status and discovery
	HeaderDC       = "Argent-DC"       // the child's data center (--dc), for discovery
	HeaderProtocol = "Argent-Protocol" // protocol version, ProtocolVersion
	ContentType    = "application/x-argent-frames"
)

// statusPath is the node's status, which a Follower probes to choose an
// upstream (served by the node, not by the Server).
const statusPath = "/v1/status"

// HTTPTransport is the Transport between nodes: the protocol's requests
// over HTTP, answered by a Server's handlers (Register).
type HTTPTransport struct {
	// Client makes the requests. It must have no overall timeout: a log
	// stream lasts as long as the child follows.
	Client *http.Client
}

var _ Transport = (*HTTPTransport)(nil)

// NewHTTPTransport returns an HTTPTransport over c, or over a client with
// no overall timeout and no compression when c is nil.
func NewHTTPTransport(c *http.Client) *HTTPTransport {
	if c == nil {
		c = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	}
	return &HTTPTransport{Client: c}
}

// OpenLog implements Transport: GET /internal/v1/log?from=N.
func (t *HTTPTransport) OpenLog(ctx context.Context, up string, from argent.Index, c Child) (io.ReadCloser, error) {
	return t.open(ctx, up, LogPath, logParams(from, c))
}

// OpenSnapshot implements Transport: GET /internal/v1/snapshot[?after=HEX].
func (t *HTTPTransport) OpenSnapshot(ctx context.Context, up string, after []byte, c Child) (io.ReadCloser, error) {
	return t.open(ctx, up, SnapshotPath, snapshotParams(after, c))
}

// open sends p to up's path and returns the answer's body, or the parent's
// refusal.
func (t *HTTPTransport) open(ctx context.Context, up, path string, p params) (io.ReadCloser, error) {
	url := "http://" + up + path
	switch {
	case p.from != "":
		url += "?from=" + p.from
	case p.after != "":
		url += "?after=" + p.after
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	req.Header.Set(HeaderProtocol, p.protocol)
	req.Header.Set(HeaderNode, p.node)
	req.Header.Set(HeaderAddr, p.addr)
	if p.role != "" {
		req.Header.Set(HeaderRole, p.role)
	}
	if p.dc != "" {
		req.Header.Set(HeaderDC, p.dc)
	}
	if p.dataset != "" {
		req.Header.Set(HeaderDataset, p.dataset)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pull: connect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, refusal(resp.StatusCode, string(msg))
	}
	return resp.Body, nil
}

// Probe implements Transport: GET /v1/status.
func (t *HTTPTransport) Probe(ctx context.Context, up string) (ParentStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+up+statusPath, nil)
	if err != nil {
		return ParentStatus{}, err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return ParentStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ParentStatus{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	var st apiwire.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return ParentStatus{}, fmt.Errorf("decode status: %w", err)
	}
	return ParentStatus{NodeID: st.NodeID, Dataset: st.DatasetID, Applied: st.AppliedIndex}, nil
}

// Register adds the protocol's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LogPath, func(w http.ResponseWriter, r *http.Request) {
		s.serveLog(r.Context(), httpParams(r), httpResponder{w})
	})
	mux.HandleFunc("GET "+SnapshotPath, func(w http.ResponseWriter, r *http.Request) {
		s.serveSnapshot(r.Context(), httpParams(r), httpResponder{w})
	})
}

// httpParams reads a child's request from r.
func httpParams(r *http.Request) params {
	q := r.URL.Query()
	return params{
		protocol: r.Header.Get(HeaderProtocol),
		node:     r.Header.Get(HeaderNode),
		addr:     r.Header.Get(HeaderAddr),
		role:     r.Header.Get(HeaderRole),
		dc:       r.Header.Get(HeaderDC),
		dataset:  r.Header.Get(HeaderDataset),
		from:     q.Get("from"),
		after:    q.Get("after"),
		remote:   r.RemoteAddr,
	}
}

// httpResponder answers a request over HTTP: a refusal is a status with a
// plain-text line, which children log; frames are a streamed 200.
type httpResponder struct{ w http.ResponseWriter }

func (h httpResponder) refuse(status int, msg string) {
	h.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	h.w.WriteHeader(status)
	fmt.Fprintf(h.w, "%s\n", msg)
}

func (h httpResponder) frames() frameSink {
	h.w.Header().Set("Content-Type", ContentType)
	h.w.WriteHeader(http.StatusOK)
	return httpSink{ResponseWriter: h.w, rc: http.NewResponseController(h.w)}
}

// httpSink writes frames to a response, flushing each burst to the child.
type httpSink struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (s httpSink) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }
func (s httpSink) Flush() error                       { return s.rc.Flush() }
