package lookup

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// The paths the Server serves.
const (
	LookupPath = "/internal/v1/lookup"
	FilterPath = "/internal/v1/filter"
	ScanPath   = "/internal/v1/scan"
)

// HeaderDataset carries the asking node's dataset ID (argent.DatasetID's
// String form). It has the name the pull protocol uses for the same thing.
const HeaderDataset = "Argent-Dataset"

// Headers of a filter answer beside Argent-Index: the commit time (Unix ns)
// and the chain hash (hex) of the state the filter stands for.
const (
	HeaderTime  = "Argent-Time"
	HeaderChain = "Argent-Chain"
)

// Server answers proxies' lookups, scans and filter requests from a
// replica's store. It is an http.Handler; mount it at LookupPath, ScanPath
// and FilterPath with Register, or serve it alone. It is safe for concurrent use.
type Server struct {
	st  *kv.Store
	cfg Config
	mux *http.ServeMux

	// build admits one filter build at a time; see filter.go.
	build  chan struct{}
	builds atomic.Uint64 // filters built, for FilterBuilds
	keys   atomic.Uint64 // keys looked up, for KeysLookedUp

	mu struct {
		sync.Mutex
		filter *builtFilter // the last filter built; nil before the first
	}
}

// NewServer returns a Server over st. A nil cfg means DefaultConfig().
func NewServer(st *kv.Store, cfg *Config) (*Server, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.setDefaults()
	s := &Server{st: st, cfg: c, mux: http.NewServeMux(), build: make(chan struct{}, 1)}
	s.Register(s.mux)
	return s, nil
}

// KeysLookedUp returns how many keys the Server was asked to look up (one
// per key of a many-key lookup), counting the lookups that were admitted.
func (s *Server) KeysLookedUp() uint64 { return s.keys.Load() }

// Register adds the Server's paths to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle(LookupPath, wirecheck.Handler(http.HandlerFunc(s.serveLookup)))
	mux.Handle(FilterPath, wirecheck.Handler(s.getOnly(s.serveFilterGet)))
	mux.Handle(ScanPath, wirecheck.Handler(s.getOnly(s.serveScan)))
}

// ServeHTTP serves LookupPath, ScanPath and FilterPath; other paths get
// 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serveLookup(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r)
	case http.MethodPost:
		s.servePost(w, r)
	default:
		s.methodNotAllowed(w, r, "GET, POST")
	}
}

// getOnly serves GET and HEAD requests with serve and refuses the other
// methods.
func (s *Server) getOnly(serve http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			serve(w, r)
		default:
			s.methodNotAllowed(w, r, "GET")
		}
	}
}

// admit refuses a request the store cannot answer for: one from another
// dataset (409), or any while the store has no data yet or loads a snapshot
// (503), since its index 0 or half-loaded state is no answer for a proxy.
func (s *Server) admit(r *http.Request) error {
	ours := s.st.Dataset()
	if ours.IsZero() || s.st.Restoring() {
		return fmt.Errorf("%w: lookup: replica has no data yet", argent.ErrUnavailable)
	}
	if v := r.Header.Get(HeaderDataset); v != "" {
		theirs, err := argent.ParseDatasetID(v)
		if err != nil {
			return fmt.Errorf("lookup: %s header: %w", HeaderDataset, err)
		}
		if theirs != ours {
			return fmt.Errorf("%w: lookup: asked for dataset %s, this replica holds %s", argent.ErrDatasetMismatch, theirs, ours)
		}
	}
	return nil
}

// setIndex sets Argent-Index.
func setIndex(h http.Header, i argent.Index) {
	h.Set(apiwire.HeaderIndex, strconv.FormatUint(uint64(i), 10))
}

// writeBody sends body with its type and length.
func writeBody(w http.ResponseWriter, status int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSON sends v as JSON.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("lookup: encode answer: %w", err))
		return
	}
	writeBody(w, status, "application/json", append(b, '\n'))
}

// writeError sends err as the API's JSON error body, with the status of its
// code (apiwire.NewErrorBody), and logs server-side failures.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := apiwire.NewErrorBody(err)
	if status == http.StatusInternalServerError {
		s.cfg.Logger.Error("lookup: request failed", "method", r.Method, "url", r.URL.String(), "err", err)
	}
	b, merr := json.Marshal(body)
	if merr != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"lookup: cannot encode error"}}`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeBody(w, status, "application/json", append(b, '\n'))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	b, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{
		Code:    apiwire.CodeInvalid,
		Message: fmt.Sprintf("argent: method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow),
	}})
	writeBody(w, http.StatusMethodNotAllowed, "application/json", append(b, '\n'))
}
