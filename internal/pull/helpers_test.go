package pull_test

import (
	"bytes"
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
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/root"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Timings short enough for tests of seconds: heartbeats come often, so a
// healthy stream never looks stalled, and a stalled one is given up fast.
const (
	testHeartbeat = 20 * time.Millisecond
	testStall     = 300 * time.Millisecond
	waitLimit     = 10 * time.Second
)

// newStore opens a store on an in-memory file system, closed when the test
// ends.
func newStore(t *testing.T, opts kv.Options) *kv.Store {
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

// testRoot is a root's store and write path.
type testRoot struct {
	*kv.Store
	w *root.Root
}

// newRoot returns a root with a new dataset (or ds, if not zero), its write
// path running until the test ends.
func newRoot(t *testing.T, opts kv.Options, ds argent.DatasetID) *testRoot {
	t.Helper()
	s := newStore(t, opts)
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &testRoot{Store: s, w: r}
}

// write commits n batches of one put each, keys prefix/000..., and returns
// the last index.
func (r *testRoot) write(t *testing.T, prefix string, n int) argent.Index {
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

// network is where a test's parents listen and the transport that reaches
// them: in memory, or HTTP on loopback (the transport of real nodes).
type network struct {
	t     *testing.T
	inmem *pull.InmemTransport // nil over HTTP
	tr    pull.Transport
}

// transports are the kinds of network the tests that must hold on both run
// on.
var transports = []string{"inmem", "http"}

func newNetwork(t *testing.T, kind string) *network {
	t.Helper()
	switch kind {
	case "inmem":
		tr := pull.NewInmemTransport()
		return &network{t: t, inmem: tr, tr: tr}
	case "http":
		c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		t.Cleanup(c.CloseIdleConnections)
		return &network{t: t, tr: pull.NewHTTPTransport(c)}
	}
	t.Fatalf("unknown transport %q", kind)
	return nil
}

// serve starts a Server over s, with node ID name, until the test ends,
// and returns its address. Over HTTP the address also answers /v1/status,
// as a node does.
func (n *network) serve(name string, s *kv.Store, cfg pull.ServerConfig) string {
	t := n.t
	t.Helper()
	cfg.Store = s
	cfg.NodeID = name
	cfg.Root = storeClock{s}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = testHeartbeat
	}
	srv := pull.NewServer(cfg)
	if n.inmem != nil {
		n.inmem.Register(name, srv)
		t.Cleanup(srv.Close)
		return name
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		st := apiwire.StatusResponse{NodeID: name, AppliedIndex: s.Applied()}
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

// follower is a running Follower and its metrics.
type follower struct {
	*pull.Follower
	reg  *prometheus.Registry
	stop func() // stops it and waits for Run to return
}

// follow runs a Follower of cfg into s until the test ends (it is stopped
// before the stores and servers made earlier are closed).
func follow(t *testing.T, tr pull.Transport, s *kv.Store, cfg pull.FollowerConfig) *follower {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Store = s
	cfg.Transport = tr
	cfg.Metrics = pull.NewMetrics(reg)
	if cfg.NodeID == "" {
		cfg.NodeID = "child"
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = testStall
	}
	f := pull.NewFollower(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
	t.Cleanup(stop)
	return &follower{Follower: f, reg: reg, stop: stop}
}

// metric returns the value of the counter or gauge name (with the given
// label value, if any) of f's metrics.
func (f *follower) metric(t *testing.T, name string, label ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
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

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitApplied waits until s serves index i (and not in a restore).
func waitApplied(t *testing.T, s *kv.Store, i argent.Index) {
	t.Helper()
	waitFor(t, fmt.Sprintf("applied index %d", i), func() bool { return s.Applied() >= i && !s.Restoring() })
}

// checkSame fails unless got holds want's state: the same applied index
// and chain hash, the same value for every live key, and the same log
// entries where both still hold them.
func checkSame(t *testing.T, got, want *kv.Store) {
	t.Helper()
	gs, ws := got.State(), want.State()
	if gs.Index != ws.Index || gs.Chain != ws.Chain {
		t.Fatalf("state: got index %d chain %x, want %d %x", gs.Index, gs.Chain[:8], ws.Index, ws.Chain[:8])
	}
	if got.Dataset() != want.Dataset() {
		t.Fatalf("dataset: got %s, want %s", got.Dataset(), want.Dataset())
	}
	wi, _, err := want.Scan(context.Background(), nil, nil, 1<<20, ws.Index)
	if err != nil {
		t.Fatalf("scan want: %v", err)
	}
	gi, _, err := got.Scan(context.Background(), nil, nil, 1<<20, gs.Index)
	if err != nil {
		t.Fatalf("scan got: %v", err)
	}
	if len(gi) != len(wi) {
		t.Fatalf("got %d keys, want %d", len(gi), len(wi))
	}
	for i := range wi {
		if !bytes.Equal(gi[i].Key, wi[i].Key) || !bytes.Equal(gi[i].Value.Value, wi[i].Value.Value) || gi[i].Value.ModIndex != wi[i].Value.ModIndex {
			t.Fatalf("key %d: got %q=%q@%d, want %q=%q@%d", i, gi[i].Key, gi[i].Value.Value, gi[i].Value.ModIndex,
				wi[i].Key, wi[i].Value.Value, wi[i].Value.ModIndex)
		}
	}
	from := max(got.LogFirst(), want.LogFirst())
	wantLog := readLog(t, want, from)
	gotLog := readLog(t, got, from)
	if len(gotLog) != len(wantLog) {
		t.Fatalf("log from %d: got %d entries, want %d", from, len(gotLog), len(wantLog))
	}
	for i := range wantLog {
		if !bytes.Equal(gotLog[i], wantLog[i]) {
			t.Fatalf("log entry %d differs", from+argent.Index(i))
		}
	}
}

// readLog returns the raw log entries of s from index from on.
func readLog(t *testing.T, s *kv.Store, from argent.Index) [][]byte {
	t.Helper()
	var out [][]byte
	for from <= s.Applied() {
		next, err := s.ReadLog(from, 1<<20, func(e *logstore.Entry) bool {
			out = append(out, bytes.Clone(e.Raw))
			return true
		})
		if err != nil {
			t.Fatalf("read log from %d: %v", from, err)
		}
		if next == from {
			break
		}
		from = next
	}
	return out
}
