package client

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/argent-kv/argent/internal/apiwire"
)

// Error is a non-2xx answer of an argent node: its HTTP status (Status, for
// example 404), error code (Code, for example CodeNotFound) and the server's
// message (Message). It unwraps to the argent sentinel error of its code
// (see Sentinel), so callers test it with errors.Is(err, argent.ErrNotFound)
// and the like; for CodeConditionFailed it unwraps to a
// *argent.ConditionError naming the failed condition, which in turn unwraps
// to argent.ErrConditionFailed.
type Error = apiwire.Error

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// readError reads the error body of a non-2xx answer. An answer without a
// JSON error body (from a load balancer, say) gets a code guessed from its
// status and its text as message.
func readError(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body ErrorBody
	if err := json.Unmarshal(b, &body); err == nil && body.Error.Code != "" {
		return apiwire.NewError(resp.StatusCode, body.Error)
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return apiwire.NewError(resp.StatusCode, ErrorDetail{Message: msg})
}

// NewErrorBody returns the HTTP status and the body a server sends for err:
// the code is CodeOf(err), the message err.Error(), and a
// *argent.ConditionError in err fills Key, Want and Got. An *Error in err (one
// forwarded from another node) keeps its status.
func NewErrorBody(err error) (int, ErrorBody) { return apiwire.NewErrorBody(err) }
