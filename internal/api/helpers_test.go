package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
)

// fakeBackend is a Backend over a real kv.Store on an in-memory disk. Its
// Write commits straight to the store and checks conditions, but not the
// limits: the server must check them.
type fakeBackend struct {
	store  *kv.Store
	limits argent.Limits
	tier   string

	// writeFn, if set, replaces Write's commit.
	writeFn func(ctx context.Context, b argent.Batch) (argent.Index, error)

	mu     sync.Mutex // serialises Write
	writes atomic.Int64
}

var _ api.Backend = (*fakeBackend)(nil)

func newFakeBackend(t testing.TB, limits argent.Limits, kvOpts *kv.Options) *fakeBackend {
	t.Helper()
	if kvOpts == nil {
		kvOpts = &kv.Options{}
	}
	if kvOpts.FS == nil {
		kvOpts.FS = vfs.NewMem()
	}
	s, err := kv.Open("/db", kvOpts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &fakeBackend{store: s, limits: limits, tier: "root"}
}

func (f *fakeBackend) Reader() api.Reader { return f.store }

func (f *fakeBackend) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	f.writes.Add(1)
	if f.writeFn != nil {
		return f.writeFn(ctx, b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.store.NewWriter()
	defer w.Discard()
	for _, c := range b.Conditions {
		got, err := w.ModIndex(c.Key)
		if err != nil {
			return 0, err
		}
		if got != c.ModIndex {
			return 0, &argent.ConditionError{Key: c.Key, Want: c.ModIndex, Got: got}
		}
	}
	e, err := w.Append(b.Ops, time.Now())
	if err != nil {
		return 0, err
	}
	if err := w.Commit(); err != nil {
		return 0, err
	}
	return e.Index, nil
}

func (f *fakeBackend) Status() apiwire.StatusResponse {
	return apiwire.StatusResponse{
		Role:         "root",
		NodeID:       "n1",
		DatasetID:    f.store.Dataset().String(),
		AppliedIndex: f.store.Applied(),
		RootIndex:    f.store.Applied(),
	}
}

func (f *fakeBackend) Tier() string          { return f.tier }
func (f *fakeBackend) Limits() argent.Limits { return f.limits }

// commit appends one entry of ops to the store directly, at time t (zero:
// now), and returns its index.
func (f *fakeBackend) commitAt(tb testing.TB, t time.Time, ops ...argent.Op) argent.Index {
	tb.Helper()
	i, err := f.tryCommitAt(t, ops...)
	if err != nil {
		tb.Fatal(err)
	}
	return i
}

// tryCommitAt is commitAt returning its error, for goroutines other than
// the test's.
func (f *fakeBackend) tryCommitAt(t time.Time, ops ...argent.Op) (argent.Index, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.IsZero() {
		t = time.Now()
	}
	w := f.store.NewWriter()
	e, err := w.Append(ops, t)
	if err != nil {
		w.Discard()
		return 0, fmt.Errorf("append: %w", err)
	}
	if err := w.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return e.Index, nil
}

func (f *fakeBackend) commit(tb testing.TB, ops ...argent.Op) argent.Index {
	tb.Helper()
	return f.commitAt(tb, time.Time{}, ops...)
}

// commitLater commits each batch in turn on another goroutine, pause
// before each, and returns a func that waits for it to end. The test must
// call it (with defer, so that a failure waits too) before it returns: a
// commit after the store closed panics ("pebble: closed"), and the writer
// must not outlive the test.
func commitLater(t *testing.T, f *fakeBackend, pause time.Duration, batches ...[]argent.Op) (wait func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for _, ops := range batches {
			time.Sleep(pause)
			if _, err := f.tryCommitAt(time.Time{}, ops...); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return sync.OnceFunc(func() {
		if err := <-errc; err != nil {
			t.Errorf("commit in the background: %v", err)
		}
	})
}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }

func delPrefix(k string) argent.Op { return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(k)} }

// testServer is an api.Server over a fakeBackend behind a real HTTP server.
type testServer struct {
	*httptest.Server
	b   *fakeBackend
	api *api.Server
	reg *prometheus.Registry
}

type serverConfig struct {
	opts   api.Options
	limits argent.Limits
	kv     *kv.Options
	// wrap, if set, gives the Backend the server sees in place of the
	// fakeBackend.
	wrap func(*fakeBackend) api.Backend
}

func newTestServer(t testing.TB, configure ...func(*serverConfig)) *testServer {
	t.Helper()
	cfg := serverConfig{}
	for _, c := range configure {
		c(&cfg)
	}
	b := newFakeBackend(t, cfg.limits, cfg.kv)
	reg := prometheus.NewRegistry()
	cfg.opts.Registry = reg
	var backend api.Backend = b
	if cfg.wrap != nil {
		backend = cfg.wrap(b)
	}
	srv := api.New(backend, cfg.opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return &testServer{Server: hs, b: b, api: srv, reg: reg}
}

// do sends a request and returns the response with its body read.
func (ts *testServer) do(t testing.TB, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

func (ts *testServer) doString(t testing.TB, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return ts.do(t, method, path, r)
}

// decodeError checks that body is a JSON error and returns its detail.
func decodeError(t testing.TB, resp *http.Response, body []byte) apiwire.ErrorDetail {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json (body %q)", ct, body)
	}
	var eb apiwire.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q is not an ErrorBody: %v", body, err)
	}
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Errorf("error body %q lacks a code or message", body)
	}
	return eb.Error
}

func decodeJSON[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, body, err)
	}
	return v
}

// watchConn is an open watch stream.
type watchConn struct {
	t      testing.TB
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
	lines  chan watchRead
}

type watchRead struct {
	line apiwire.WatchLine
	raw  string
	err  error
}

// watch opens GET /v1/watch with the raw query and fails the test unless the
// answer is 200.
func (ts *testServer) watch(t testing.TB, query string) *watchConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/watch?"+query, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("watch %s: %v", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("watch %s: status %d: %s", query, resp.StatusCode, b)
	}
	wc := &watchConn{t: t, resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel, lines: make(chan watchRead)}
	wc.sc.Buffer(nil, 64<<20)
	go func() {
		defer close(wc.lines)
		for wc.sc.Scan() {
			var l apiwire.WatchLine
			raw := wc.sc.Text()
			err := json.Unmarshal(wc.sc.Bytes(), &l)
			select {
			case wc.lines <- watchRead{line: l, raw: raw, err: err}:
			case <-ctx.Done():
				return
			}
		}
		select {
		case wc.lines <- watchRead{err: io.EOF}:
		case <-ctx.Done():
		}
	}()
	t.Cleanup(wc.close)
	return wc
}

func (wc *watchConn) close() {
	wc.cancel()
	wc.resp.Body.Close()
}

// next returns the next line, failing the test after 5 s.
func (wc *watchConn) next() apiwire.WatchLine {
	wc.t.Helper()
	l, err := wc.nextErr()
	if err != nil {
		wc.t.Fatalf("watch: %v", err)
	}
	return l
}

func (wc *watchConn) nextErr() (apiwire.WatchLine, error) {
	wc.t.Helper()
	select {
	case r, ok := <-wc.lines:
		if !ok {
			return apiwire.WatchLine{}, io.EOF
		}
		if r.err != nil {
			return apiwire.WatchLine{}, r.err
		}
		return r.line, nil
	case <-time.After(5 * time.Second):
		wc.t.Fatalf("watch: no line within 5s")
	}
	return apiwire.WatchLine{}, nil
}

// nextBatch returns the next batch line, skipping progress markers, and
// fails the test if none comes within 5 s: markers keep coming while a
// batch is missing, so skipping them alone would never end.
func (wc *watchConn) nextBatch() apiwire.WatchLine {
	wc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := wc.next()
		if !l.Progress {
			return l
		}
		if time.Now().After(deadline) {
			wc.t.Fatalf("watch: no batch within 5s, only progress markers (the last at %d)", l.Index)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
