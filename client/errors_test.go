package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

func TestError_Mapping(t *testing.T) {
	for _, tt := range []struct {
		name     string
		status   int
		body     string
		want     error // sentinel the error must wrap; nil for none
		wantCode string
	}{
		{"NotFound", 404, `{"error":{"code":"not_found","message":"argent: key not found"}}`, argent.ErrNotFound, client.CodeNotFound},
		{"Timeout", 504, `{"error":{"code":"timeout","message":"m"}}`, argent.ErrTimeout, client.CodeTimeout},
		{"Invalid", 400, `{"error":{"code":"invalid","message":"m"}}`, argent.ErrInvalid, client.CodeInvalid},
		{"TooLarge", 413, `{"error":{"code":"too_large","message":"m"}}`, argent.ErrTooLarge, client.CodeTooLarge},
		{"ConditionFailed", 409, `{"error":{"code":"condition_failed","message":"m","key":"k","want":7,"got":9}}`, argent.ErrConditionFailed, client.CodeConditionFailed},
		{"Compacted", 410, `{"error":{"code":"compacted","message":"m"}}`, argent.ErrCompacted, client.CodeCompacted},
		{"Unavailable", 503, `{"error":{"code":"unavailable","message":"m"}}`, argent.ErrUnavailable, client.CodeUnavailable},
		{"DatasetMismatch", 409, `{"error":{"code":"dataset_mismatch","message":"m"}}`, argent.ErrDatasetMismatch, client.CodeDatasetMismatch},
		{"NotReady", 503, `{"error":{"code":"not_ready","message":"m"}}`, argent.ErrUnavailable, client.CodeNotReady},
		{"RootUnreachable", 503, `{"error":{"code":"root_unreachable","message":"m"}}`, argent.ErrUnavailable, client.CodeRootUnreachable},
		{"Internal", 500, `{"error":{"code":"internal","message":"m"}}`, nil, client.CodeInternal},
		{"UnknownCode", 418, `{"error":{"code":"teapot","message":"m"}}`, nil, "teapot"},
		{"CodeWinsOverStatus", 500, `{"error":{"code":"not_found","message":"m"}}`, argent.ErrNotFound, client.CodeNotFound},
		{"PlainText503", 503, "upstream connect error\n", argent.ErrUnavailable, client.CodeUnavailable},
		{"PlainText404", 404, "404 page not found\n", argent.ErrNotFound, client.CodeNotFound},
		{"EmptyBody502", 502, "", argent.ErrUnavailable, client.CodeUnavailable},
		{"EmptyCode", 400, `{"error":{"message":"m"}}`, argent.ErrInvalid, client.CodeInvalid},
		{"BadJSON", 500, `{"error":`, nil, client.CodeInternal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			_, err := c.Put(t.Context(), []byte("k"), []byte("v"))
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Put = %v, want a *client.Error", err)
			}
			if ce.Status != tt.status || ce.Code != tt.wantCode {
				t.Errorf("Error = %d %q, want %d %q", ce.Status, ce.Code, tt.status, tt.wantCode)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Put = %v, want it to wrap %v", err, tt.want)
			}
			if tt.want == nil && errors.Unwrap(ce) != nil {
				t.Errorf("Unwrap = %v, want nil", errors.Unwrap(ce))
			}
			for _, s := range []error{argent.ErrNotFound, argent.ErrTimeout, argent.ErrInvalid, argent.ErrTooLarge,
				argent.ErrConditionFailed, argent.ErrCompacted, argent.ErrUnavailable, argent.ErrDatasetMismatch} {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("Put = %v, wraps %v too", err, s)
				}
			}
			var cond *argent.ConditionError
			if got := errors.As(err, &cond); got != (tt.wantCode == client.CodeConditionFailed) {
				t.Errorf("errors.As(*ConditionError) = %v", got)
			}
		})
	}
}

func TestError_Condition(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"code":"condition_failed","message":"key k moved","key":"k","want":0,"got":9}}`))
	})
	_, err := c.Txn(t.Context(), argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("k")}}})
	var cond *argent.ConditionError
	if !errors.As(err, &cond) {
		t.Fatalf("Txn = %v", err)
	}
	if want := (&argent.ConditionError{Key: []byte("k"), Want: 0, Got: 9}); !reflect.DeepEqual(cond, want) {
		t.Errorf("ConditionError = %+v, want %+v", cond, want)
	}
	if want := `client: txn: key k moved (409 condition_failed)`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestError_Error(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *client.Error
		want string
	}{
		{"Message", &client.Error{Status: 404, Code: client.CodeNotFound, Message: "argent: key not found"}, "argent: key not found (404 not_found)"},
		{"NoMessage", &client.Error{Status: 503, Code: client.CodeUnavailable}, "Service Unavailable (503 unavailable)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	// An *Error made by hand unwraps by its code.
	if err := (&client.Error{Code: client.CodeConditionFailed}); !errors.Is(err, argent.ErrConditionFailed) {
		t.Error("condition_failed *Error does not wrap ErrConditionFailed")
	}
}

func TestCodeOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code string
	}{
		{"NotFound", fmt.Errorf("read: %w", argent.ErrNotFound), client.CodeNotFound},
		{"Timeout", argent.ErrTimeout, client.CodeTimeout},
		{"Future", argent.ErrFuture, client.CodeTimeout},
		{"Deadline", context.DeadlineExceeded, client.CodeTimeout},
		{"Invalid", argent.ErrInvalid, client.CodeInvalid},
		{"TooLarge", (argent.Limits{}).CheckKey(make([]byte, 2000)), client.CodeTooLarge},
		{"Condition", &argent.ConditionError{Key: []byte("k")}, client.CodeConditionFailed},
		{"Compacted", argent.ErrCompacted, client.CodeCompacted},
		{"Unavailable", argent.ErrUnavailable, client.CodeUnavailable},
		{"Closed", argent.ErrClosed, client.CodeUnavailable},
		{"DatasetMismatch", argent.ErrDatasetMismatch, client.CodeDatasetMismatch},
		{"Corruption", argent.ErrCorruption, client.CodeInternal},
		{"Other", errors.New("boom"), client.CodeInternal},
		{"Forwarded", fmt.Errorf("forward: %w", &client.Error{Status: 418, Code: "teapot"}), "teapot"},
		{"OwnCode", fmt.Errorf("read: %w", codedError{client.CodeNotReady}), client.CodeNotReady},
		{"OwnCodeEmpty", codedError{""}, client.CodeUnavailable},
		{"ForwardedOverOwnCode", fmt.Errorf("forward: %w", &client.Error{Status: 503, Code: client.CodeRootUnreachable, Message: "m"}), client.CodeRootUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := client.CodeOf(tt.err); got != tt.code {
				t.Errorf("CodeOf(%v) = %q, want %q", tt.err, got, tt.code)
			}
		})
	}
}

// codedError names its own code and wraps argent.ErrUnavailable, as the
// server's not-ready and unreachable-upstream errors do.
type codedError struct{ code string }

func (e codedError) Error() string     { return "argent: unavailable: " + e.code }
func (e codedError) Unwrap() error     { return argent.ErrUnavailable }
func (e codedError) ErrorCode() string { return e.code }

func TestNewErrorBody(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		json   string
	}{
		{"NotFound", argent.ErrNotFound, 404, `{"error":{"code":"not_found","message":"argent: key not found"}}`},
		{"Condition", &argent.ConditionError{Key: []byte("k"), Want: 0, Got: 9}, 409,
			`{"error":{"code":"condition_failed","message":"argent: condition failed: key \"k\" has mod index 9, want 0","key":"k","want":0,"got":9}}`},
		{"Other", errors.New("boom"), 500, `{"error":{"code":"internal","message":"boom"}}`},
		{"NotReady", codedError{client.CodeNotReady}, 503, `{"error":{"code":"not_ready","message":"argent: unavailable: not_ready"}}`},
		{"Forwarded", &client.Error{Status: 502, Code: client.CodeUnavailable, Message: "m"}, 502, `{"error":{"code":"unavailable","message":"m (502 unavailable)"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := client.NewErrorBody(tt.err)
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || string(b) != tt.json {
				t.Errorf("NewErrorBody = %d %s\nwant          %d %s", status, b, tt.status, tt.json)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[string]int{
		client.CodeNotFound: 404, client.CodeTimeout: 504, client.CodeInvalid: 400, client.CodeTooLarge: 413,
		client.CodeConditionFailed: 409, client.CodeCompacted: 410, client.CodeUnavailable: 503,
		client.CodeDatasetMismatch: 409, client.CodeInternal: 500, "unknown": 500,
		client.CodeNotReady: 503, client.CodeRootUnreachable: 503,
	} {
		if got := client.HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, want)
		}
		if s := client.Sentinel(code); (s == nil) != (code == client.CodeInternal || code == "unknown") {
			t.Errorf("Sentinel(%q) = %v", code, s)
		}
	}
	if !strings.HasPrefix(client.Sentinel(client.CodeConditionFailed).Error(), "argent: condition failed") {
		t.Error("Sentinel(condition_failed) is not ErrConditionFailed")
	}
}
