package proxy_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// hangingFixture is a proxy at index 2 whose only replica takes lookups and
// scans and never answers them: each waits until the proxy hangs up. Keys
// k/0 and k/1 (written at 1) miss at 2: the window holds only batch 2.
type hangingFixture struct {
	p        *proxy.Proxy
	hc       *http.Client  // the proxy's lookups
	asked    chan struct{} // a value per request that reached the replica
	requests atomic.Int64  // requests that reached the replica
}

func newHangingFixture(t *testing.T) *hangingFixture {
	root, h := openRoot(t)
	root.commit(t, puts("k/%d", 0, 2))     // 1
	root.commit(t, puts("other/%d", 0, 1)) // 2
	f := &hangingFixture{asked: make(chan struct{}, 64)}
	stop := make(chan struct{})
	hang := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != lookup.LookupPath && r.URL.Path != lookup.ScanPath {
				next.ServeHTTP(w, r)
				return
			}
			f.requests.Add(1)
			// Read the body: only then does net/http watch the
			// connection, and end r's context when the proxy hangs up.
			_, _ = io.Copy(io.Discard, r.Body)
			f.asked <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-stop: // the test ends: let the server close
			}
		})
	}
	rep := newReplicaWith(t, h, len(h.entries), hang)
	t.Cleanup(func() { close(stop) }) // runs before the replica's server closes
	f.hc = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(f.hc.CloseIdleConnections)
	// MissWait is far longer than the test: only the reader's context can
	// end its reads.
	f.p = newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{rep.addr}, Window: window.Options{MaxBatches: 1},
		MissWait: time.Minute, HTTPClient: f.hc})
	apply(t, f.p, h, 2, rand.New(rand.NewPCG(1, 2)))
	return f
}

// cancelAfter returns a context cancelled once a request has reached the
// replica and d has passed since the call.
func (f *hangingFixture) cancelAfter(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	start := time.Now()
	go func() {
		select {
		case <-f.asked:
		case <-time.After(10 * time.Second): // fails below: nothing asked
		}
		time.Sleep(d - time.Since(start))
		cancel()
	}()
	return ctx
}

// TestProxy_MissStopsWhenReaderLeaves checks that a read the proxy must
// resolve at a replica stops as soon as its context ends (its HTTP client
// left, its RESP connection closed), although the replica never answers
// and MissWait is far away, and that it leaves no goroutine behind.
func TestProxy_MissStopsWhenReaderLeaves(t *testing.T) {
	for _, tt := range []struct {
		name string
		read func(ctx context.Context, p *proxy.Proxy) error
	}{
		{"Get", func(ctx context.Context, p *proxy.Proxy) error {
			_, _, err := p.GetTier(ctx, []byte("k/0"), 2)
			return err
		}},
		{"GetMany", func(ctx context.Context, p *proxy.Proxy) error {
			_, _, err := p.GetMany(ctx, [][]byte{[]byte("k/0"), []byte("k/1")}, 2)
			return err
		}},
		{"Scan", func(ctx context.Context, p *proxy.Proxy) error {
			_, _, err := p.Scan(ctx, []byte("k/"), nil, 10, 2)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newHangingFixture(t)
			before := goleak.IgnoreCurrent()
			ctx := f.cancelAfter(t, 50*time.Millisecond)
			start := time.Now()
			err := tt.read(ctx, f.p)
			took := time.Since(start)
			if !errors.Is(err, context.Canceled) || !errors.Is(err, argent.ErrUnavailable) {
				t.Fatalf("read = %v; want an error wrapping context.Canceled and argent.ErrUnavailable", err)
			}
			if took > 2*time.Second {
				t.Errorf("read returned %v after its context ended; want promptly", took-50*time.Millisecond)
			}
			f.hc.CloseIdleConnections()
			goleak.VerifyNone(t, before)
		})
	}
}

// TestProxy_MissSurvivesOtherReaderLeaving checks that when the read
// leading a miss leaves, a read of the same key waiting on that miss does
// not fail with it: it asks the replica itself, and ends only when its own
// context does.
func TestProxy_MissSurvivesOtherReaderLeaving(t *testing.T) {
	f := newHangingFixture(t)
	before := goleak.IgnoreCurrent()
	leader := f.cancelAfter(t, 200*time.Millisecond)
	leaderErr := make(chan error, 1)
	go func() {
		_, _, err := f.p.GetTier(leader, []byte("k/0"), 2)
		leaderErr <- err
	}()
	// Join the leader's miss while it waits for the replica.
	waitFor(t, 5*time.Second, "lookup by the leader", func() bool { return f.requests.Load() > 0 })
	follower, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, _, err := f.p.GetTier(follower, []byte("k/0"), 2)
	if follower.Err() == nil {
		t.Fatalf("follower's read ended before its context did, with %v: it took the leader's leaving for its own", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("follower's read = %v; want an error wrapping its own context's", err)
	}
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader's read = %v; want an error wrapping context.Canceled", err)
	}
	if n := f.requests.Load(); n < 2 {
		t.Errorf("the replica got %d lookups; want the leader's and then the follower's own", n)
	}
	f.hc.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}
