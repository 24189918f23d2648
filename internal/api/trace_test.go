package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/argent-kv/argent/internal/apiwire"
)

// TestServer_Trace traces reads on a node that reads its own store: one
// step, its tier, the answer as a GET would give it; bad input is a 4xx
// JSON error.
func TestServer_Trace(t *testing.T) {
	ts := newTestServer(t)
	ts.b.tier = "replica"
	i1 := ts.b.commit(t, put("a", "one"))
	applied := ts.b.store.Applied()
	tests := []struct {
		name, method, path string
		status             int
		absent             bool
	}{
		{"Present", "GET", "/v1/trace/a", 200, false},
		{"Absent", "GET", "/v1/trace/nope", 200, true},
		{"EmptyKey", "GET", "/v1/trace/", 400, false},
		{"BadMinIndex", "GET", "/v1/trace/a?min_index=x", 400, false},
		{"Post", "POST", "/v1/trace/a", 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.doString(t, tt.method, tt.path, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				decodeError(t, resp, body)
				return
			}
			var tr apiwire.TraceResponse
			if err := json.Unmarshal([]byte(body), &tr); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if tr.Index != applied || tr.Tier != "replica" || tr.Absent != tt.absent || len(tr.Steps) != 1 || tr.Steps[0].Tier != "replica" {
				t.Fatalf("trace = %+v", tr)
			}
			if !tt.absent && (string(tr.Value) != "one" || tr.ModIndex != i1 || tr.Steps[0].Answer != "hit") {
				t.Errorf("trace of a present key = %+v, want one at mod index %d", tr, i1)
			}
			if tt.absent && tr.Steps[0].Answer != "absent" {
				t.Errorf("trace of an absent key: step %+v", tr.Steps[0])
			}
		})
	}
}
