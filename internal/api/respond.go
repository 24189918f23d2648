package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// Header values shared by every response; net/http only reads them.
var (
	jsonType   = []string{"application/json"}
	octetType  = []string{"application/octet-stream"}
	ndjsonType = []string{"application/x-ndjson"}
	noSniff    = []string{"nosniff"}
)

// notFoundBody is the body of a 404 for an absent key: the common error of
// the hot path, encoded once.
var notFoundBody = mustMarshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{
	Code: apiwire.CodeNotFound, Message: argent.ErrNotFound.Error(),
}})

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("api: marshal %T: %v", v, err))
	}
	return append(b, '\n')
}

// writeBody sends a body of the given type with its length.
func writeBody(w http.ResponseWriter, status int, ctype []string, body []byte) int {
	h := w.Header()
	h["Content-Type"] = ctype
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// writeJSON sends v as JSON with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return s.writeError(w, r, fmt.Errorf("api: encode answer: %w", err))
	}
	return writeBody(w, status, jsonType, append(b, '\n'))
}

// writeIndex sends {"index":N}, the answer to a write.
func writeIndex(w http.ResponseWriter, i argent.Index) int {
	b := make([]byte, 0, 32)
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, uint64(i), 10)
	b = append(b, "}\n"...)
	return writeBody(w, http.StatusOK, jsonType, b)
}

// writeError sends err as a JSON error with the status of its code (see
// apiwire.NewErrorBody) and returns the status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	if err == argent.ErrNotFound {
		return writeBody(w, http.StatusNotFound, jsonType, notFoundBody)
	}
	status, body := apiwire.NewErrorBody(err)
	// Timeouts and the codes of argent.ErrUnavailable (not ready, root
	// unreachable) say "try again": the node's state, not a fault worth a
	// log line per request.
	code := body.Error.Code
	if status >= 500 && code != apiwire.CodeTimeout && apiwire.Sentinel(code) != argent.ErrUnavailable {
		s.opts.Logger.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	b, merr := json.Marshal(body)
	if merr != nil {
		b = []byte(`{"error":{"code":"internal","message":"api: cannot encode error"}}`)
		status = http.StatusInternalServerError
	}
	w.Header()["X-Content-Type-Options"] = noSniff
	return writeBody(w, status, jsonType, append(b, '\n'))
}

// writeCode sends an error with an explicit code and status.
func (s *Server) writeCode(w http.ResponseWriter, r *http.Request, code string, status int, msg string) int {
	b, err := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: code, Message: msg}})
	if err != nil {
		return s.writeError(w, r, fmt.Errorf("api: encode error: %w", err))
	}
	w.Header()["X-Content-Type-Options"] = noSniff
	return writeBody(w, status, jsonType, append(b, '\n'))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) int {
	w.Header().Set("Allow", allow)
	return s.writeCode(w, r, apiwire.CodeInvalid, http.StatusMethodNotAllowed,
		fmt.Sprintf("argent: method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
}

// invalidf returns an argent.ErrInvalid error.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{argent.ErrInvalid}, args...)...)
}

// queryParam returns the unescaped value of the first parameter called name
// in the raw query. It does not allocate unless the value is escaped.
func queryParam(raw, name string) (string, bool, error) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = uk
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return "", true, invalidf("query parameter %s: %v", name, err)
			}
			v = uv
		}
		return v, true, nil
	}
	return "", false, nil
}

// queryIndex parses an index parameter; absent or empty is 0.
func queryIndex(raw, name string) (argent.Index, error) {
	v, ok, err := queryParam(raw, name)
	if err != nil || !ok || v == "" {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s=%q is not an index", name, v)
	}
	return argent.Index(n), nil
}

// readQuery is the freshness a read asks for.
type readQuery struct {
	minIndex     argent.Index
	wait         time.Duration
	linearizable bool // see Linearizer
}

// parseReadQuery parses min_index, wait and linearizable.
func (s *Server) parseReadQuery(raw string) (readQuery, error) {
	q := readQuery{wait: s.opts.DefaultWait}
	if raw == "" {
		return q, nil
	}
	var err error
	if q.minIndex, err = queryIndex(raw, "min_index"); err != nil {
		return q, err
	}
	v, ok, err := queryParam(raw, "wait")
	if err != nil {
		return q, err
	}
	if ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return q, invalidf("wait=%q is not a duration such as 250ms or 2s", v)
		}
		if d < 0 {
			return q, invalidf("wait=%q is negative", v)
		}
		q.wait = min(d, s.opts.MaxWait)
	}
	v, ok, err = queryParam(raw, "linearizable")
	if err != nil {
		return q, err
	}
	if ok {
		if q.linearizable, err = strconv.ParseBool(v); err != nil {
			return q, invalidf("linearizable=%q is not true or false", v)
		}
	}
	return q, nil
}

// readIndex waits, if q asks, for the store to reach q.minIndex and returns
// the index to read at: the published applied index after the wait, which
// is never below q.minIndex. On a timeout it returns the index reached with
// an argent.ErrTimeout error.
//
// A node that has not reached its first state (see Readiness) answers
// ErrNotReady at index 0 instead. The check follows the wait, so a read
// with min_index waits for a fresh node to get there, as it waits for any
// node to reach the index.
func (s *Server) readIndex(r *http.Request, q readQuery) (argent.Index, error) {
	st := s.b.Reader()
	if q.linearizable {
		lin, ok := s.b.(Linearizer)
		if !ok {
			return 0, invalidf("linearizable reads are served by the root; ask it, or read here with min_index")
		}
		ctx, cancel := context.WithTimeout(r.Context(), q.wait)
		at, err := lin.ReadBarrier(ctx)
		cancel()
		if err != nil {
			return 0, err
		}
		q.minIndex = max(q.minIndex, at)
	}
	if q.minIndex > 0 {
		if at, err := st.WaitApplied(r.Context(), q.wait, q.minIndex); err != nil {
			return at, err
		}
	}
	if s.ready != nil {
		if err := s.ready.Ready(); err != nil {
			return 0, err
		}
	}
	return st.Applied(), nil
}

// isMaxBytes reports whether err comes from an http.MaxBytesReader limit.
func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
