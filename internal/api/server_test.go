package api_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
)

// smallLimits keeps the oversize cases small.
func smallLimits(c *serverConfig) {
	c.limits = argent.Limits{MaxKey: 16, MaxValue: 1024, MaxBatch: 4096}
	c.opts.MaxMGetKeys = 8
}

func b64(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("v"), n)) }

// chunked hides a body's length so that it is sent chunked.
type chunked struct{ io.Reader }

// TestServer_BadInput sends every kind of bad input and checks that each
// gets a 4xx JSON error and that nothing was written.
func TestServer_BadInput(t *testing.T) {
	ts := newTestServer(t, smallLimits)
	before := ts.b.commit(t, put("a", "1"))

	txn := func(ops string) string { return `{"ops":[` + ops + `]}` }
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		status int
		code   string
	}{
		{"PutEmptyKey", "PUT", "/v1/kv/", strings.NewReader("x"), 400, apiwire.CodeInvalid},
		{"DeleteEmptyKey", "DELETE", "/v1/kv/", nil, 400, apiwire.CodeInvalid},
		{"GetEmptyKey", "GET", "/v1/kv/", nil, 400, apiwire.CodeInvalid},
		{"PutKeyTooLong", "PUT", "/v1/kv/" + strings.Repeat("k", 17), strings.NewReader("x"), 413, apiwire.CodeTooLarge},
		{"DeleteKeyTooLong", "DELETE", "/v1/kv/" + strings.Repeat("k", 17), nil, 413, apiwire.CodeTooLarge},
		{"GetKeyTooLong", "GET", "/v1/kv/" + strings.Repeat("k", 17), nil, 413, apiwire.CodeTooLarge},
		{"PutValueTooLarge", "PUT", "/v1/kv/a", bytes.NewReader(make([]byte, 1025)), 413, apiwire.CodeTooLarge},
		{"PutValueTooLargeChunked", "PUT", "/v1/kv/a", chunked{bytes.NewReader(make([]byte, 1025))}, 413, apiwire.CodeTooLarge},
		{"PutValueHugeChunked", "PUT", "/v1/kv/a", chunked{bytes.NewReader(make([]byte, 4<<20))}, 413, apiwire.CodeTooLarge},

		{"TxnMalformedJSON", "POST", "/v1/txn", strings.NewReader(`{"ops":[`), 400, apiwire.CodeInvalid},
		{"TxnNotJSON", "POST", "/v1/txn", strings.NewReader(`hello`), 400, apiwire.CodeInvalid},
		{"TxnEmptyBody", "POST", "/v1/txn", nil, 400, apiwire.CodeInvalid},
		{"TxnTrailingData", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b"}`) + ` {}`), 400, apiwire.CodeInvalid},
		{"TxnTrailingGarbage", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b"}`) + `]`), 400, apiwire.CodeInvalid},
		{"TxnUnknownOp", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"upsert","key":"b"}`)), 400, apiwire.CodeInvalid},
		{"TxnUnknownConditionField", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"key":"a","mod_index":1,"version":1}],` + txn(`{"op":"put","key":"b"}`)[1:]), 400, apiwire.CodeInvalid},
		{"TxnUnknownOpField", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b","ttl":5}`)), 400, apiwire.CodeInvalid},
		{"TxnUnknownTopField", "POST", "/v1/txn", strings.NewReader(`{"operations":[{"op":"put","key":"b"}]}`), 400, apiwire.CodeInvalid},
		{"TxnMissingKey", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","value":"aGk="}`)), 400, apiwire.CodeInvalid},
		{"TxnMissingKeyDeletePrefix", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"delete_prefix"}`)), 400, apiwire.CodeInvalid},
		{"TxnMissingOp", "POST", "/v1/txn", strings.NewReader(txn(`{"key":"b"}`)), 400, apiwire.CodeInvalid},
		{"TxnEmptyKey", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":""}`)), 400, apiwire.CodeInvalid},
		{"TxnNoOps", "POST", "/v1/txn", strings.NewReader(`{"ops":[]}`), 400, apiwire.CodeInvalid},
		{"TxnNullOps", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"key":"a","mod_index":0}]}`), 400, apiwire.CodeInvalid},
		{"TxnConditionMissingModIndex", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"key":"a"}],` + txn(`{"op":"put","key":"b"}`)[1:]), 400, apiwire.CodeInvalid},
		{"TxnConditionMissingKey", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"mod_index":1}],` + txn(`{"op":"put","key":"b"}`)[1:]), 400, apiwire.CodeInvalid},
		{"TxnConditionEmptyKey", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"key":"","mod_index":1}],` + txn(`{"op":"put","key":"b"}`)[1:]), 400, apiwire.CodeInvalid},
		{"TxnConditionNegativeIndex", "POST", "/v1/txn", strings.NewReader(`{"conditions":[{"key":"a","mod_index":-1}],` + txn(`{"op":"put","key":"b"}`)[1:]), 400, apiwire.CodeInvalid},
		{"TxnBadBase64", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b","value":"!!!"}`)), 400, apiwire.CodeInvalid},
		{"TxnKeyNotString", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":5}`)), 400, apiwire.CodeInvalid},
		{"TxnOpsNotArray", "POST", "/v1/txn", strings.NewReader(`{"ops":"put"}`), 400, apiwire.CodeInvalid},
		{"TxnValueOnDelete", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"delete","key":"a","value":"aGk="}`)), 400, apiwire.CodeInvalid},
		{"TxnKeyTooLong", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"` + strings.Repeat("k", 17) + `"}`)), 413, apiwire.CodeTooLarge},
		{"TxnValueTooLarge", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b","value":"` + b64(1025) + `"}`)), 413, apiwire.CodeTooLarge},
		{"TxnBatchTooLarge", "POST", "/v1/txn", strings.NewReader(txn(strings.TrimSuffix(strings.Repeat(`{"op":"put","key":"b","value":"`+b64(1000)+`"},`, 5), ","))), 413, apiwire.CodeTooLarge},
		{"TxnBodyTooLarge", "POST", "/v1/txn", strings.NewReader(txn(`{"op":"put","key":"b","value":"` + b64(2<<20) + `"}`)), 413, apiwire.CodeTooLarge},
		{"TxnBodyTooLargeChunked", "POST", "/v1/txn", chunked{strings.NewReader(txn(`{"op":"put","key":"b","value":"` + b64(2<<20) + `"}`))}, 413, apiwire.CodeTooLarge},

		{"GetMinIndexNotNumber", "GET", "/v1/kv/a?min_index=abc", nil, 400, apiwire.CodeInvalid},
		{"GetMinIndexNegative", "GET", "/v1/kv/a?min_index=-1", nil, 400, apiwire.CodeInvalid},
		{"GetMinIndexBadEscape", "GET", "/v1/kv/a?min_index=%zz", nil, 400, apiwire.CodeInvalid},
		{"GetWaitNotDuration", "GET", "/v1/kv/a?min_index=1&wait=abc", nil, 400, apiwire.CodeInvalid},
		{"GetWaitNoUnit", "GET", "/v1/kv/a?min_index=1&wait=5", nil, 400, apiwire.CodeInvalid},
		{"GetWaitNegative", "GET", "/v1/kv/a?min_index=1&wait=-1s", nil, 400, apiwire.CodeInvalid},
		{"ScanLimitNotNumber", "GET", "/v1/kv?prefix=a&limit=ten", nil, 400, apiwire.CodeInvalid},
		{"ScanLimitNegative", "GET", "/v1/kv?prefix=a&limit=-1", nil, 400, apiwire.CodeInvalid},
		{"ScanMinIndexNotNumber", "GET", "/v1/kv?prefix=a&min_index=x", nil, 400, apiwire.CodeInvalid},
		{"MGetMalformed", "POST", "/v1/mget", strings.NewReader(`{"keys":[`), 400, apiwire.CodeInvalid},
		{"MGetUnknownField", "POST", "/v1/mget", strings.NewReader(`{"keys":["a"],"at":3}`), 400, apiwire.CodeInvalid},
		{"MGetEmptyKey", "POST", "/v1/mget", strings.NewReader(`{"keys":["a",""]}`), 400, apiwire.CodeInvalid},
		{"MGetKeyTooLong", "POST", "/v1/mget", strings.NewReader(`{"keys":["` + strings.Repeat("k", 17) + `"]}`), 413, apiwire.CodeTooLarge},
		{"MGetTooManyKeys", "POST", "/v1/mget", strings.NewReader(`{"keys":["a","b","c","d","e","f","g","h","i"]}`), 413, apiwire.CodeTooLarge},
		{"MGetMinIndexNotNumber", "POST", "/v1/mget?min_index=1.5", strings.NewReader(`{"keys":["a"]}`), 400, apiwire.CodeInvalid},
		{"WatchFromNotNumber", "GET", "/v1/watch?prefix=a&from=first", nil, 400, apiwire.CodeInvalid},

		{"UnknownPath", "GET", "/v2/kv/a", nil, 404, apiwire.CodeNotFound},
		{"UnknownPathUnderV1", "GET", "/v1/keys", nil, 404, apiwire.CodeNotFound},
		{"MethodNotAllowedKey", "POST", "/v1/kv/a", strings.NewReader("x"), 405, apiwire.CodeInvalid},
		{"MethodNotAllowedScan", "PUT", "/v1/kv", strings.NewReader("x"), 405, apiwire.CodeInvalid},
		{"MethodNotAllowedTxn", "GET", "/v1/txn", nil, 405, apiwire.CodeInvalid},
		{"MethodNotAllowedMGet", "GET", "/v1/mget", nil, 405, apiwire.CodeInvalid},
		{"MethodNotAllowedWatch", "POST", "/v1/watch", nil, 405, apiwire.CodeInvalid},
		{"MethodNotAllowedStatus", "DELETE", "/v1/status", nil, 405, apiwire.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if d := decodeError(t, resp, body); d.Code != tt.code {
				t.Errorf("code = %q, want %q (message %q)", d.Code, tt.code, d.Message)
			}
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
			if got := ts.b.store.Applied(); got != before {
				t.Errorf("applied index = %d after a bad request, want %d", got, before)
			}
			if n := ts.b.writes.Load(); n != 0 {
				t.Errorf("Backend.Write called %d times for bad requests", n)
			}
		})
	}
}

func TestServer_Status(t *testing.T) {
	ts := newTestServer(t)
	ts.b.commit(t, put("a", "1"))
	resp, body := ts.doString(t, "GET", "/v1/status", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte(`"children":[]`)) {
		t.Errorf("status body %s: want children as an empty array", body)
	}
	st := decodeJSON[apiwire.StatusResponse](t, body)
	if st.Role != "root" || st.AppliedIndex != 1 || st.NodeID != "n1" {
		t.Errorf("status = %+v", st)
	}
}

func TestServer_Metrics(t *testing.T) {
	ts := newTestServer(t)
	ts.b.commit(t, put("a", "1"))
	for range 3 {
		ts.doString(t, "GET", "/v1/kv/a", "")
	}
	ts.doString(t, "GET", "/v1/kv/missing", "")
	ts.doString(t, "PUT", "/v1/kv/b", "2")
	ts.doString(t, "GET", "/nowhere", "")
	ts.doString(t, "PATCH", "/v1/kv/a", "")

	for _, tt := range []struct {
		route, code string
		want        float64
	}{
		{"get", "200", 3},
		{"get", "404", 1},
		{"put", "200", 1},
		{"other", "404", 1},
		{"other", "405", 1},
	} {
		if got := counterValue(t, ts.reg, tt.route, tt.code); got != tt.want {
			t.Errorf("requests{route=%s,code=%s} = %v, want %v", tt.route, tt.code, got, tt.want)
		}
	}
	resp, body := ts.doString(t, "GET", "/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`argent_http_requests_total{code="200",route="get"} 3`,
		`argent_http_request_duration_seconds_count{route="get"} 4`,
		`argent_http_watch_streams 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, route, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "argent_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestServer_MetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newFakeBackend(t, argent.Limits{}, nil)
	// A second server on the same registry shares the first one's collectors.
	for range 2 {
		srv := api.New(b, api.Options{Registry: reg})
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
		if rec.Code != 200 {
			t.Fatalf("status = %d", rec.Code)
		}
	}
	if got := counterValue(t, reg, "status", "200"); got != 2 {
		t.Errorf("requests{route=status,code=200} = %v, want 2", got)
	}
}

func TestServer_Fallback(t *testing.T) {
	ts := newTestServer(t, func(c *serverConfig) {
		c.opts.Fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		})
	})
	resp, _ := ts.doString(t, "GET", "/pull/v1", "")
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d, want the fallback's 418", resp.StatusCode)
	}
	resp, _ = ts.doString(t, "GET", "/v1/status", "")
	if resp.StatusCode != 200 {
		t.Errorf("status route = %d, want 200", resp.StatusCode)
	}
}
