package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/relay"
)

// filterHeaders are the headers that say which state a filter stands for.
var filterHeaders = []string{apiwire.HeaderIndex, lookup.HeaderTime, lookup.HeaderChain}

// getFilter asks addr (host:port) for its filter, with query q ("" or
// "?min_index=N"), and fails unless it answers 200.
func getFilter(t *testing.T, addr, q string) (http.Header, []byte) {
	t.Helper()
	resp, body := httpGet(t, "http://"+addr+lookup.FilterPath+q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("filter%s from %s: %d %s", q, addr, resp.StatusCode, body)
	}
	return resp.Header, body
}

// sameFilter fails unless the relay's filter answer is the replica's.
func sameFilter(t *testing.T, gotH http.Header, got []byte, wantH http.Header, want []byte) {
	t.Helper()
	for _, h := range filterHeaders {
		if gotH.Get(h) != wantH.Get(h) || gotH.Get(h) == "" {
			t.Fatalf("%s: relay %q, replica %q", h, gotH.Get(h), wantH.Get(h))
		}
	}
	if !bytes.Equal(got, want) || gotH.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("relay's filter (%d bytes, %s) differs from the replica's (%d bytes)", len(got), gotH.Get("Content-Type"), len(want))
	}
}

// The relay serves its replica's filter with the same state headers, asks
// for it once while it is younger than FilterMaxAge, and asks again for a
// min_index the filter it has is older than.
func TestRelay_Filter(t *testing.T) {
	st := newStore(t, ds)
	for i := range 20 {
		commit(t, st, put(fmt.Sprintf("k/%02d", i), "v"))
	}
	rep := serveStore(t, st, nil)
	_, addr := startRelay(t, ds, rep.addr())

	h, body := getFilter(t, addr, "")
	wantH, want := getFilter(t, rep.addr(), "")
	sameFilter(t, h, body, wantH, want)
	if s := st.State(); h.Get(apiwire.HeaderIndex) != "20" || h.Get(lookup.HeaderTime) != strconv.FormatInt(s.Time, 10) {
		t.Fatalf("filter as of %s at time %s, want the replica's state 20 at %d", h.Get(apiwire.HeaderIndex), h.Get(lookup.HeaderTime), s.Time)
	}
	// The client's view: the state the filter stands for, chain and all.
	if _, fs, err := lookupClient(t, addr, ds).Filter(t.Context(), 0); err != nil || fs != st.State() {
		t.Fatalf("Filter = state %+v, %v; want %+v", fs, err, st.State())
	}
	if n := rep.filters.Load(); n != 1 {
		t.Fatalf("the relay asked its replica for %d filters, want 1", n)
	}

	// Newer entries, and a min_index the cached filter is not as new as:
	// a new filter, fetched.
	for i := range 3 {
		commit(t, st, put(fmt.Sprintf("n/%d", i), "v"))
	}
	h2, body2 := getFilter(t, addr, "?min_index=23")
	if n := rep.filters.Load(); n != 2 {
		t.Fatalf("after min_index=23 the relay asked for %d filters, want 2", n)
	}
	if got := h2.Get(apiwire.HeaderIndex); got != "23" {
		t.Fatalf("filter for min_index=23 is as of %s", got)
	}
	wantH2, want2 := getFilter(t, rep.addr(), "?min_index=23")
	sameFilter(t, h2, body2, wantH2, want2)

	// Within the cache time, any request the new filter satisfies is
	// served from it.
	for _, q := range []string{"", "?min_index=5", "?min_index=23"} {
		h3, body3 := getFilter(t, addr, q)
		sameFilter(t, h3, body3, wantH2, want2)
	}
	if n := rep.filters.Load(); n != 2 {
		t.Fatalf("cached filter: the relay asked for %d filters, want 2", n)
	}
}

// After FilterMaxAge the relay asks for a new filter.
func TestRelay_FilterExpires(t *testing.T) {
	st := newStore(t, ds)
	commit(t, st, put("k", "v"))
	rep := serveStore(t, st, nil)
	const maxAge = 50 * time.Millisecond
	_, addr := startRelayWith(t, ds, relay.Config{Upstreams: []string{rep.addr()}, FilterMaxAge: maxAge})
	start := time.Now()
	getFilter(t, addr, "")
	waitFor(t, time.Second, func() error {
		getFilter(t, addr, "")
		if n := rep.filters.Load(); n != 2 {
			return fmt.Errorf("the relay asked for %d filters in all, want 2", n)
		}
		return nil
	})
	if d := time.Since(start); d < maxAge {
		t.Fatalf("the relay asked again after %v, before FilterMaxAge %v", d, maxAge)
	}
}

// Proxies that ask together, with no filter cached, cost the replica one
// filter.
func TestRelay_FilterSharedFetch(t *testing.T) {
	st := newStore(t, ds)
	commit(t, st, put("k", "v"))
	rep := serveStore(t, st, nil)
	const n = 8
	var arrived atomic.Int64
	release := make(chan struct{})
	rep.holdFilter = func() { <-release }
	releaseAll := sync.OnceFunc(func() { close(release) })
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: []string{rep.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.Ring().AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rl.Register(mux)
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(rl.Close)
	t.Cleanup(releaseAll) // first, should the test fail: the servers wait for held requests

	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + srv + lookup.FilterPath)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if bodies[i], err = io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("filter: %d %s, %v", resp.StatusCode, bodies[i], err)
			}
		}()
	}
	waitFor(t, 5*time.Second, func() error {
		if got := arrived.Load(); got != n {
			return fmt.Errorf("%d of %d requests arrived", got, n)
		}
		return nil
	})
	releaseAll()
	wg.Wait()
	if got := rep.filters.Load(); got != 1 {
		t.Fatalf("%d proxies asking together cost %d filters, want 1", n, got)
	}
	for i := range bodies {
		if !bytes.Equal(bodies[i], bodies[0]) || len(bodies[i]) == 0 {
			t.Fatalf("proxy %d got another filter", i)
		}
	}
}

// When no upstream gives a filter, the relay answers 503 with the API's
// JSON error, and 400 for a bad min_index without asking.
func TestRelay_FilterErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ups    func(t *testing.T) []string
		query  string
		status int
		code   string
	}{
		{"Down", func(t *testing.T) []string { return []string{downAddr(t)} }, "", http.StatusServiceUnavailable, apiwire.CodeUnavailable},
		{"NoData", func(t *testing.T) []string {
			return []string{statusReplica(t, http.StatusServiceUnavailable, apiwire.CodeUnavailable)}
		}, "", http.StatusServiceUnavailable, apiwire.CodeUnavailable},
		{"DownAndNoData", func(t *testing.T) []string {
			return []string{downAddr(t), statusReplica(t, http.StatusServiceUnavailable, apiwire.CodeUnavailable)}
		}, "", http.StatusServiceUnavailable, apiwire.CodeUnavailable},
		{"BadMinIndex", func(t *testing.T) []string { return []string{downAddr(t)} }, "?min_index=x", http.StatusBadRequest, apiwire.CodeInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startRelay(t, ds, tt.ups(t)...)
			resp, body := httpGet(t, "http://"+addr+lookup.FilterPath+tt.query)
			if resp.StatusCode != tt.status || errorCode(body) != tt.code || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("filter = %d %s (%s), want %d %s JSON", resp.StatusCode, body, resp.Header.Get("Content-Type"), tt.status, tt.code)
			}
		})
	}
}

// A relay with no state yet refuses a filter request (503), and one of
// another dataset (409).
func TestRelay_FilterAdmission(t *testing.T) {
	st := newStore(t, ds)
	commit(t, st, put("k", "v"))
	rep := serveStore(t, st, nil)
	rl, err := relay.New(relay.Config{NodeID: "relay", Upstreams: []string{rep.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rl.Register(mux)
	addr := newLocalServer(t, mux)
	t.Cleanup(rl.Close)
	resp, body := httpGet(t, "http://"+addr+lookup.FilterPath)
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(body) != apiwire.CodeUnavailable {
		t.Fatalf("filter from a relay with no data = %d %.200q", resp.StatusCode, body)
	}
	if err := rl.Ring().AdoptDataset(ds); err != nil {
		t.Fatal(err)
	}
	_, _, err = lookupClient(t, addr, argent.DatasetID{1}).Filter(t.Context(), 0)
	if !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Fatalf("filter for another dataset = %v", err)
	}
	if n := rep.filters.Load(); n != 0 {
		t.Fatalf("refused requests cost %d filters", n)
	}
}

// The filter the relay serves is at least as new as the oldest state its
// log can feed a child from, so that a proxy starting over with it can
// follow the relay: an upstream behind that state is passed over, and with
// none ahead of it the relay answers 503.
func TestRelay_FilterFollowableFromRing(t *testing.T) {
	behind := newStore(t, ds)
	for i := range 20 {
		commit(t, behind, put(fmt.Sprintf("k/%02d", i), "v"))
	}
	ahead := newStore(t, ds)
	for i := range 60 {
		commit(t, ahead, put(fmt.Sprintf("k/%02d", i), "v"))
	}
	for _, tt := range []struct {
		name   string
		ups    []*kv.Store
		status int
		index  argent.Index
	}{
		{"BehindThenAhead", []*kv.Store{behind, ahead}, http.StatusOK, 60},
		{"OnlyBehind", []*kv.Store{behind}, http.StatusServiceUnavailable, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []string
			for _, st := range tt.ups {
				addrs = append(addrs, serveStore(t, st, nil).addr())
			}
			rl, addr := startRelayWith(t, ds, relay.Config{Upstreams: addrs, LogBuffer: 2000})
			// The ring holds the last few of 50 entries: a child can be
			// fed from the state before its first.
			apply(t, rl.Ring(), entries(argent.State{}, 50))
			from := rl.Ring().LogFirst() - 1
			if from <= 20 || from >= 50 {
				t.Fatalf("the ring feeds from %d; the test wants it between the upstreams' 20 and 60", from)
			}
			resp, body := httpGet(t, "http://"+addr+lookup.FilterPath)
			if resp.StatusCode != tt.status {
				t.Fatalf("filter = %d (Argent-Index %s), want %d", resp.StatusCode, resp.Header.Get(apiwire.HeaderIndex), tt.status)
			}
			if tt.status != http.StatusOK {
				if errorCode(body) != apiwire.CodeUnavailable {
					t.Fatalf("filter = %d %.200q, want unavailable", resp.StatusCode, body)
				}
				return
			}
			if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.FormatUint(uint64(tt.index), 10) {
				t.Fatalf("filter as of %s, want %d (the ring feeds from %d)", got, tt.index, from)
			}
		})
	}
}
