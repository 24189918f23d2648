package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
)

// invalidf returns an argent.ErrInvalid error.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: relay: "+format, append([]any{argent.ErrInvalid}, args...)...)
}

// parseQuery parses the raw query, refusing malformed escapes that
// url.Values would silently drop (as a replica does).
func parseQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, invalidf("query: %v", err)
	}
	return q, nil
}

// one returns the single value of parameter name; absent or repeated is
// invalid.
func one(q url.Values, name string) (string, error) {
	vs, ok := q[name]
	switch {
	case !ok:
		return "", invalidf("missing %s", name)
	case len(vs) != 1:
		return "", invalidf("%s given %d times", name, len(vs))
	}
	return vs[0], nil
}

// indexParam parses a required index parameter.
func indexParam(q url.Values, name string) (argent.Index, error) {
	v, err := one(q, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s=%q is not an index", name, v)
	}
	return argent.Index(n), nil
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
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, fmt.Errorf("relay: encode answer: %w", err))
		return
	}
	writeBody(w, status, "application/json", append(b, '\n'))
}

// writeError sends err as the API's JSON error body with the status of its
// code; an error forwarded from a replica keeps its code.
func writeError(w http.ResponseWriter, err error) {
	status, body := apiwire.NewErrorBody(err)
	b, merr := json.Marshal(body)
	if merr != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"relay: cannot encode error"}}`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeBody(w, status, "application/json", append(b, '\n'))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	b, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{
		Code:    apiwire.CodeInvalid,
		Message: fmt.Sprintf("argent: method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow),
	}})
	writeBody(w, http.StatusMethodNotAllowed, "application/json", append(b, '\n'))
}

func asLookupError(err error, le **lookup.Error) bool { return errors.As(err, le) }
