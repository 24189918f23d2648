package relay_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/relay"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// fakeReplica answers the lookup protocol from a map, as of
// min(at, applied), and counts what it is asked.
type fakeReplica struct {
	t       *testing.T
	ds      argent.DatasetID
	applied argent.Index
	values  map[string]string // present keys, written at index 1
	// gate, if set, holds every lookup until it is closed.
	gate chan struct{}
	// fail, if set, is the status every lookup gets (with its code).
	fail     int
	failCode string

	requests atomic.Int64 // lookup requests
	keys     atomic.Int64 // keys asked
	srv      *httptest.Server
}

func startReplica(t *testing.T, f *fakeReplica) *fakeReplica {
	t.Helper()
	f.t = t
	if f.applied == 0 {
		f.applied = 1 << 30
	}
	f.srv = httptest.NewServer(wirecheck.Handler(http.HandlerFunc(f.serve)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeReplica) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeReplica) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != lookup.LookupPath {
		http.NotFound(w, r)
		return
	}
	f.requests.Add(1)
	if got := r.Header.Get(lookup.HeaderDataset); got != f.ds.String() {
		f.t.Errorf("replica asked with dataset %q, want %s", got, f.ds)
	}
	if f.gate != nil {
		<-f.gate
	}
	at, _ := strconv.ParseUint(r.URL.Query().Get("at"), 10, 64)
	x := min(argent.Index(at), f.applied)
	idx := strconv.FormatUint(uint64(x), 10)
	if f.fail != 0 {
		w.Header().Set(apiwire.HeaderIndex, strconv.FormatUint(uint64(f.applied), 10))
		w.WriteHeader(f.fail)
		_ = json.NewEncoder(w).Encode(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: f.failCode, Message: "fake"}})
		return
	}
	if r.Method == http.MethodGet {
		f.keys.Add(1)
		w.Header().Set(apiwire.HeaderIndex, idx)
		v, ok := f.values[r.URL.Query().Get("key")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeNotFound, Message: "absent"}})
			return
		}
		w.Header().Set(apiwire.HeaderModIndex, "1")
		_, _ = w.Write([]byte(v))
		return
	}
	var req apiwire.MGetRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("replica: decode: %v", err)
	}
	f.keys.Add(int64(len(req.Keys)))
	out := apiwire.MGetResponse{Index: x}
	for _, k := range req.Keys {
		if v, ok := f.values[k]; ok {
			out.Items = append(out.Items, apiwire.Item{Key: k, Value: []byte(v), ModIndex: 1})
		} else {
			out.Items = append(out.Items, apiwire.Item{Key: k, Absent: true})
		}
	}
	w.Header().Set(apiwire.HeaderIndex, idx)
	_ = json.NewEncoder(w).Encode(out)
}

// startRelay serves a relay over ups (not following any log: its dataset
// is set by hand) on 127.0.0.1, and returns it with its address.
func startRelay(t *testing.T, ds argent.DatasetID, ups ...string) (*relay.Relay, string) {
	t.Helper()
	return startRelayWith(t, ds, relay.Config{Upstreams: ups})
}

// startRelayWith is startRelay with cfg (NodeID "relay" and a lookup
// timeout of 5 s unless cfg says otherwise).
func startRelayWith(t *testing.T, ds argent.DatasetID, cfg relay.Config) (*relay.Relay, string) {
	t.Helper()
	if cfg.NodeID == "" {
		cfg.NodeID = "relay"
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = 5 * time.Second
	}
	rl, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.Ring().AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rl.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		rl.Close()
		srv.Close()
	})
	return rl, strings.TrimPrefix(srv.URL, "http://")
}

// lookupClient is a proxy's client of the relay at addr.
func lookupClient(t *testing.T, addr string, ds argent.DatasetID) *lookup.Client {
	t.Helper()
	c, err := lookup.NewClient(addr, &lookup.ClientOptions{Dataset: ds})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls f until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storeReplica is a replica's store served on 127.0.0.1 as a replica node
// serves it: the lookup protocol (a real lookup.Server) and the pull
// protocol, on one address. It counts the scan and filter requests the
// relay sent it (those with the relay's User-Agent), not a test's own.
type storeReplica struct {
	st  *kv.Store
	lk  *lookup.Server
	srv *httptest.Server

	scans   atomic.Int64 // scan requests from a relay
	filters atomic.Int64 // filter requests from a relay
	// holdFilter, if set, is called before a relay's filter request is
	// served.
	holdFilter func()
}

// newStore returns an empty store of dataset ds on an in-memory disk.
func newStore(t *testing.T, ds argent.DatasetID) *kv.Store {
	t.Helper()
	st := pulltest.NewStore(t, kv.Options{})
	if _, err := st.AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	return st
}

// commit writes ops to st as its next index, at a commit time that
// depends on the index only (so that stores written alike have the same
// chain), and returns the index.
func commit(t *testing.T, st *kv.Store, ops ...argent.Op) argent.Index {
	t.Helper()
	w := st.NewWriter()
	e, err := w.Append(ops, time.Unix(1_800_000_000+int64(w.Next()), 0))
	if err != nil {
		w.Discard()
		t.Fatalf("append: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return e.Index
}

// serveStore serves st as a replica (lookups with cfg, nil for the
// defaults; the log with heartbeats every pulltest.Heartbeat) until the
// test ends.
func serveStore(t *testing.T, st *kv.Store, cfg *lookup.Config) *storeReplica {
	t.Helper()
	return serveStores(t, st, st, cfg)
}

// serveStores is serveStore with the log of logSt and the lookups of st:
// a replica whose log is of another history than its store.
func serveStores(t *testing.T, logSt, st *kv.Store, cfg *lookup.Config) *storeReplica {
	t.Helper()
	lk, err := lookup.NewServer(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &storeReplica{st: st, lk: lk}
	ps := pull.NewServer(pull.ServerConfig{Source: logSt, NodeID: "replica", Root: storeClock{logSt}, Heartbeat: pulltest.Heartbeat})
	mux := http.NewServeMux()
	ps.Register(mux)
	mux.Handle(lookup.FilterPath, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.UserAgent() == "argent-relay" {
			r.filters.Add(1)
			if r.holdFilter != nil {
				r.holdFilter()
			}
		}
		lk.ServeHTTP(w, req)
	}))
	mux.Handle(lookup.ScanPath, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.UserAgent() == "argent-relay" {
			r.scans.Add(1)
		}
		lk.ServeHTTP(w, req)
	}))
	mux.Handle(lookup.LookupPath, lk)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	t.Cleanup(ps.Close) // first: it ends the log streams srv.Close waits for
	return r
}

func (r *storeReplica) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// storeClock is the root's clock of a replica in tests: its own state.
type storeClock struct{ s *kv.Store }

func (c storeClock) Root() (argent.Index, int64) {
	st := c.s.State()
	return st.Index, st.Time
}

func (c storeClock) RootSent() int64 { return time.Now().UnixNano() }

// statusReplica answers every request with status and the API's JSON
// error of code, as a replica with no data (503) or one that fails.
func statusReplica(t *testing.T, status int, code string) string {
	t.Helper()
	srv := httptest.NewServer(wirecheck.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: code, Message: "fake"}})
	})))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// downAddr returns an address on 127.0.0.1 where nothing listens.
func downAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	a := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	return a
}

// httpGet sends a GET to url and returns the answer with its body read.
func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// errorCode returns the code of an API JSON error body, "" if b is none.
func errorCode(b []byte) string {
	var e apiwire.ErrorBody
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// newLocalServer serves h on 127.0.0.1 until the test ends and returns its
// address.
func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
