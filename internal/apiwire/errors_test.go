package apiwire_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

func TestError_Error(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *apiwire.Error
		want string
	}{
		{"Message", &apiwire.Error{Status: 404, Code: apiwire.CodeNotFound, Message: "argent: key not found"}, "argent: key not found (404 not_found)"},
		{"NoMessage", &apiwire.Error{Status: 503, Code: apiwire.CodeUnavailable}, "Service Unavailable (503 unavailable)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	// An *Error made by hand unwraps by its code.
	if err := (&apiwire.Error{Code: apiwire.CodeConditionFailed}); !errors.Is(err, argent.ErrConditionFailed) {
		t.Error("condition_failed *Error does not wrap ErrConditionFailed")
	}
}

func TestCodeOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code string
	}{
		{"NotFound", fmt.Errorf("read: %w", argent.ErrNotFound), apiwire.CodeNotFound},
		{"Timeout", argent.ErrTimeout, apiwire.CodeTimeout},
		{"Future", argent.ErrFuture, apiwire.CodeTimeout},
		{"Deadline", context.DeadlineExceeded, apiwire.CodeTimeout},
		{"Invalid", argent.ErrInvalid, apiwire.CodeInvalid},
		{"TooLarge", (argent.Limits{}).CheckKey(make([]byte, 2000)), apiwire.CodeTooLarge},
		{"Condition", &argent.ConditionError{Key: []byte("k")}, apiwire.CodeConditionFailed},
		{"Compacted", argent.ErrCompacted, apiwire.CodeCompacted},
		{"Unavailable", argent.ErrUnavailable, apiwire.CodeUnavailable},
		{"Closed", argent.ErrClosed, apiwire.CodeUnavailable},
		{"DatasetMismatch", argent.ErrDatasetMismatch, apiwire.CodeDatasetMismatch},
		{"Corruption", argent.ErrCorruption, apiwire.CodeInternal},
		{"Other", errors.New("boom"), apiwire.CodeInternal},
		{"Forwarded", fmt.Errorf("forward: %w", &apiwire.Error{Status: 418, Code: "teapot"}), "teapot"},
		{"OwnCode", fmt.Errorf("read: %w", codedError{apiwire.CodeNotReady}), apiwire.CodeNotReady},
		{"OwnCodeEmpty", codedError{""}, apiwire.CodeUnavailable},
		{"ForwardedOverOwnCode", fmt.Errorf("forward: %w", &apiwire.Error{Status: 503, Code: apiwire.CodeRootUnreachable, Message: "m"}), apiwire.CodeRootUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiwire.CodeOf(tt.err); got != tt.code {
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
		{"NotReady", codedError{apiwire.CodeNotReady}, 503, `{"error":{"code":"not_ready","message":"argent: unavailable: not_ready"}}`},
		{"Forwarded", &apiwire.Error{Status: 502, Code: apiwire.CodeUnavailable, Message: "m"}, 502, `{"error":{"code":"unavailable","message":"m (502 unavailable)"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := apiwire.NewErrorBody(tt.err)
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
		apiwire.CodeNotFound: 404, apiwire.CodeTimeout: 504, apiwire.CodeInvalid: 400, apiwire.CodeTooLarge: 413,
		apiwire.CodeConditionFailed: 409, apiwire.CodeCompacted: 410, apiwire.CodeUnavailable: 503,
		apiwire.CodeDatasetMismatch: 409, apiwire.CodeInternal: 500, "unknown": 500,
		apiwire.CodeNotReady: 503, apiwire.CodeRootUnreachable: 503,
	} {
		if got := apiwire.HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, want)
		}
		if s := apiwire.Sentinel(code); (s == nil) != (code == apiwire.CodeInternal || code == "unknown") {
			t.Errorf("Sentinel(%q) = %v", code, s)
		}
	}
	if !strings.HasPrefix(apiwire.Sentinel(apiwire.CodeConditionFailed).Error(), "argent: condition failed") {
		t.Error("Sentinel(condition_failed) is not ErrConditionFailed")
	}
}
