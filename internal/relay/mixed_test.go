package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// version is a value a key took at an index.
type version struct {
	mod   argent.Index
	value string
}

// historyReplica answers lookups as of min(at, applied) from the versions
// of its keys, with applied set by the test at any time. A one-key lookup
// of hold waits until releaseHeld is called, and then reads applied.
type historyReplica struct {
	history map[string][]version // oldest first
	hold    string
	release chan struct{}
	// releaseHeld lets the held lookups go on; it may be called again.
	releaseHeld func()

	applied  atomic.Uint64
	failPost atomic.Bool // many-key lookups get 503 unavailable

	held     atomic.Int64 // lookups of hold that arrived
	answered atomic.Int64 // lookups answered
	posts    atomic.Int64 // many-key lookups
	keys     atomic.Int64 // keys asked
	addr     string
}

func startHistoryReplica(t *testing.T, h *historyReplica) *historyReplica {
	t.Helper()
	h.release = make(chan struct{})
	h.releaseHeld = sync.OnceFunc(func() { close(h.release) })
	h.addr = newLocalServer(t, wirecheck.Handler(http.HandlerFunc(h.serve)))
	t.Cleanup(h.releaseHeld) // first: the server waits for held lookups
	return h
}

// at returns k's version as of x; ok is false if k was absent then.
func (h *historyReplica) at(k string, x argent.Index) (version, bool) {
	var v version
	ok := false
	for _, hv := range h.history[k] {
		if hv.mod <= x {
			v, ok = hv, true
		}
	}
	return v, ok
}

func (h *historyReplica) serve(w http.ResponseWriter, r *http.Request) {
	defer h.answered.Add(1)
	at, _ := strconv.ParseUint(r.URL.Query().Get("at"), 10, 64)
	if r.Method == http.MethodGet {
		k := r.URL.Query().Get("key")
		h.keys.Add(1)
		if k == h.hold {
			h.held.Add(1)
			<-h.release
		}
		x := min(argent.Index(at), argent.Index(h.applied.Load()))
		w.Header().Set(apiwire.HeaderIndex, strconv.FormatUint(uint64(x), 10))
		v, ok := h.at(k, x)
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeNotFound, Message: "absent"}})
			return
		}
		w.Header().Set(apiwire.HeaderModIndex, strconv.FormatUint(uint64(v.mod), 10))
		_, _ = w.Write([]byte(v.value))
		return
	}
	h.posts.Add(1)
	var req apiwire.MGetRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	h.keys.Add(int64(len(req.Keys)))
	if h.failPost.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeUnavailable, Message: "fake"}})
		return
	}
	x := min(argent.Index(at), argent.Index(h.applied.Load()))
	out := apiwire.MGetResponse{Index: x}
	for _, k := range req.Keys {
		if v, ok := h.at(k, x); ok {
			out.Items = append(out.Items, apiwire.Item{Key: k, Value: []byte(v.value), ModIndex: v.mod})
		} else {
			out.Items = append(out.Items, apiwire.Item{Key: k, Absent: true})
		}
	}
	w.Header().Set(apiwire.HeaderIndex, strconv.FormatUint(uint64(x), 10))
	_ = json.NewEncoder(w).Encode(out)
}

// A many-key lookup that shares a key with a lookup under way gets every
// key as of one index. When the shared answer is as of another index than
// its own keys' (replicas behind the index asked for, at different
// indexes), it asks for all its keys again in one request and answers
// that; if that fails, it fails. It never answers a mix of indexes as one.
func TestRelay_LookupSharedAnswersOfOneIndex(t *testing.T) {
	const at = 10
	for _, tt := range []struct {
		name string
		// indexes the replica is at when it answers b and, later, a.
		bAt, aAt argent.Index
		failPost bool
		// want: the many-key answer's index and b's value, or an error.
		wantIndex argent.Index
		wantB     version
		wantErr   error
		wantPosts int64
		wantKeys  int64
	}{
		{name: "SameIndex", bAt: 7, aAt: 7, wantIndex: 7, wantB: version{1, "b1"}, wantKeys: 2},
		{name: "AskedAgain", bAt: 7, aAt: 9, wantIndex: 9, wantB: version{8, "b8"}, wantPosts: 1, wantKeys: 4},
		{name: "AskedAgainFails", bAt: 7, aAt: 9, failPost: true, wantErr: argent.ErrUnavailable, wantPosts: 1, wantKeys: 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := startHistoryReplica(t, &historyReplica{hold: "a", history: map[string][]version{
				"a": {{1, "a1"}},
				"b": {{1, "b1"}, {8, "b8"}},
			}})
			rep.applied.Store(uint64(tt.bAt))
			rep.failPost.Store(tt.failPost)
			rl, addr := startRelay(t, ds, rep.addr)
			c := lookupClient(t, addr, ds)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			// One request looks up a; its upstream lookup is held.
			var wg sync.WaitGroup
			var one lookup.Result
			var oneErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				one, oneErr = c.Get(ctx, []byte("a"), at)
			}()
			waitFor(t, 5*time.Second, func() error {
				if rep.held.Load() != 1 {
					return errors.New("the lookup of a has not reached the replica")
				}
				return nil
			})
			// Another asks for a and b: a is shared, b asked alone, and
			// answered as of bAt.
			var many []lookup.Result
			var manyErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				many, manyErr = c.GetMany(ctx, [][]byte{[]byte("a"), []byte("b")}, at)
			}()
			waitFor(t, 5*time.Second, func() error {
				if rl.Stats().Shared.Load() != 1 || rep.answered.Load() != 1 {
					return errors.New("b not answered yet")
				}
				return nil
			})
			// a is answered as of aAt.
			rep.applied.Store(uint64(tt.aAt))
			rep.releaseHeld()
			wg.Wait()

			if oneErr != nil || one.Index != tt.aAt || string(one.Value.Value) != "a1" {
				t.Fatalf("Get(a) = %+v, %v; want a1 as of %d", one, oneErr, tt.aAt)
			}
			if tt.wantErr != nil {
				if !errors.Is(manyErr, tt.wantErr) {
					t.Fatalf("GetMany = %+v, %v; want %v", many, manyErr, tt.wantErr)
				}
			} else {
				if manyErr != nil || len(many) != 2 {
					t.Fatalf("GetMany = %+v, %v", many, manyErr)
				}
				for _, r := range many {
					if r.Index != tt.wantIndex {
						t.Fatalf("GetMany: %s as of %d, want every key as of %d", r.Key, r.Index, tt.wantIndex)
					}
				}
				a, b := many[0], many[1]
				if string(a.Value.Value) != "a1" || a.ModIndex != 1 || string(b.Value.Value) != tt.wantB.value || b.ModIndex != tt.wantB.mod {
					t.Fatalf("GetMany as of %d = a %q@%d, b %q@%d; want b %q@%d",
						tt.wantIndex, a.Value.Value, a.ModIndex, b.Value.Value, b.ModIndex, tt.wantB.value, tt.wantB.mod)
				}
			}
			if p, k := rep.posts.Load(), rep.keys.Load(); p != tt.wantPosts || k != tt.wantKeys {
				t.Fatalf("the replica got %d many-key lookups and %d keys, want %d and %d", p, k, tt.wantPosts, tt.wantKeys)
			}
			if got := rl.Stats().UpstreamLookups.Load(); got != uint64(tt.wantKeys) {
				t.Fatalf("UpstreamLookups = %d, want %d", got, tt.wantKeys)
			}
		})
	}
}
