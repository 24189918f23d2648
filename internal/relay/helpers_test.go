package relay_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/relay"
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
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
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
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: ups, LookupTimeout: 5 * time.Second})
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
