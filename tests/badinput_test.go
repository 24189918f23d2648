package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// rawResponse is an HTTP answer read whole.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func doRaw(t *testing.T, hc *http.Client, method, url string, body []byte) rawResponse {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %.200s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.200s: read body: %v", method, url, err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestBadInput_E2E sends malformed and oversized requests over raw HTTP to a
// root started with small limits (and to a replica, which forwards writes):
// each gets a 4xx with a JSON error body and changes nothing. Then a write
// sent to the replica is forwarded to the root, and its index is readable at
// the replica with min_index.
func TestBadInput_E2E(t *testing.T) {
	skipShort(t)
	root := cluster.StartRoot(t, "--max-value", "1KiB", "--max-batch", "4KiB")
	replica := cluster.StartReplica(t, []string{root.Addr}, "--max-value", "1KiB", "--max-batch", "4KiB")
	rc, pc := newClient(t, root), newClient(t, replica)
	hc := rawHTTP(t)

	// Inputs right at the limits are accepted.
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	maxKey := []byte(strings.Repeat("k", argent.DefaultMaxKey))
	maxVal := bytes.Repeat([]byte("v"), 1024)
	i1, err := rc.Put(ctx, maxKey, maxVal)
	if err != nil {
		t.Fatalf("put of a %d-byte key and a %d-byte value (the limits): %v", len(maxKey), len(maxVal), err)
	}
	if _, err := rc.Put(ctx, []byte("exists"), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	v, err := pc.Get(ctx, maxKey, client.ReadOptions{MinIndex: i1})
	if err != nil || !bytes.Equal(v.Value, maxVal) {
		t.Fatalf("get of the %d-byte key at the replica: %d bytes, err %v", len(maxKey), len(v.Value), err)
	}

	before := readStatus(t, rc).AppliedIndex
	cluster.WaitApplied(t, replica, uint64(before), 10*time.Second)

	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	long := strings.Repeat("k", argent.DefaultMaxKey+1)
	putOp := `{"op":"put","key":"k","value":"aGk="}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
	}{
		{name: "PutEmptyKey", method: "PUT", path: "/v1/kv/", body: "x"},
		{name: "PutLongKey", method: "PUT", path: "/v1/kv/" + long, body: "x"},
		{name: "PutValueOverLimit", method: "PUT", path: "/v1/kv/big", body: strings.Repeat("v", 1025)},
		{name: "PutValueFarOverLimit", method: "PUT", path: "/v1/kv/big", body: strings.Repeat("v", 1<<20)},
		{name: "DeleteEmptyKey", method: "DELETE", path: "/v1/kv/"},
		{name: "DeleteLongKey", method: "DELETE", path: "/v1/kv/" + long},
		{name: "TxnMalformedJSON", method: "POST", path: "/v1/txn", body: `{"ops":[` + putOp},
		{name: "TxnNotJSON", method: "POST", path: "/v1/txn", body: `hello`},
		{name: "TxnEmptyBody", method: "POST", path: "/v1/txn", body: ``},
		{name: "TxnTrailingData", method: "POST", path: "/v1/txn", body: `{"ops":[` + putOp + `]} {"ops":[]}`},
		{name: "TxnUnknownOp", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"frobnicate","key":"k"}]}`},
		{name: "TxnUnknownOpAfterGoodOne", method: "POST", path: "/v1/txn", body: `{"ops":[` + putOp + `,{"op":"increment","key":"n"}]}`},
		{name: "TxnUnknownConditionField", method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"exists","mod_index":0,"version":3}],"ops":[` + putOp + `]}`},
		{name: "TxnUnknownTopLevelField", method: "POST", path: "/v1/txn", body: `{"ops":[` + putOp + `],"lease":5}`},
		{name: "TxnStringModIndex", method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"k","mod_index":"0"}],"ops":[` + putOp + `]}`},
		{name: "TxnNegativeModIndex", method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"k","mod_index":-1}],"ops":[` + putOp + `]}`},
		{name: "TxnConditionEmptyKey", method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"","mod_index":0}],"ops":[` + putOp + `]}`},
		{name: "TxnNoOps", method: "POST", path: "/v1/txn", body: `{"ops":[]}`},
		{name: "TxnNoOpsField", method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"k","mod_index":0}]}`},
		{name: "TxnEmptyKey", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"put","key":"","value":"aGk="}]}`},
		{name: "TxnLongKey", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"put","key":"` + long + `","value":"aGk="}]}`},
		{name: "TxnValueOverLimit", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"put","key":"k","value":"` + b64(make([]byte, 1025)) + `"}]}`},
		{name: "TxnBatchOverLimit", method: "POST", path: "/v1/txn", body: `{"ops":[` + strings.Repeat(`{"op":"put","key":"k","value":"`+b64(make([]byte, 1000))+`"},`, 4) + `{"op":"put","key":"k","value":"` + b64(make([]byte, 1000)) + `"}]}`},
		{name: "TxnDeleteWithValue", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"delete","key":"exists","value":"aGk="}]}`},
		{name: "TxnBadBase64", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"put","key":"k","value":"!!not base64!!"}]}`},
		{name: "TxnOpsNotArray", method: "POST", path: "/v1/txn", body: `{"ops":{"op":"put","key":"k"}}`},
		{name: "GetNonNumericMinIndex", method: "GET", path: "/v1/kv/exists?min_index=abc"},
		{name: "GetFractionalMinIndex", method: "GET", path: "/v1/kv/exists?min_index=1.5"},
		{name: "GetNegativeMinIndex", method: "GET", path: "/v1/kv/exists?min_index=-1"},
		{name: "GetBadWait", method: "GET", path: "/v1/kv/exists?min_index=1&wait=forever"},
		{name: "GetLongKey", method: "GET", path: "/v1/kv/" + long},
		{name: "MGetNonNumericMinIndex", method: "POST", path: "/v1/mget?min_index=abc", body: `{"keys":["exists"]}`},
		{name: "MGetMalformedJSON", method: "POST", path: "/v1/mget", body: `{"keys":["exists"`},
		{name: "MGetEmptyKey", method: "POST", path: "/v1/mget", body: `{"keys":["exists",""]}`},
		{name: "MGetUnknownField", method: "POST", path: "/v1/mget", body: `{"keys":["exists"],"at":3}`},
		{name: "ScanNonNumericMinIndex", method: "GET", path: "/v1/kv?prefix=e&min_index=abc"},
		{name: "ScanBadLimit", method: "GET", path: "/v1/kv?prefix=e&limit=ten"},
		{name: "WatchNonNumericFrom", method: "GET", path: "/v1/watch?prefix=e&from=abc"},
	}
	for _, node := range []*cluster.Node{root, replica} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s", node.Role, tt.name), func(t *testing.T) {
				var body []byte
				if tt.body != "" || tt.method == "POST" || tt.method == "PUT" {
					body = []byte(tt.body)
				}
				resp := doRaw(t, hc, tt.method, node.URL()+tt.path, body)
				checkErrorAnswer(t, resp)
			})
		}
	}

	// Nothing changed, at the root or the replica.
	time.Sleep(200 * time.Millisecond)
	if after := readStatus(t, rc).AppliedIndex; after != before {
		t.Errorf("root's applied index went from %d to %d after bad input", before, after)
	}
	if after := readStatus(t, pc).AppliedIndex; after != before {
		t.Errorf("replica's applied index went from %d to %d after bad input", before, after)
	}
	for _, k := range []string{"k", "big", "n"} {
		if _, err := rc.Get(ctx, []byte(k), client.ReadOptions{}); !errors.Is(err, argent.ErrNotFound) {
			t.Errorf("get %q at the root after bad input: err %v, want not found", k, err)
		}
	}
	if v, err := rc.Get(ctx, []byte("exists"), client.ReadOptions{}); err != nil || string(v.Value) != "hi" {
		t.Errorf("get \"exists\" at the root after bad input: %q, %v; want \"hi\"", v.Value, err)
	}

	// Writes sent to the replica reach the root; their index is readable at
	// the replica with min_index.
	t.Run("ForwardedWrites", func(t *testing.T) {
		ctx, cancel := ctxTimeout(15 * time.Second)
		defer cancel()
		i1, err := pc.Put(ctx, []byte("fwd/a"), []byte("one"))
		if err != nil {
			t.Fatalf("put at the replica: %v", err)
		}
		if i1 <= argent.Index(before) {
			t.Errorf("put at the replica returned index %d, want > %d", i1, before)
		}
		v, err := pc.Get(ctx, []byte("fwd/a"), client.ReadOptions{MinIndex: i1})
		if err != nil || string(v.Value) != "one" || v.Index < i1 || v.ModIndex != i1 {
			t.Errorf("get at the replica with min_index=%d: value %q S=%d mod=%d err %v; want \"one\", S >= %d, mod %d", i1, v.Value, v.Index, v.ModIndex, err, i1, i1)
		}
		if v, err := rc.Get(ctx, []byte("fwd/a"), client.ReadOptions{MinIndex: i1}); err != nil || string(v.Value) != "one" {
			t.Errorf("get at the root with min_index=%d: %q, %v", i1, v.Value, err)
		}
		i2, err := pc.Txn(ctx, argent.Batch{
			Conditions: []argent.Condition{{Key: []byte("fwd/a"), ModIndex: i1}, {Key: []byte("fwd/b"), ModIndex: 0}},
			Ops: []argent.Op{
				{Type: argent.OpPut, Key: []byte("fwd/b"), Value: []byte("two")},
				{Type: argent.OpDelete, Key: []byte("fwd/a")},
			},
		})
		if err != nil || i2 <= i1 {
			t.Fatalf("txn at the replica: index %d, %v; want > %d", i2, err, i1)
		}
		_, items, err := pc.MGet(ctx, [][]byte{[]byte("fwd/a"), []byte("fwd/b")}, client.ReadOptions{MinIndex: i2})
		if err != nil || len(items) != 2 || !items[0].Absent || string(items[1].Value) != "two" || items[1].ModIndex != i2 {
			t.Errorf("mget at the replica with min_index=%d: %s, %v; want fwd/a absent, fwd/b=two@%d", i2, fmtItems(items), err, i2)
		}
		// A failed condition is refused through the replica as well.
		_, err = pc.Txn(ctx, argent.Batch{
			Conditions: []argent.Condition{{Key: []byte("fwd/b"), ModIndex: i1}},
			Ops:        []argent.Op{{Type: argent.OpPut, Key: []byte("fwd/b"), Value: []byte("three")}},
		})
		var ce *argent.ConditionError
		if !errors.As(err, &ce) || string(ce.Key) != "fwd/b" || ce.Want != i1 || ce.Got != i2 {
			t.Errorf("txn with a failed condition at the replica: %v; want a condition error on fwd/b want %d got %d", err, i1, i2)
		}
		i3, err := pc.Delete(ctx, []byte("fwd/b"))
		if err != nil {
			t.Fatalf("delete at the replica: %v", err)
		}
		v, err = pc.Get(ctx, []byte("fwd/b"), client.ReadOptions{MinIndex: i3})
		if !errors.Is(err, argent.ErrNotFound) || v.Index < i3 {
			t.Errorf("get at the replica with min_index=%d after delete: S=%d err %v; want not found at S >= %d", i3, v.Index, err, i3)
		}
		// A min_index the node cannot reach fails, it does not answer.
		v, err = pc.Get(ctx, []byte("fwd/b"), client.ReadOptions{MinIndex: i3 + 1000, Wait: 300 * time.Millisecond})
		if !errors.Is(err, argent.ErrTimeout) {
			t.Errorf("get at the replica with min_index=%d (not reached): value %q S=%d err %v; want a timeout error", i3+1000, v.Value, v.Index, err)
		}
	})
}

// checkErrorAnswer checks that resp is a 4xx with the JSON error body of
// docs/CONTRACT.md section 4, whose code goes with its status.
func checkErrorAnswer(t *testing.T, resp rawResponse) {
	t.Helper()
	if resp.status < 400 || resp.status >= 500 {
		t.Errorf("status %d, want a 4xx; body %.300q", resp.status, resp.body)
		return
	}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Error == nil {
		t.Errorf("status %d with body %.300q, want {\"error\":{\"code\":...,\"message\":...}} (%v)", resp.status, resp.body, err)
		return
	}
	if body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("status %d: error body %.300q lacks a code or a message", resp.status, resp.body)
	}
	if want := client.HTTPStatus(body.Error.Code); want != resp.status {
		t.Errorf("status %d with code %q, which goes with status %d", resp.status, body.Error.Code, want)
	}
	t.Logf("%d %s: %.120s", resp.status, body.Error.Code, body.Error.Message)
}
