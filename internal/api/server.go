// Package api serves argent's client HTTP API (docs/CONTRACT.md section 4) for
// any node, over a Backend: reads come from the node's local kv.Store at its
// published applied index, writes go to Backend.Write.
//
//	srv := api.New(node, api.Options{Registry: reg, Logger: logger})
//	defer srv.Close() // ends open watch streams
//	_ = http.ListenAndServe(addr, srv)
//
// Routes:
//
//	GET    /v1/kv/{key}   value bytes; ?min_index=N&wait=DUR
//	PUT    /v1/kv/{key}   body = value -> {"index":N}
//	DELETE /v1/kv/{key}   -> {"index":N}
//	GET    /v1/kv         scan: ?prefix=P&after=K&limit=L&at=N (+ min_index, wait)
//	POST   /v1/mget       {"keys":[...]} (+ min_index, wait)
//	POST   /v1/txn        one atomic batch with conditions
//	GET    /v1/watch      ?prefix=P&from=N, newline-delimited JSON
//	GET    /v1/status     Backend.Status as JSON
//	GET    /metrics       Prometheus text of Options.Registry
//
// The Server routes requests itself rather than through an http.ServeMux:
// ServeMux cleans paths and answers a key such as "a//b" or "a/../b" with a
// 301 redirect to another key, and it answers 404 and 405 in plain text. Mount
// the Server at the root of a listener (not under a ServeMux) and pass the
// handler of the node's other endpoints as Options.Fallback.
//
// A Backend that cannot take writes either forwards them in Write or returns
// a *RedirectError, which the Server answers with a 307 to the node named.
//
// Keys in URLs are the unescaped path after /v1/kv/ (so "/" may be sent as
// itself or as %2F), and the unescaped query values prefix and after. Keys in
// JSON bodies are strings. Every error is JSON,
// {"error":{"code":"...","message":"..."}}, with the status of its code (see
// apiwire.HTTPStatus).
package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/limit"
)

// Options configures a Server. The zero value of each field means its
// default.
type Options struct {
	// Registry receives the Server's metrics, and GET /metrics serves it.
	// Default nil: no metrics, and /metrics answers 404 (unless Fallback
	// serves it).
	Registry *prometheus.Registry
	// Logger receives errors the client does not cause (500s, watch streams
	// cut by an error). Default: discard.
	Logger *slog.Logger
	// Now returns the current time, for request durations. Default time.Now.
	Now func() time.Time
	// DefaultWait is how long a read with min_index waits when it names no
	// wait. Default 5 s.
	DefaultWait time.Duration
	// MaxWait caps the wait of a read; a longer wait asked for is cut to it.
	// Default 60 s.
	MaxWait time.Duration
	// ProgressInterval is how often a watch stream sends a progress marker.
	// Default 1 s.
	ProgressInterval time.Duration
	// DefaultScanLimit is the page size of a scan that names no limit.
	// Default 100.
	DefaultScanLimit int
	// MaxScanLimit caps the page size of a scan; a larger limit asked for is
	// cut to it. Default 10000.
	MaxScanLimit int
	// MaxMGetKeys bounds the keys of one mget; more get 413 too_large.
	// Default 10000.
	MaxMGetKeys int
	// Fallback serves the requests for paths outside the API (the node's
	// node-to-node endpoints, say). A Fallback that routes as an
	// *http.ServeMux does (a Handler(*http.Request) method) is asked first:
	// a request it has no route for gets the API's JSON 404, or 405 for a
	// wrong method, instead of its plain text. Default: a JSON 404.
	Fallback http.Handler
	// Auth, if set, checks the bearer token of every request but those of
	// the open paths (/internal/, /v1/status, /metrics): no token or an
	// unknown one gets 401 unauthorized, a token without the right on a key
	// 403 forbidden. Default nil: nothing is checked.
	Auth *auth.Authorizer
	// MaxInFlight bounds the /v1/ requests served at once, watch streams
	// and /v1/status aside; one more gets 503 overloaded. Default 0: no
	// bound.
	MaxInFlight int
	// MaxWatchers bounds the watch streams open at once; one more gets 503
	// overloaded. Default 0: no bound.
	MaxWatchers int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DefaultWait <= 0 {
		o.DefaultWait = 5 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.DefaultScanLimit <= 0 {
		o.DefaultScanLimit = 100
	}
	if o.MaxScanLimit <= 0 {
		o.MaxScanLimit = 10000
	}
	if o.MaxMGetKeys <= 0 {
		o.MaxMGetKeys = 10000
	}
	return o
}

// Server serves the client HTTP API of one node. It is an http.Handler and is
// safe for concurrent use.
type Server struct {
	b       Backend
	ready   Readiness // b, if it can be not ready; nil otherwise
	opts    Options
	metrics *metrics     // nil without a Registry
	promh   http.Handler // GET /metrics; nil without a Registry

	tier atomic.Pointer[tierHeader] // cached Argent-Tier header value

	refusals *limit.Refusals // argent_limit_refused_total
	inFlight atomic.Int64    // /v1/ requests being served, watches aside
	watchers atomic.Int64    // watch streams open

	closeOnce sync.Once
	done      chan struct{} // closed by Close: ends watch streams
}

// tierHeader caches the header value of the last Backend.Tier seen, so the
// hot path does not allocate it per request.
type tierHeader struct {
	tier string
	val  []string
}

// New returns a Server for b. Metrics are registered on opts.Registry; a
// second Server on the same registry shares the first one's collectors.
func New(b Backend, opts Options) *Server {
	s := &Server{b: b, opts: opts.withDefaults(), done: make(chan struct{})}
	s.ready, _ = b.(Readiness)
	s.refusals = limit.NewRefusals(opts.Registry)
	if opts.Registry != nil {
		s.metrics = newMetrics(opts.Registry)
		s.promh = promhttpHandler(opts.Registry)
	}
	return s
}

// Close ends every open watch stream (the streams end cleanly, as if the
// client had gone), so that http.Server.Shutdown does not wait for them.
// Other requests are not affected. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// The routes, for metrics labels.
type route uint8

const (
	routeGet route = iota
	routePut
	routeDelete
	routeScan
	routeMGet
	routeTxn
	routeWatch
	routeStatus
	routeScrape
	routeOther // unknown paths and wrong methods
	numRoutes
)

var routeNames = [numRoutes]string{
	routeGet:    "get",
	routePut:    "put",
	routeDelete: "delete",
	routeScan:   "scan",
	routeMGet:   "mget",
	routeTxn:    "txn",
	routeWatch:  "watch",
	routeStatus: "status",
	routeScrape: "metrics",
	routeOther:  "other",
}

// kvPrefix is the path prefix of single-key requests.
const kvPrefix = "/v1/kv/"

// ServeHTTP routes r to its handler and records its metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var start time.Time
	if s.metrics != nil {
		start = s.opts.Now()
	}
	rt, code := s.route(w, r)
	if s.metrics != nil && code != 0 {
		s.metrics.observe(rt, code, s.opts.Now().Sub(start))
	}
}

// route serves r and returns its route and the status sent; status 0 means
// the Fallback served it.
func (s *Server) route(w http.ResponseWriter, r *http.Request) (route, int) {
	p := r.URL.Path
	// Watches have their own bound; children probe /v1/status to choose
	// an upstream, and a full node must still answer them.
	if max := s.opts.MaxInFlight; max > 0 && strings.HasPrefix(p, "/v1/") && p != "/v1/watch" && p != "/v1/status" {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if n > int64(max) {
			s.refusals.Inc(limit.InFlight)
			return routeOther, s.writeCode(w, r, apiwire.CodeOverloaded, http.StatusServiceUnavailable,
				fmt.Sprintf("argent: overloaded: the node serves %d requests at once; retry later", max))
		}
	}
	r, code := s.authenticate(w, r)
	if code != 0 {
		return routeOther, code
	}
	m := r.Method
	isGet := m == http.MethodGet || m == http.MethodHead
	switch {
	case strings.HasPrefix(p, kvPrefix):
		key := p[len(kvPrefix):]
		switch {
		case isGet:
			return routeGet, s.serveGet(w, r, key)
		case m == http.MethodPut:
			return routePut, s.servePut(w, r, key)
		case m == http.MethodDelete:
			return routeDelete, s.serveDelete(w, r, key)
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD, PUT, DELETE")
	case p == "/v1/kv":
		if isGet {
			return routeScan, s.serveScan(w, r)
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD")
	case p == "/v1/mget":
		if m == http.MethodPost {
			return routeMGet, s.serveMGet(w, r)
		}
		return routeOther, s.methodNotAllowed(w, r, "POST")
	case p == "/v1/txn":
		if m == http.MethodPost {
			return routeTxn, s.serveTxn(w, r)
		}
		return routeOther, s.methodNotAllowed(w, r, "POST")
	case p == "/v1/watch":
		if isGet {
			return routeWatch, s.serveWatch(w, r)
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD")
	case strings.HasPrefix(p, tracePrefix):
		if isGet {
			return routeOther, s.serveTrace(w, r, p[len(tracePrefix):])
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD")
	case p == "/v1/status":
		if isGet {
			return routeStatus, s.serveStatus(w, r)
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD")
	case p == membersPrefix || strings.HasPrefix(p, membersPrefix+"/"):
		return routeOther, s.serveMembers(w, r)
	case p == "/metrics" && s.promh != nil:
		if isGet {
			s.promh.ServeHTTP(w, r)
			return routeScrape, http.StatusOK
		}
		return routeOther, s.methodNotAllowed(w, r, "GET, HEAD")
	}
	if fb := s.opts.Fallback; fb != nil {
		if rt, ok := fb.(router); ok {
			if h, pattern := rt.Handler(r); pattern == "" {
				return routeOther, s.serveUnrouted(w, r, h)
			}
		}
		fb.ServeHTTP(w, r)
		return routeOther, 0
	}
	return routeOther, s.notFound(w, r)
}

// notFound answers a path the node does not serve.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) int {
	return s.writeCode(w, r, apiwire.CodeNotFound, http.StatusNotFound, "argent: no such endpoint: "+r.URL.Path)
}

// router is a Fallback that tells which of its routes a request takes, as
// an *http.ServeMux does: pattern "" means none.
type router interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// serveUnrouted answers a request the Fallback router has no route for. The
// router's own answer (h) would be plain text: "404 page not found", or 405
// when only the method is wrong. h runs into a buffer to learn which, and
// the client gets the API's JSON error instead. A redirect h answers (to the
// cleaned path, say) is passed on as it is.
func (s *Server) serveUnrouted(w http.ResponseWriter, r *http.Request, h http.Handler) int {
	rec := &recorder{header: make(http.Header)}
	h.ServeHTTP(rec, r)
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		return s.methodNotAllowed(w, r, rec.header.Get("Allow"))
	case rec.status >= 300 && rec.status < 400:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
		return rec.status
	}
	return s.notFound(w, r)
}

// recorder is a ResponseWriter that keeps the answer of a Fallback router
// for a request it has no route for.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.body = append(rec.body, b...)
	return len(b), nil
}

// tierValue returns the Argent-Tier header value.
func (s *Server) tierValue() []string {
	t := s.b.Tier()
	if c := s.tier.Load(); c != nil && c.tier == t {
		return c.val
	}
	c := &tierHeader{tier: t, val: []string{t}}
	s.tier.Store(c)
	return c.val
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) int {
	st := s.b.Status()
	if st.Children == nil {
		st.Children = []apiwire.StatusChild{}
	}
	return s.writeJSON(w, r, http.StatusOK, st)
}

// LaneEligible reports whether a request may be served on a fastlane (see
// internal/fastlane), which buffers each answer whole: every route of the
// API but the watch stream and /metrics.
func LaneEligible(method, path string) bool {
	switch {
	case strings.HasPrefix(path, kvPrefix):
		return true
	case path == "/v1/kv", path == "/v1/mget", path == "/v1/txn", path == "/v1/status":
		return true
	}
	return false
}
