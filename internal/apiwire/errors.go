package apiwire

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/argent-kv/argent"
)

// Error is a non-2xx answer of an argent node. It unwraps to the argent
// sentinel error of its code (see Sentinel), so callers test it with
// errors.Is(err, argent.ErrNotFound) and the like; for CodeConditionFailed it
// unwraps to a *argent.ConditionError naming the failed condition, which in
// turn unwraps to argent.ErrConditionFailed.
type Error struct {
	Status  int    // HTTP status, for example 404
	Code    string // error code, for example CodeNotFound
	Message string // the server's message

	cond *argent.ConditionError // set for CodeConditionFailed
}

// Error returns the message with the status and code, for example
// `argent: key not found (404 not_found)`.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", msg, e.Status, e.Code)
}

// Unwrap returns the *argent.ConditionError of a failed condition, else the
// sentinel of the code, else nil.
func (e *Error) Unwrap() error {
	if e.Code == CodeConditionFailed {
		if e.cond != nil {
			return e.cond
		}
		return &argent.ConditionError{}
	}
	return Sentinel(e.Code)
}

// NewError returns the *Error of an answer with the given status and error
// detail. An empty code is guessed from the status (an answer without an
// error body, from a load balancer say); a failed condition keeps its key
// and mod indexes, so the error unwraps to a *argent.ConditionError.
func NewError(status int, d ErrorDetail) *Error {
	e := &Error{Status: status, Code: d.Code, Message: d.Message}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	if e.Code == CodeConditionFailed {
		e.cond = &argent.ConditionError{Key: []byte(d.Key)}
		if d.Want != nil {
			e.cond.Want = *d.Want
		}
		if d.Got != nil {
			e.cond.Got = *d.Got
		}
	}
	return e
}

// NewErrorBody returns the HTTP status and the body a server sends for err:
// the code is CodeOf(err), the message err.Error(), and a
// *argent.ConditionError in err fills Key, Want and Got. An *Error in err (one
// forwarded from another node) keeps its status.
func NewErrorBody(err error) (int, ErrorBody) {
	code := CodeOf(err)
	status := HTTPStatus(code)
	var e *Error
	if errors.As(err, &e) && e.Code == code && e.Status != 0 {
		status = e.Status
	}
	d := ErrorDetail{Code: code, Message: err.Error()}
	var ce *argent.ConditionError
	if errors.As(err, &ce) {
		want, got := ce.Want, ce.Got
		d.Key, d.Want, d.Got = string(ce.Key), &want, &got
	}
	return status, ErrorBody{Error: d}
}
