package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
)

const tracePrefix = "/v1/trace/"

// serveTrace answers GET /v1/trace/{key}[?min_index=N&wait=D]: the path of
// one read of key at the index a GET would read it at, as JSON (see
// apiwire.TraceResponse). A key absent or unresolved is still a 200: the
// trace says what each tier answered.
func (s *Server) serveTrace(w http.ResponseWriter, r *http.Request, key string) int {
	kb := []byte(key)
	if err := s.b.Limits().CheckKey(kb); err != nil {
		return s.writeError(w, r, err)
	}
	if tok := s.token(r); !tok.Allowed(kb, auth.Read) {
		return s.forbid(w, r, tok, auth.Read, kb)
	}
	q, err := s.parseReadQuery(r.URL.RawQuery)
	if err != nil {
		return s.writeError(w, r, err)
	}
	at, err := s.readIndex(r, q)
	if err != nil {
		setIndex(w.Header(), at)
		return s.writeError(w, r, err)
	}
	rd := s.b.Reader()
	if t, ok := rd.(Tracer); ok {
		tr, err := t.Trace(r.Context(), kb, at)
		if err != nil {
			return s.writeError(w, r, err)
		}
		return s.writeJSON(w, r, http.StatusOK, tr)
	}
	// A node that reads its own store: one step.
	tier := s.b.Tier()
	tr := apiwire.TraceResponse{Key: key, Index: at, Tier: tier}
	start := time.Now()
	v, err := rd.Get(r.Context(), kb, at)
	st := apiwire.TraceStep{Tier: tier, Answer: "hit", Index: at}
	switch {
	case errors.Is(err, argent.ErrNotFound):
		st.Answer, tr.Absent = "absent", true
	case err != nil:
		return s.writeError(w, r, err)
	default:
		tr.Value, tr.ModIndex = v.Value, v.ModIndex
	}
	st.Micros = float64(time.Since(start).Nanoseconds()) / 1e3
	tr.Steps = []apiwire.TraceStep{st}
	return s.writeJSON(w, r, http.StatusOK, tr)
}
