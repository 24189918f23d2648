package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
)

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
