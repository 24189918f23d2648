// Package pulltest has the helpers that tests of the pull protocol and of
// the roles built on it (internal/pull, internal/replica) share: stores on
// an in-memory file system, a root with its write path, parents served on
// a network (in memory, or HTTP on loopback), and a check that two stores
// hold the same state and history.
//
//	n := pulltest.NewNetwork(t, "inmem")
//	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
//	r.Write(t, "k", 10)
//	addr := n.Serve("root", r.Store, pull.ServerConfig{})
//	// ... follow addr into a child store s over n.Transport ...
//	pulltest.WaitApplied(t, s, r.Applied())
//	pulltest.CheckSame(t, s, r.Store)
//
// Everything it starts is stopped at the test's cleanup.
package pulltest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/root"
)

// Timings short enough for tests of seconds: heartbeats come often, so a
// healthy stream never looks stalled, and a stalled one is given up fast.
const (
	// Heartbeat is the parents' heartbeat interval.
	Heartbeat = 20 * time.Millisecond
	// Stall is the stall timeout children should use.
	Stall = 300 * time.Millisecond
	// WaitLimit bounds every wait of WaitFor.
	WaitLimit = 10 * time.Second
)

// NewStore opens a store on an in-memory file system (small caches unless
// opts says otherwise), closed when the test ends.
func NewStore(t testing.TB, opts kv.Options) *kv.Store {
	t.Helper()
	opts.FS = vfs.NewMem()
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 4 << 20
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 8 << 20
	}
	s, err := kv.Open("/db", &opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Root is a root's store and write path.
type Root struct {
	*kv.Store
	w *root.Root
}

// NewRoot returns a root with a new dataset (or ds, if not zero), its write
// path running until the test ends.
func NewRoot(t testing.TB, opts kv.Options, ds argent.DatasetID) *Root {
	t.Helper()
	s := NewStore(t, opts)
	var err error
	if ds.IsZero() {
		_, err = s.InitDataset()
	} else {
		_, err = s.AdoptDataset(ds)
	}
	if err != nil {
		t.Fatalf("dataset: %v", err)
	}
	r := root.New(s, root.Config{})
	Go(t, r.Run)
	return &Root{Store: s, w: r}
}

// Go runs run in a goroutine until the test ends, or until the function it
// returns is called; either way it waits for run to return. An error from
// run fails the test.
func Go(t testing.TB, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
	t.Cleanup(stop)
	return stop
}

// Write commits n batches of one put each, keys prefix/000..., and returns
// the last index.
func (r *Root) Write(t testing.TB, prefix string, n int) argent.Index {
	t.Helper()
	var last argent.Index
	for i := range n {
		k := fmt.Sprintf("%s/%03d", prefix, i)
		idx, err := r.w.Write(context.Background(), argent.Batch{Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte(k), Value: []byte("v-" + k)},
		}})
		if err != nil {
			t.Fatalf("write %s: %v", k, err)
		}
		last = idx
	}
	return last
}

// storeClock is a RootClock that reads a store: the root's own position,
// or, for a replica in tests, its applied state.
type storeClock struct{ s *kv.Store }

func (c storeClock) Root() (argent.Index, int64) {
	st := c.s.State()
	return st.Index, st.Time
}

func (c storeClock) RootSent() int64 { return time.Now().UnixNano() }

// Network is where a test's parents listen and the transport that reaches
// them: in memory, or HTTP on loopback (the transport of real nodes).
type Network struct {
	t testing.TB
	// Inmem is the in-memory transport, for faults; nil over HTTP.
	Inmem *pull.InmemTransport
	// Transport reaches the parents Serve starts.
	Transport pull.Transport
}

// Transports are the kinds of network that tests which must hold on both
// run on.
var Transports = []string{"inmem", "http"}

// NewNetwork returns a network of kind "inmem" or "http".
func NewNetwork(t testing.TB, kind string) *Network {
	t.Helper()
	switch kind {
	case "inmem":
		tr := pull.NewInmemTransport()
		return &Network{t: t, Inmem: tr, Transport: tr}
	case "http":
		c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		t.Cleanup(c.CloseIdleConnections)
		return &Network{t: t, Transport: pull.NewHTTPTransport(c)}
	}
	t.Fatalf("unknown transport %q", kind)
	return nil
}

// Serve starts a Server over s, with node ID name and heartbeats every
// Heartbeat unless cfg says otherwise, until the test ends, and returns its
// address. Over HTTP the address also answers /v1/status, as a node does.
func (n *Network) Serve(name string, s *kv.Store, cfg pull.ServerConfig) string {
	t := n.t
	t.Helper()
	cfg.Source = s
	cfg.NodeID = name
	cfg.Root = storeClock{s}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = Heartbeat
	}
	srv := pull.NewServer(cfg)
	if n.Inmem != nil {
		n.Inmem.Register(name, srv)
		t.Cleanup(srv.Close)
		return name
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		st := client.StatusResponse{NodeID: name, AppliedIndex: s.Applied()}
		if ds := s.Dataset(); !ds.IsZero() {
			st.DatasetID = ds.String()
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close) // first: it ends the streams ts.Close waits for
	return ts.Listener.Addr().String()
}

// Metric returns the value of the counter or gauge name (with the given
// label value, if any) gathered from g, 0 if there is none.
func Metric(t testing.TB, g prometheus.Gatherer, name string, label ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(label) > 0 && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label[0]) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// WaitFor polls cond until it holds, failing the test after WaitLimit.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitApplied waits until s serves index i (and not in a restore).
func WaitApplied(t testing.TB, s *kv.Store, i argent.Index) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("applied index %d", i), func() bool { return s.Applied() >= i && !s.Restoring() })
}

// TrimAll drops every log entry s holds (s must keep no log: LogBytes 1),
// so that a new child must start from a snapshot.
func TrimAll(t testing.TB, s *kv.Store) {
	t.Helper()
	for {
		res, err := s.Trim()
		if err != nil {
			t.Fatalf("trim: %v", err)
		}
		if !res.Progress() {
			break
		}
	}
	if s.LogFirst() != s.Applied()+1 {
		t.Fatalf("log starts at %d after trim, want %d", s.LogFirst(), s.Applied()+1)
	}
}
