package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// apiCase is one request of TestOpenAPI_RealAnswers and the status it must
// get.
type apiCase struct {
	name   string
	addr   string // host:port of the node asked
	method string
	path   string // the URL path and query, as sent
	body   string
	// route is the path template of docs/openapi.yaml the request takes, and
	// params its path parameters; "" for an unknown path. The answer to an
	// unknown path, or to a method the path has no operation for, must be
	// an Error.
	route  string
	params map[string]string
	status int
	// badRequest marks a request that breaks the document on purpose, so
	// only its answer is validated.
	badRequest bool
}

// specValidator checks requests and answers against docs/openapi.yaml.
type specValidator struct {
	doc  *openapi3.T
	opts *openapi3filter.Options
	// seen is, per operation ID, the statuses validated; seenPath the same
	// per path template, wrong methods included.
	seen     map[string][]int
	seenPath map[string][]int
}

func loadSpec(t *testing.T) *specValidator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return &specValidator{
		doc:      doc,
		opts:     &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		seen:     map[string][]int{},
		seenPath: map[string][]int{},
	}
}

// check sends c and validates the request (unless c.badRequest) and the
// answer against the document. A watch stream is read for its first lines
// only, each validated as a WatchLine.
func (v *specValidator) check(t *testing.T, hc *http.Client, c apiCase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, "http://"+c.addr+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	switch {
	case c.body == "":
	case strings.HasPrefix(c.body, "{"):
		req.Header.Set("Content-Type", "application/json")
	default:
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	defer resp.Body.Close()
	body, err := readAnswer(resp)
	if err != nil {
		t.Errorf("%s: read the answer: %v", c.name, err)
		return
	}
	if resp.StatusCode != c.status {
		t.Errorf("%s: status %d, want %d; body %s", c.name, resp.StatusCode, c.status, body)
		return
	}
	var pathItem *openapi3.PathItem
	if c.route != "" {
		if pathItem = v.doc.Paths.Find(c.route); pathItem == nil {
			t.Fatalf("%s: no path %s in docs/openapi.yaml", c.name, c.route)
		}
		v.seenPath[c.route] = append(v.seenPath[c.route], resp.StatusCode)
	}
	var op *openapi3.Operation
	if pathItem != nil {
		op = pathItem.GetOperation(c.method)
	}
	if op == nil {
		if err := v.visit("Error", body); err != nil {
			t.Errorf("%s: the answer to a request outside the API is not an Error: %v\n%s", c.name, err, body)
		}
		return
	}
	reqIn := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: c.params,
		Route:      &routers.Route{Spec: v.doc, Path: c.route, PathItem: pathItem, Method: c.method, Operation: op},
		Options:    v.opts,
	}
	if !c.badRequest {
		req.Body = io.NopCloser(strings.NewReader(c.body))
		if err := openapi3filter.ValidateRequest(ctx, reqIn); err != nil {
			t.Errorf("%s: the request does not follow docs/openapi.yaml: %v", c.name, err)
		}
	}
	ndjson := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson")
	opts := *v.opts
	opts.ExcludeResponseBody = ndjson
	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &opts,
	}
	respIn.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, respIn); err != nil {
		t.Errorf("%s: the answer does not follow docs/openapi.yaml: %v\nheaders %v\nbody %s", c.name, err, resp.Header, body)
	}
	if ndjson {
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			if err := v.visit("WatchLine", line); err != nil {
				t.Errorf("%s: a watch line is not a WatchLine: %v\n%s", c.name, err, line)
			}
		}
	}
	v.seen[op.OperationID] = append(v.seen[op.OperationID], resp.StatusCode)
}

// visit validates a JSON document against a schema of the components.
func (v *specValidator) visit(schema string, doc []byte) error {
	ref := v.doc.Components.Schemas[schema]
	if ref == nil {
		return fmt.Errorf("no schema %s", schema)
	}
	var val any
	if err := json.Unmarshal(doc, &val); err != nil {
		return err
	}
	return ref.Value.VisitJSON(val)
}

// readAnswer reads a whole answer, or the first three lines of a watch
// stream (which does not end).
func readAnswer(resp *http.Response) ([]byte, error) {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		return io.ReadAll(resp.Body)
	}
	var out []byte
	br := bufio.NewReader(resp.Body)
	for range 3 {
		line, err := br.ReadBytes('\n')
		out = append(out, line...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Every endpoint of a real tree (root, replica, relay, proxies of a DC, a
// replica that never synced, a root that trimmed its log, a root group)
// answers as docs/openapi.yaml says, for successes and for errors, and every operation of the document
// is exercised with a 2xx and an error answer.
func TestOpenAPI_RealAnswers(t *testing.T) {
	skipShort(t)
	spec := loadSpec(t)
	tree := startDevTree(t)
	// A replica whose upstream never answers: not ready, and its writes find
	// no root.
	lost := cluster.StartReplica(t, []string{cluster.FreeAddr(t)})
	group := cluster.StartGroup(t, 3, cluster.GroupOptions{})
	leader := group.WaitLeader(30 * time.Second)
	var follower *cluster.Node
	for _, m := range group.Members {
		if m != leader {
			follower = m
		}
	}
	hc := rawHTTP(t)
	// A root that keeps 64 KiB of log: a watch from index 1 is compacted
	// once a few larger writes went through.
	trimmed := cluster.StartRoot(t, "--log-bytes", "64KiB", "--trim-interval", "100ms")
	for i := range 8 {
		req, err := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/big/%d", trimmed.URL(), i), bytes.NewReader(make([]byte, 32<<10)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("put big/%d at %s: %s", i, trimmed.Addr, resp.Status)
		}
	}
	cluster.WaitFor(t, 20*time.Second, func() error {
		m, err := scrapeMetrics(hc, trimmed)
		if err != nil {
			return err
		}
		if first := m["argent_log_first_index"]; first <= 1 {
			return fmt.Errorf("log of %s starts at %v", trimmed.Addr, first)
		}
		return nil
	})

	root, rep, px, relay := tree.Root, tree.Replica, tree.Proxy, tree.DC[1]
	kv := "/v1/kv/{key}"
	key := func(k string) map[string]string { return map[string]string{"key": k} }
	longKey := strings.Repeat("k", 1100)
	host := "egress/host/edge-0003.ams01.example.net"
	manyKeys := `{"keys":["` + strings.Repeat(`k","`, 10000) + `k"]}`
	cases := []apiCase{
		{name: "put at the root", addr: root, method: "PUT", path: "/v1/kv/config/a", body: "on", route: kv, params: key("config/a"), status: 200},
		{name: "put forwarded by a replica", addr: rep, method: "PUT", path: "/v1/kv/config/b", body: "green", route: kv, params: key("config/b"), status: 200},
		{name: "put of an empty key", addr: root, method: "PUT", path: "/v1/kv/", body: "x", route: kv, params: key(""), status: 400, badRequest: true},
		{name: "put of a long key", addr: root, method: "PUT", path: "/v1/kv/" + longKey, body: "x", route: kv, params: key(longKey), status: 413},
		{name: "put forwarded to no root", addr: lost.Addr, method: "PUT", path: "/v1/kv/config/a", body: "x", route: kv, params: key("config/a"), status: 503},
		{name: "get at the root", addr: root, method: "GET", path: "/v1/kv/config/a", route: kv, params: key("config/a"), status: 200},
		{name: "linearizable get at the root", addr: root, method: "GET", path: "/v1/kv/config/a?linearizable=true", route: kv, params: key("config/a"), status: 200},
		{name: "get at a replica, min_index", addr: rep, method: "GET", path: "/v1/kv/config/b?min_index=23", route: kv, params: key("config/b"), status: 200},
		{name: "get of an absent key", addr: rep, method: "GET", path: "/v1/kv/config/missing", route: kv, params: key("config/missing"), status: 404},
		{name: "get with a bad min_index", addr: rep, method: "GET", path: "/v1/kv/config/a?min_index=abc", route: kv, params: key("config/a"), status: 400, badRequest: true},
		{name: "get past the index reached", addr: rep, method: "GET", path: "/v1/kv/config/a?min_index=1000000&wait=50ms", route: kv, params: key("config/a"), status: 504},
		{name: "get of a long key", addr: rep, method: "GET", path: "/v1/kv/" + longKey, route: kv, params: key(longKey), status: 413},
		{name: "linearizable get at a replica", addr: rep, method: "GET", path: "/v1/kv/config/a?linearizable=true", route: kv, params: key("config/a"), status: 400},
		{name: "get at a replica not ready", addr: lost.Addr, method: "GET", path: "/v1/kv/config/a", route: kv, params: key("config/a"), status: 503},
		{name: "get at a proxy, window", addr: px, method: "GET", path: "/v1/kv/config/a?min_index=23", route: kv, params: key("config/a"), status: 200},
		{name: "get at a proxy, filter", addr: px, method: "GET", path: "/v1/kv/config/missing", route: kv, params: key("config/missing"), status: 404},
		{name: "get at a proxy, a miss", addr: px, method: "GET", path: "/v1/kv/" + host, route: kv, params: key(host), status: 200},
		{name: "get at a second proxy", addr: tree.DC[3], method: "GET", path: "/v1/kv/" + host, route: kv, params: key(host), status: 200},
		{name: "get at a relay", addr: relay, method: "GET", path: "/v1/kv/config/a", route: kv, params: key("config/a"), status: 405},
		{name: "delete at the root", addr: root, method: "DELETE", path: "/v1/kv/config/b", route: kv, params: key("config/b"), status: 200},
		{name: "delete of a long key", addr: rep, method: "DELETE", path: "/v1/kv/" + longKey, route: kv, params: key(longKey), status: 413},
		{name: "post to a key", addr: rep, method: "POST", path: "/v1/kv/config/a", route: kv, status: 405},
		{name: "unknown path", addr: rep, method: "GET", path: "/v1/nope", status: 404},

		{name: "scan at a replica", addr: rep, method: "GET", path: "/v1/kv?prefix=egress/dc/&limit=2", route: "/v1/kv", status: 200},
		{name: "scan at a proxy", addr: px, method: "GET", path: "/v1/kv?prefix=config/&min_index=24", route: "/v1/kv", status: 200},
		{name: "scan with a bad limit", addr: rep, method: "GET", path: "/v1/kv?prefix=config/&limit=many", route: "/v1/kv", status: 400, badRequest: true},
		{name: "scan past the index reached", addr: rep, method: "GET", path: "/v1/kv?prefix=config/&min_index=1000000&wait=50ms", route: "/v1/kv", status: 504},

		{name: "mget at a proxy", addr: px, method: "POST", path: "/v1/mget?min_index=24", body: `{"keys":["config/a","config/missing","` + host + `"]}`, route: "/v1/mget", status: 200},
		{name: "mget at a replica", addr: rep, method: "POST", path: "/v1/mget", body: `{"keys":["config/a"]}`, route: "/v1/mget", status: 200},
		{name: "mget with an unknown field", addr: rep, method: "POST", path: "/v1/mget", body: `{"keys":["a"],"key":"b"}`, route: "/v1/mget", status: 400, badRequest: true},
		{name: "mget of too many keys", addr: rep, method: "POST", path: "/v1/mget", body: manyKeys, route: "/v1/mget", status: 413, badRequest: true},
		{name: "mget past the index reached", addr: rep, method: "POST", path: "/v1/mget?min_index=1000000&wait=50ms", body: `{"keys":["a"]}`, route: "/v1/mget", status: 504},

		{name: "txn", addr: root, method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"config/owner","mod_index":0}],"ops":[{"op":"put","key":"config/owner","value":"YWxpY2U="},{"op":"delete_prefix","key":"tmp/"}]}`, route: "/v1/txn", status: 200},
		{name: "txn, condition failed", addr: root, method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"config/owner","mod_index":0}],"ops":[{"op":"put","key":"config/owner","value":"Ym9i"}]}`, route: "/v1/txn", status: 409},
		{name: "txn forwarded, condition failed", addr: rep, method: "POST", path: "/v1/txn", body: `{"conditions":[{"key":"config/owner","mod_index":0}],"ops":[{"op":"delete","key":"config/owner"}]}`, route: "/v1/txn", status: 409},
		{name: "txn with an unknown op", addr: root, method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"rename","key":"a"}]}`, route: "/v1/txn", status: 400, badRequest: true},
		{name: "txn of a long key", addr: root, method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"delete","key":"` + longKey + `"}]}`, route: "/v1/txn", status: 413},

		{name: "watch", addr: rep, method: "GET", path: "/v1/watch?prefix=config/&from=22", route: "/v1/watch", status: 200},
		{name: "watch at a proxy", addr: px, method: "GET", path: "/v1/watch?prefix=config/", route: "/v1/watch", status: 200},
		{name: "watch from a trimmed index", addr: trimmed.Addr, method: "GET", path: "/v1/watch?from=1", route: "/v1/watch", status: 410},
		{name: "post to watch", addr: rep, method: "POST", path: "/v1/watch", route: "/v1/watch", status: 405},
		{name: "watch from a bad index", addr: rep, method: "GET", path: "/v1/watch?from=yesterday", route: "/v1/watch", status: 400, badRequest: true},

		{name: "trace at a proxy", addr: px, method: "GET", path: "/v1/trace/" + host, route: "/v1/trace/{key}", params: key(host), status: 200},
		{name: "trace at a replica, absent", addr: rep, method: "GET", path: "/v1/trace/config/missing", route: "/v1/trace/{key}", params: key("config/missing"), status: 200},
		{name: "trace at the root", addr: root, method: "GET", path: "/v1/trace/config/a", route: "/v1/trace/{key}", params: key("config/a"), status: 200},
		{name: "trace of a long key", addr: px, method: "GET", path: "/v1/trace/" + longKey, route: "/v1/trace/{key}", params: key(longKey), status: 413},
		{name: "trace past the index reached", addr: px, method: "GET", path: "/v1/trace/config/a?min_index=1000000&wait=50ms", route: "/v1/trace/{key}", params: key("config/a"), status: 504},
		{name: "trace with a bad wait", addr: px, method: "GET", path: "/v1/trace/config/a?min_index=1&wait=soon", route: "/v1/trace/{key}", params: key("config/a"), status: 400},

		{name: "status of the root", addr: root, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "status of a replica", addr: rep, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "status of a proxy", addr: px, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "status of a relay", addr: relay, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "status of a replica not ready", addr: lost.Addr, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "status of a group member", addr: follower.Addr, method: "GET", path: "/v1/status", route: "/v1/status", status: 200},
		{name: "post to status", addr: rep, method: "POST", path: "/v1/status", route: "/v1/status", status: 405},

		{name: "metrics of a replica", addr: rep, method: "GET", path: "/metrics", route: "/metrics", status: 200},
		{name: "metrics of a proxy", addr: px, method: "GET", path: "/metrics", route: "/metrics", status: 200},
		{name: "delete metrics", addr: rep, method: "DELETE", path: "/metrics", route: "/metrics", status: 405},

		{name: "add a member", addr: leader.Addr, method: "POST", path: "/v1/members", body: fmt.Sprintf(`{"id":9,"addr":%q}`, cluster.FreeAddr(t)), route: "/v1/members", status: 200},
		{name: "add a member without an ID", addr: leader.Addr, method: "POST", path: "/v1/members", body: `{"addr":"127.0.0.1:1"}`, route: "/v1/members", status: 400, badRequest: true},
		{name: "add a member at a single root", addr: root, method: "POST", path: "/v1/members", body: `{"id":2,"addr":"127.0.0.1:1"}`, route: "/v1/members", status: 400},
		{name: "remove a member", addr: leader.Addr, method: "DELETE", path: "/v1/members/9", route: "/v1/members/{id}", params: map[string]string{"id": "9"}, status: 200},
		{name: "remove member 0", addr: leader.Addr, method: "DELETE", path: "/v1/members/0", route: "/v1/members/{id}", params: map[string]string{"id": "0"}, status: 400, badRequest: true},
		{name: "move the leadership", addr: leader.Addr, method: "POST", path: fmt.Sprintf("/v1/members/%d/leader", group.ID(follower)), route: "/v1/members/{id}/leader", params: map[string]string{"id": fmt.Sprint(group.ID(follower))}, status: 200},
		{name: "move the leadership at a single root", addr: root, method: "POST", path: "/v1/members/2/leader", route: "/v1/members/{id}/leader", params: map[string]string{"id": "2"}, status: 400},
	}
	for _, c := range cases {
		spec.check(t, hc, c)
	}

	// Every operation of the document was exercised with a success, and
	// every path with an error.
	isOK := func(s int) bool { return s < 300 }
	isErr := func(s int) bool { return s >= 400 }
	for path, item := range spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if st := spec.seen[op.OperationID]; !slices.ContainsFunc(st, isOK) {
				t.Errorf("%s %s (%s): validated statuses %v, want a 2xx among them", method, path, op.OperationID, st)
			}
		}
		if st := spec.seenPath[path]; !slices.ContainsFunc(st, isErr) {
			t.Errorf("%s: validated statuses %v, want an error among them", path, st)
		}
	}
}
