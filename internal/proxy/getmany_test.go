package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

var _ api.ManyReader = (*proxy.Proxy)(nil)

// checkMany reads keys with GetMany at the proxy's applied index and
// compares every value with the history. A failure is allowed only where
// allowFail says so, and must then be argent.ErrUnavailable. It reports
// whether the read succeeded.
func checkMany(t *testing.T, p *proxy.Proxy, h *history, keys []string, allowFail bool) bool {
	t.Helper()
	at := p.Applied()
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	vals, found, err := p.GetMany(context.Background(), bs, at)
	if err != nil {
		if !allowFail || !errors.Is(err, argent.ErrUnavailable) {
			t.Fatalf("mget %q at %d: %v", keys, at, err)
		}
		return false
	}
	if len(vals) != len(keys) || len(found) != len(keys) {
		t.Fatalf("mget of %d keys: %d values, %d found flags", len(keys), len(vals), len(found))
	}
	state := h.stateAt(at)
	for i, k := range keys {
		want, present := state[k]
		switch {
		case found[i] != present:
			t.Fatalf("mget at %d: key %q found %v (%q), want present %v (%q)", at, k, found[i], vals[i].Value, present, want)
		case present && string(vals[i].Value) != want:
			t.Fatalf("mget at %d: key %q = %q, want %q", at, k, vals[i].Value, want)
		case present && vals[i].ModIndex > at:
			t.Fatalf("mget at %d: key %q has mod index %d", at, k, vals[i].ModIndex)
		}
	}
	return true
}

// randomKeys returns 2 to 15 keys of k000..k(n-1), repeats allowed.
func randomKeys(rng *rand.Rand, n int) []string {
	keys := make([]string, 2+rng.IntN(14))
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", rng.IntN(n))
	}
	return keys
}

// TestProxy_GetManyAheadReplica moves a proxy with a small cache through a
// history while a replica ahead of it answers the misses of its mgets:
// every value is the value at the proxy's index.
func TestProxy_GetManyAheadReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	h := makeHistory(t, rng, 300, 60)
	ahead := newReplica(t, h, 300)
	p := newProxy(t, []string{ahead.addr}, 2<<10, window.Options{MaxBatches: 20})
	for at := 0; at < 300; at += 1 + rng.IntN(10) {
		apply(t, p, h, at, rng)
		for j := 0; j < 10; j++ {
			checkMany(t, p, h, randomKeys(rng, 70), false)
		}
	}
	if n := p.Stats().L3.Load(); n < 100 {
		t.Errorf("%d keys resolved at the replica, want at least 100", n)
	}
}

// TestProxy_GetManyBehindReplica gives the proxy only a replica that lags
// it by 0 to 40 batches, with a 20-batch window: an mget answers the value
// at the proxy's index when the window can prove the replica's answers
// still hold, and fails (never a wrong value) when it cannot.
func TestProxy_GetManyBehindReplica(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	h := makeHistory(t, rng, 300, 40)
	behind := newReplica(t, h, 0)
	// A failed mget waits MissWait: short, so that the test is.
	p := newProxyWith(t, 2<<10, proxy.Config{Replicas: []string{behind.addr}, Window: window.Options{MaxBatches: 20}, MissWait: 30 * time.Millisecond})
	ok, failed := 0, 0
	for at := 0; at < 300; at += 1 + rng.IntN(10) {
		apply(t, p, h, at, rng)
		behind.feed(t, h, max(at-rng.IntN(41), int(behind.st.Applied())))
		for j := 0; j < 10; j++ {
			if checkMany(t, p, h, randomKeys(rng, 50), true) {
				ok++
			} else {
				failed++
			}
		}
	}
	t.Logf("mgets: %d answered, %d failed", ok, failed)
	if ok == 0 || failed == 0 {
		t.Errorf("mgets: %d answered, %d failed; want some of each", ok, failed)
	}
	behind.feed(t, h, 300)
	for j := 0; j < 20; j++ {
		checkMany(t, p, h, randomKeys(rng, 50), false)
	}
}

// lookupCounter sits in front of a lookup server and counts its lookups:
// single-key GETs, and many-key POSTs with the keys of each. While hold is
// set, GETs wait until it is closed.
type lookupCounter struct {
	mu    sync.Mutex
	gets  int
	posts [][]string
	hold  chan struct{}
	got   chan struct{} // a token for each GET received
}

func newLookupCounter() *lookupCounter { return &lookupCounter{got: make(chan struct{}, 100)} }

func (c *lookupCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == lookup.LookupPath {
			switch r.Method {
			case http.MethodGet:
				c.mu.Lock()
				c.gets++
				hold := c.hold
				c.mu.Unlock()
				c.got <- struct{}{}
				if hold != nil {
					<-hold
				}
			case http.MethodPost:
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				var req apiwire.MGetRequest
				if err := json.Unmarshal(body, &req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				c.mu.Lock()
				c.posts = append(c.posts, req.Keys)
				c.mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// counts returns the GETs and the keys of each POST so far.
func (c *lookupCounter) counts() (gets int, posts [][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, slices.Clone(c.posts)
}

// keysNotInWindow returns the keys of k000..k(n-1) the history's last
// entry did not write (a window of one batch holds only that entry), and m
// keys that were never written.
func keysNotInWindow(h *history, n, m int) []string {
	last := map[string]bool{}
	for _, op := range h.entries[len(h.entries)-1].Ops {
		last[string(op.Key)] = true
	}
	var keys []string
	for i := 0; i < n; i++ {
		if k := fmt.Sprintf("k%03d", i); !last[k] {
			keys = append(keys, k)
		}
	}
	for i := 0; i < m; i++ {
		keys = append(keys, fmt.Sprintf("never-%d", i))
	}
	return keys
}

// TestProxy_GetManyOneLookup reads keys that all miss in one mget: the
// replica gets one many-key lookup with every one of them, and no
// single-key lookup. A second mget of the same keys is answered by the
// cache, with no lookup at all.
func TestProxy_GetManyOneLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	h := makeHistory(t, rng, 100, 60)
	cnt := newLookupCounter()
	r := newReplicaWith(t, h, 100, cnt.wrap)
	p := newProxy(t, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	apply(t, p, h, 100, rng)
	keys := keysNotInWindow(h, 60, 20)
	checkMany(t, p, h, append(keys, keys[0], keys[1]), false) // repeats are asked once
	gets, posts := cnt.counts()
	if gets != 0 || len(posts) != 1 {
		t.Fatalf("mget of %d missing keys: %d single-key and %d many-key lookups, want 0 and 1", len(keys), gets, len(posts))
	}
	if got := slices.Sorted(slices.Values(posts[0])); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("the many-key lookup asked for %q, want %q", got, keys)
	}
	if n := p.Stats().L3.Load(); n != uint64(len(keys)+2) { // a repeat is a read too
		t.Errorf("%d reads answered at L3, want %d", n, len(keys)+2)
	}
	checkMany(t, p, h, keys, false)
	if gets, posts := cnt.counts(); gets != 0 || len(posts) != 1 {
		t.Errorf("mget of cached keys: lookups went to %d single-key and %d many-key lookups in all, want 0 and 1", gets, len(posts))
	}
}

// TestProxy_GetManySharesFlights reads a key that misses, and while its
// lookup is under way an mget of it and two other missing keys: the mget
// asks the replica for the other two only and takes the first key's answer
// from the lookup under way.
func TestProxy_GetManySharesFlights(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	h := makeHistory(t, rng, 100, 60)
	cnt := newLookupCounter()
	cnt.hold = make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(cnt.hold) }) })
	r := newReplicaWith(t, h, 100, cnt.wrap)
	p := newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{r.addr}, Window: window.Options{MaxBatches: 1}, MissWait: 10 * time.Second})
	apply(t, p, h, 100, rng)
	keys := keysNotInWindow(h, 60, 0)[:3]
	at := p.Applied()

	type answer struct {
		vals  []argent.Value
		found []bool
		tier  string
		err   error
	}
	single := make(chan answer, 1)
	go func() {
		v, tier, err := p.GetTier(context.Background(), []byte(keys[0]), at)
		single <- answer{vals: []argent.Value{v}, found: []bool{err == nil}, tier: tier, err: err}
	}()
	select {
	case <-cnt.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the single-key lookup did not reach the replica")
	}
	many := make(chan answer, 1)
	go func() {
		vals, found, err := p.GetMany(context.Background(), [][]byte{[]byte(keys[0]), []byte(keys[1]), []byte(keys[2])}, at)
		many <- answer{vals: vals, found: found, err: err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, posts := cnt.counts(); len(posts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mget's lookup did not reach the replica")
		}
		time.Sleep(time.Millisecond)
	}
	release.Do(func() { close(cnt.hold) })
	state := h.stateAt(at)
	check := func(what string, a answer, keys []string) {
		t.Helper()
		if a.err != nil && !errors.Is(a.err, argent.ErrNotFound) {
			t.Fatalf("%s: %v", what, a.err)
		}
		for i, k := range keys {
			want, present := state[k]
			if a.found[i] != present || string(a.vals[i].Value) != want {
				t.Errorf("%s: %q = %q (found %v), want %q (present %v)", what, k, a.vals[i].Value, a.found[i], want, present)
			}
		}
	}
	s := <-single
	check("single read", s, keys[:1])
	if s.tier != proxy.TierL3 {
		t.Errorf("single read answered by %s, want %s", s.tier, proxy.TierL3)
	}
	check("mget", <-many, keys)
	gets, posts := cnt.counts()
	if gets != 1 || len(posts) != 1 || !slices.Equal(slices.Sorted(slices.Values(posts[0])), keys[1:]) {
		t.Errorf("lookups: %d single-key, many-key %q; want 1 and one of %q", gets, posts, keys[1:])
	}
}
