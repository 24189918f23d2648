package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// fakeNode serves /v1/status from st, which the test may swap.
func fakeNode(t *testing.T, st *atomic.Pointer[apiwire.StatusResponse]) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st.Load())
	}))
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://")
}

// TestOracle_LearnsAndRanks starts from one replica, learns the root from
// it and the root's other replicas from the root, and ranks them: same DC,
// healthy and at or past the index asked for first; the root, dead and
// other-DC replicas later, dead ones last (and forgotten after a while);
// proxies never.
func TestOracle_LearnsAndRanks(t *testing.T) {
	fixed := func(st apiwire.StatusResponse) *atomic.Pointer[apiwire.StatusResponse] {
		var p atomic.Pointer[apiwire.StatusResponse]
		p.Store(&st)
		return &p
	}
	rootSt := fixed(apiwire.StatusResponse{Role: "root", AppliedIndex: 100})
	root := fakeNode(t, rootSt)
	near := fakeNode(t, fixed(apiwire.StatusResponse{Role: "replica", DC: "ams", AppliedIndex: 100, Upstream: root}))
	behind := fakeNode(t, fixed(apiwire.StatusResponse{Role: "replica", DC: "ams", AppliedIndex: 50, Upstream: root}))
	far := fakeNode(t, fixed(apiwire.StatusResponse{Role: "replica", DC: "sin", AppliedIndex: 100, Upstream: root}))
	px := fakeNode(t, fixed(apiwire.StatusResponse{Role: "proxy", DC: "ams", AppliedIndex: 100, Upstream: near}))
	dead := "127.0.0.1:1" // nothing listens there
	children := []apiwire.StatusChild{
		{Addr: near, Role: "replica"}, {Addr: behind, Role: "replica"}, {Addr: far, Role: "replica"},
		{Addr: px, Role: "proxy"}, {Addr: dead, Role: "replica"},
	}
	rootSt.Store(&apiwire.StatusResponse{Role: "root", AppliedIndex: 100, Children: children})
	o, err := newOracle([]string{far}, "ams", http.DefaultClient, argent.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // far -> root -> its children -> their status
		o.refresh(context.Background())
	}
	var got []string
	for _, c := range o.order(90) {
		got = append(got, strings.TrimPrefix(c.Addr(), "http://"))
	}
	want := []string{near, behind, far, root, dead}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order = %v\nwant    %v (near, behind, far, root, dead)", got, want)
	}
	// The root stops naming the dead child (it is no longer connected).
	rootSt.Store(&apiwire.StatusResponse{Role: "root", AppliedIndex: 100, Children: children[:4]})
	o.forget = 0
	o.refresh(context.Background())
	for _, c := range o.order(90) {
		if strings.TrimPrefix(c.Addr(), "http://") == dead {
			t.Errorf("dead replica not forgotten after the forget time")
		}
	}
	reps := o.replicas()
	if len(reps) != 3 {
		t.Errorf("replicas for the follower = %v, want near, behind and far", reps)
	}
	for _, r := range reps {
		if r == px || r == root || r == dead {
			t.Errorf("replicas for the follower include %s", r)
		}
	}
}
