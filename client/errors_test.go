package client_test

import (
	"errors"
	"net/http"
	"reflect"
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
