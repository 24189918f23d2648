package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
)

// readyBackend is a fakeBackend with a Readiness that the test switches.
type readyBackend struct {
	*fakeBackend
	ready atomic.Bool
}

var _ api.Readiness = (*readyBackend)(nil)

func (b *readyBackend) Ready() error {
	if b.ready.Load() {
		return nil
	}
	return api.ErrNotReady
}

// TestServer_NotReady checks that a node without its first state answers
// every read 503 not_ready (never 404), and reads as usual once ready.
func TestServer_NotReady(t *testing.T) {
	var rb *readyBackend
	ts := newTestServer(t, func(c *serverConfig) {
		c.wrap = func(b *fakeBackend) api.Backend {
			rb = &readyBackend{fakeBackend: b}
			return rb
		}
	})
	reads := []struct {
		name, method, path, body string
		readyStatus              int // once ready: the store is empty
	}{
		{"Get", "GET", "/v1/kv/a", "", 404},
		{"Head", "HEAD", "/v1/kv/a", "", 404},
		{"GetMinIndex", "GET", "/v1/kv/a?min_index=0&wait=10ms", "", 404},
		{"MGet", "POST", "/v1/mget", `{"keys":["a","b"]}`, 200},
		{"Scan", "GET", "/v1/kv?prefix=a", "", 200},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.doString(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503 (body %s)", resp.StatusCode, body)
			}
			if got := resp.Header.Get(apiwire.HeaderIndex); got != "0" {
				t.Errorf("Argent-Index = %q, want 0", got)
			}
			if tt.method == "HEAD" {
				return
			}
			if d := decodeError(t, resp, body); d.Code != apiwire.CodeNotReady || !strings.Contains(d.Message, "first state") {
				t.Errorf("error = %+v, want code %s naming the first state", d, apiwire.CodeNotReady)
			}
		})
	}
	t.Run("Client", func(t *testing.T) {
		c, err := client.New(ts.URL, client.WithHTTPClient(ts.Client()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), []byte("a"), client.ReadOptions{})
		var ce *apiwire.Error
		if !errors.As(err, &ce) || ce.Code != apiwire.CodeNotReady || !errors.Is(err, argent.ErrUnavailable) || errors.Is(err, argent.ErrNotFound) {
			t.Errorf("Get = %v, want a not_ready *apiwire.Error wrapping ErrUnavailable", err)
		}
	})
	t.Run("StatusServed", func(t *testing.T) {
		if resp, body := ts.doString(t, "GET", "/v1/status", ""); resp.StatusCode != 200 {
			t.Errorf("status = %d %s, want 200", resp.StatusCode, body)
		}
	})
	rb.ready.Store(true)
	for _, tt := range reads {
		t.Run(tt.name+"Ready", func(t *testing.T) {
			if resp, body := ts.doString(t, tt.method, tt.path, tt.body); resp.StatusCode != tt.readyStatus {
				t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, tt.readyStatus, body)
			}
		})
	}
}

// TestServer_UpstreamError checks that a write the backend could not
// forward answers 503 root_unreachable naming the upstream, not 500.
func TestServer_UpstreamError(t *testing.T) {
	ts := newTestServer(t)
	const up = "http://10.0.0.1:7400"
	ts.b.writeFn = func(context.Context, argent.Batch) (argent.Index, error) {
		return 0, &api.UpstreamError{Addr: up, Err: errors.New("dial tcp 10.0.0.1:7400: connect: connection refused")}
	}
	for _, tt := range []struct{ name, method, path, body string }{
		{"Put", "PUT", "/v1/kv/a", "v"},
		{"Delete", "DELETE", "/v1/kv/a", ""},
		{"Txn", "POST", "/v1/txn", `{"ops":[{"op":"put","key":"a","value":"dg=="}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.doString(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503 (body %s)", resp.StatusCode, body)
			}
			if d := decodeError(t, resp, body); d.Code != apiwire.CodeRootUnreachable || !strings.Contains(d.Message, up) {
				t.Errorf("error = %+v, want code %s naming %s", d, apiwire.CodeRootUnreachable, up)
			}
		})
	}
	err := error(&api.UpstreamError{Addr: up, Err: errors.New("refused")})
	if !errors.Is(fmt.Errorf("write: %w", err), argent.ErrUnavailable) || apiwire.CodeOf(err) != apiwire.CodeRootUnreachable {
		t.Errorf("UpstreamError: Is(ErrUnavailable) false or CodeOf = %q", apiwire.CodeOf(err))
	}
}

// TestServer_UnroutedIsJSON checks that paths neither the API nor the
// Fallback mux serves, and wrong methods on either, get JSON errors, while
// the mux's own routes are served by it.
func TestServer_UnroutedIsJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/v1/log", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	ts := newTestServer(t, func(c *serverConfig) { c.opts.Fallback = mux })
	for _, tt := range []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"UnknownRoot", "GET", "/nope", 404, ""},
		{"UnknownUnderV1", "GET", "/v1/nothing", 404, ""},
		{"Root", "GET", "/", 404, ""},
		{"UnknownPost", "POST", "/nope", 404, ""},
		{"MuxWrongMethod", "POST", "/internal/v1/log", 405, "GET, HEAD"},
		{"APIWrongMethod", "DELETE", "/v1/mget", 405, "POST"},
		{"APIWrongMethodKey", "POST", "/v1/kv/a", 405, "GET, HEAD, PUT, DELETE"},
		{"MuxRoute", "GET", "/internal/v1/log", http.StatusTeapot, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.doString(t, tt.method, tt.path, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusTeapot {
				return
			}
			d := decodeError(t, resp, body)
			want := map[int]string{404: apiwire.CodeNotFound, 405: apiwire.CodeInvalid}[tt.status]
			if d.Code != want {
				t.Errorf("code = %q, want %q", d.Code, want)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}
