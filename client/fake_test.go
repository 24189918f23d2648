package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// fakeNode is a small in-memory argent node serving the client HTTP API, for
// the tests of the client. It checks conditions, keeps the log for watches and
// waits for min_index.
type fakeNode struct {
	tier string

	mu struct {
		sync.Mutex
		index  argent.Index
		data   map[string]fakeValue
		log    []client.WatchLine // log[i] is the batch at index i+1
		notify chan struct{}      // closed and replaced at each commit
	}
}

type fakeValue struct {
	value []byte
	mod   argent.Index
}

// newFake starts a fake node and returns it with a client for it.
func newFake(t *testing.T) (*fakeNode, *client.Client) {
	t.Helper()
	f := &fakeNode{tier: "fake"}
	f.mu.data = map[string]fakeValue{}
	f.mu.notify = make(chan struct{})
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, mustNew(t, srv.URL)
}

func mustNew(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addr, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", addr, err)
	}
	return c
}

func (f *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/kv/{key...}", f.get)
	mux.HandleFunc("PUT /v1/kv/{key...}", f.put)
	mux.HandleFunc("DELETE /v1/kv/{key...}", f.del)
	mux.HandleFunc("GET /v1/kv", f.scan)
	mux.HandleFunc("POST /v1/mget", f.mget)
	mux.HandleFunc("POST /v1/txn", f.txn)
	mux.HandleFunc("GET /v1/watch", f.watch)
	mux.HandleFunc("GET /v1/status", f.status)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	status, body := client.NewErrorBody(err)
	writeJSON(w, status, body)
}

// commit applies b under f.mu, checking its conditions, and returns its index.
func (f *fakeNode) commit(b argent.Batch) (argent.Index, error) {
	if err := (argent.Limits{}).CheckBatch(&b); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range b.Conditions {
		if got := f.mu.data[string(c.Key)].mod; got != c.ModIndex {
			return 0, &argent.ConditionError{Key: c.Key, Want: c.ModIndex, Got: got}
		}
	}
	f.mu.index++
	idx := f.mu.index
	for _, op := range b.Ops {
		switch op.Type {
		case argent.OpPut:
			f.mu.data[string(op.Key)] = fakeValue{value: bytes.Clone(op.Value), mod: idx}
		case argent.OpDelete:
			delete(f.mu.data, string(op.Key))
		case argent.OpDeletePrefix:
			for k := range f.mu.data {
				if strings.HasPrefix(k, string(op.Key)) {
					delete(f.mu.data, k)
				}
			}
		}
	}
	f.mu.log = append(f.mu.log, client.NewWatchLine(idx, b.Ops))
	close(f.mu.notify)
	f.mu.notify = make(chan struct{})
	return idx, nil
}

// waitFor waits until the state reaches the min_index of r, as the wait of r
// allows, and returns with f.mu held.
func (f *fakeNode) waitFor(r *http.Request) error {
	var min argent.Index
	if s := r.URL.Query().Get("min_index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: min_index %q", argent.ErrInvalid, s)
		}
		min = argent.Index(n)
	}
	wait := 5 * time.Second
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%w: wait %q", argent.ErrInvalid, s)
		}
		wait = d
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	f.mu.Lock()
	for f.mu.index < min {
		ch := f.mu.notify
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("min_index %d: %w", min, argent.ErrTimeout)
		case <-r.Context().Done():
			return r.Context().Err()
		}
		f.mu.Lock()
	}
	return nil
}

func (f *fakeNode) get(w http.ResponseWriter, r *http.Request) {
	if err := f.waitFor(r); err != nil {
		writeErr(w, err)
		return
	}
	v, ok := f.mu.data[r.PathValue("key")]
	idx := f.mu.index
	f.mu.Unlock()
	w.Header().Set(client.HeaderIndex, strconv.FormatUint(uint64(idx), 10))
	w.Header().Set(client.HeaderTier, f.tier)
	if !ok {
		writeErr(w, argent.ErrNotFound)
		return
	}
	w.Header().Set(client.HeaderModIndex, strconv.FormatUint(uint64(v.mod), 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(v.value)
}

func (f *fakeNode) put(w http.ResponseWriter, r *http.Request) {
	value, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	f.writeBatch(w, argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(r.PathValue("key")), Value: value}}})
}

func (f *fakeNode) del(w http.ResponseWriter, r *http.Request) {
	f.writeBatch(w, argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte(r.PathValue("key"))}}})
}

func (f *fakeNode) txn(w http.ResponseWriter, r *http.Request) {
	var req client.TxnRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, fmt.Errorf("%w: %v", argent.ErrInvalid, err))
		return
	}
	b, err := req.Batch()
	if err != nil {
		writeErr(w, err)
		return
	}
	f.writeBatch(w, b)
}

func (f *fakeNode) writeBatch(w http.ResponseWriter, b argent.Batch) {
	idx, err := f.commit(b)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.IndexResponse{Index: idx})
}

func (f *fakeNode) mget(w http.ResponseWriter, r *http.Request) {
	var req client.MGetRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, fmt.Errorf("%w: %v", argent.ErrInvalid, err))
		return
	}
	if err := f.waitFor(r); err != nil {
		writeErr(w, err)
		return
	}
	out := client.MGetResponse{Index: f.mu.index, Items: make([]client.Item, len(req.Keys))}
	for i, k := range req.Keys {
		v, ok := f.mu.data[k]
		if !ok {
			out.Items[i] = client.Item{Key: k, Absent: true}
			continue
		}
		out.Items[i] = client.Item{Key: k, Value: v.value, ModIndex: v.mod}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeNode) scan(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("after")
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeErr(w, fmt.Errorf("%w: limit %q", argent.ErrInvalid, s))
			return
		}
		limit = n
	}
	if err := f.waitFor(r); err != nil {
		writeErr(w, err)
		return
	}
	var keys []string
	for k := range f.mu.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	page := client.ScanPage{Index: f.mu.index, Items: []client.Item{}}
	for i, k := range keys {
		if i == limit {
			page.Next = keys[i-1]
			break
		}
		v := f.mu.data[k]
		page.Items = append(page.Items, client.Item{Key: k, Value: v.value, ModIndex: v.mod})
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, page)
}

// watch streams the batches from "from" on, filtered by prefix, and a
// progress marker whenever it has been idle for 20ms.
func (f *fakeNode) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := q.Get("prefix")
	from, err := strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil {
		writeErr(w, fmt.Errorf("%w: from %q", argent.ErrInvalid, q.Get("from")))
		return
	}
	f.mu.Lock()
	if from == 0 {
		from = uint64(f.mu.index) + 1
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher := w.(http.Flusher)
	flusher.Flush()
	next := argent.Index(from)
	for {
		f.mu.Lock()
		lines := f.mu.log[min(int(next-1), len(f.mu.log)):]
		idx, ch := f.mu.index, f.mu.notify
		f.mu.Unlock()
		for _, l := range lines {
			var ops []client.TxnOp
			for _, op := range l.Ops {
				if strings.HasPrefix(op.Key, prefix) {
					ops = append(ops, op)
				}
			}
			if len(ops) > 0 {
				if enc.Encode(client.WatchLine{Index: l.Index, Ops: ops}) != nil {
					return
				}
			}
		}
		next = idx + 1
		flusher.Flush()
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
			if enc.Encode(client.NewProgressLine(idx)) != nil {
				return
			}
			flusher.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeNode) status(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	idx := f.mu.index
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"role":          "replica",
		"node_id":       "n1",
		"dataset_id":    "00112233445566778899aabbccddeeff",
		"applied_index": idx,
		"root_index":    idx + 2,
		"lag_seconds":   0.004,
		"upstream":      "10.0.0.1:7400",
		"children": []any{
			map[string]any{"addr": "10.0.0.3:7400", "node_id": "n3", "applied_index": idx, "lag_seconds": 0.5, "extra": true},
			"10.0.0.4:7400",
		},
		"unknown_field": 1,
	})
}
