package lookup

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
)

// behindRetries bounds how often a read as of the replica's own applied
// index is tried again after a history trim raced with it.
const behindRetries = 3

// readAs reads with read at the index a lookup "as of at" is answered from:
// at itself when the store has reached it, else the store's applied index.
// It returns that index and, on an error, the applied index to report.
//
// When the store is behind, a trim can move the horizon past its applied
// index A while the read runs (the store has moved on meanwhile); the read is
// then tried again at the new applied index rather than answered 410, since
// nothing older than A was asked for.
func (s *Server) readAs(at argent.Index, read func(argent.Index) error) (x, applied argent.Index, err error) {
	for try := 0; ; try++ {
		applied = s.st.Applied()
		x = min(at, applied)
		err = read(x)
		if errors.Is(err, argent.ErrCompacted) && x < at && try < behindRetries {
			continue
		}
		if err != nil {
			applied = s.st.Applied()
		}
		return x, applied, err
	}
}

// serveGet answers GET /internal/v1/lookup?key=K&at=S.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := Param(q, "key")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Limits.CheckKey([]byte(key)); err != nil {
		s.writeError(w, r, fmt.Errorf("lookup: %w", err))
		return
	}
	at, err := IndexParam(q, "at")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.admit(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.keys.Add(1)
	kb := []byte(key)
	var v argent.Value
	x, applied, err := s.readAs(at, func(x argent.Index) error {
		var err error
		v, err = s.st.Get(r.Context(), kb, x)
		return err
	})
	h := w.Header()
	switch {
	case err == nil:
	case errors.Is(err, argent.ErrNotFound):
		setIndex(h, x)
		s.writeError(w, r, argent.ErrNotFound)
		return
	default:
		setIndex(h, applied)
		s.writeError(w, r, fmt.Errorf("lookup %q as of %d: %w", key, at, err))
		return
	}
	setIndex(h, x)
	h.Set(apiwire.HeaderModIndex, strconv.FormatUint(uint64(v.ModIndex), 10))
	writeBody(w, http.StatusOK, "application/octet-stream", v.Value)
}

// servePost answers POST /internal/v1/lookup?at=S with {"keys":[...]}:
// every key at one index.
func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	at, err := IndexParam(q, "at")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req apiwire.MGetRequest
	if err := api.DecodeJSON(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), &req); err != nil {
		s.writeError(w, r, fmt.Errorf("lookup: %w", err))
		return
	}
	if len(req.Keys) > s.cfg.MaxKeys {
		s.writeError(w, r, fmt.Errorf("%w: lookup: %d keys, more than the limit of %d", argent.ErrTooLarge, len(req.Keys), s.cfg.MaxKeys))
		return
	}
	keys := make([][]byte, len(req.Keys))
	for i, k := range req.Keys {
		keys[i] = []byte(k)
		if err := s.cfg.Limits.CheckKey(keys[i]); err != nil {
			s.writeError(w, r, fmt.Errorf("lookup: key %d: %w", i, err))
			return
		}
	}
	if err := s.admit(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.keys.Add(uint64(len(keys)))
	out := apiwire.MGetResponse{Items: make([]apiwire.Item, len(keys))}
	x, applied, err := s.readAs(at, func(x argent.Index) error {
		return api.ReadItems(r.Context(), s.st, keys, req.Keys, x, out.Items)
	})
	if err != nil {
		setIndex(w.Header(), applied)
		s.writeError(w, r, fmt.Errorf("lookup %d keys as of %d: %w", len(keys), at, err))
		return
	}
	out.Index = x
	setIndex(w.Header(), x)
	s.writeJSON(w, r, http.StatusOK, out)
}
