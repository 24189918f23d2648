package resp_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/resp"
)

// fakeBackend is a Backend over a real kv.Store on an in-memory disk whose
// Write commits straight to the store.
type fakeBackend struct {
	store  *kv.Store
	limits argent.Limits

	mu       sync.Mutex  // serialises Write
	writeErr error       // if set, Write fails with it
	notReady atomic.Bool // if set, Ready returns api.ErrNotReady

	many  atomic.Pointer[manyReader]  // if set, Reader returns it
	local atomic.Pointer[localReader] // if set (and many is not), Reader returns it
}

// manyReader is the store as an api.ManyReader (as a proxy is), counting
// the GetMany calls.
type manyReader struct {
	*kv.Store
	calls atomic.Int64
}

func (m *manyReader) GetMany(ctx context.Context, keys [][]byte, at argent.Index) ([]argent.Value, []bool, error) {
	m.calls.Add(1)
	vals, found := make([]argent.Value, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		v, err := m.Get(ctx, k, at)
		switch {
		case err == nil:
			vals[i], found[i] = v, true
		case !errors.Is(err, argent.ErrNotFound):
			return nil, nil, err
		}
	}
	return vals, found, nil
}

var (
	_ api.Backend   = (*fakeBackend)(nil)
	_ api.Readiness = (*fakeBackend)(nil)
)

func (f *fakeBackend) Ready() error {
	if f.notReady.Load() {
		return api.ErrNotReady
	}
	return nil
}

func newFakeBackend(t testing.TB, limits argent.Limits) *fakeBackend {
	t.Helper()
	s, err := kv.Open("/db", &kv.Options{FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20, LatestCache: 1 << 20})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &fakeBackend{store: s, limits: limits}
}

func (f *fakeBackend) Reader() api.Reader {
	if m := f.many.Load(); m != nil {
		return m
	}
	if l := f.local.Load(); l != nil {
		return l
	}
	return f.store
}

func (f *fakeBackend) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return 0, f.writeErr
	}
	w := f.store.NewWriter()
	defer w.Discard()
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
		Role:         "replica",
		NodeID:       "n1",
		DatasetID:    f.store.Dataset().String(),
		AppliedIndex: f.store.Applied(),
		RootIndex:    f.store.Applied() + 2,
		LagSeconds:   1.5,
	}
}

func (f *fakeBackend) Tier() string          { return "replica" }
func (f *fakeBackend) Limits() argent.Limits { return f.limits }

func (f *fakeBackend) put(t testing.TB, kvs ...string) argent.Index {
	t.Helper()
	var b argent.Batch
	for i := 0; i+1 < len(kvs); i += 2 {
		b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	i, err := f.Write(context.Background(), b)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return i
}

// asyncBackend is a fakeBackend that also takes writes without waiting
// (api.AsyncWriter), as a root does: a committer goroutine commits them in
// the order they came, a few at a time after a short random pause, and
// answers each. Now and then it refuses one (a full queue), as a root may.
type asyncBackend struct {
	*fakeBackend
	queue  chan asyncWrite
	refuse atomic.Int64 // refuse every refuse-th write; 0: never
	n      atomic.Int64
	held   atomic.Pointer[chan struct{}] // while open, the committer commits nothing
}

type asyncWrite struct {
	b    argent.Batch
	done func(argent.Index, error)
}

var _ api.AsyncWriter = (*asyncBackend)(nil)

func newAsyncBackend(t testing.TB, limits argent.Limits) *asyncBackend {
	t.Helper()
	a := &asyncBackend{fakeBackend: newFakeBackend(t, limits), queue: make(chan asyncWrite, 64)}
	open := make(chan struct{})
	close(open)
	a.held.Store(&open)
	a.refuse.Store(7)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var w asyncWrite
			select {
			case w = <-a.queue:
			case <-stop:
				return
			}
			select {
			case <-*a.held.Load():
			case <-stop:
				return
			}
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			ws := []asyncWrite{w}
		more:
			for {
				select {
				case w2 := <-a.queue:
					ws = append(ws, w2)
				default:
					break more
				}
			}
			for _, w := range ws {
				i, err := a.Write(context.Background(), w.b)
				w.done(i, err)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return a
}

// hold makes the committer commit nothing until the test ends.
func (a *asyncBackend) hold(t testing.TB) {
	held := make(chan struct{})
	a.held.Store(&held)
	t.Cleanup(func() { close(held) })
}

func (a *asyncBackend) SubmitWrite(b argent.Batch, done func(argent.Index, error)) bool {
	if r := a.refuse.Load(); r > 0 && a.n.Add(1)%r == 0 {
		return false
	}
	select {
	case a.queue <- asyncWrite{b: b, done: done}:
		return true
	default:
		return false
	}
}

// startServer serves a fake backend on a loopback port and returns it with
// the address. The server is closed at the end of the test.
func startServer(t *testing.T, limits argent.Limits) (*fakeBackend, *resp.Server, string) {
	t.Helper()
	b := newFakeBackend(t, limits)
	s, addr := serveBackend(t, b)
	return b, s, addr
}

// startAsyncServer is startServer with an asyncBackend.
func startAsyncServer(t *testing.T, limits argent.Limits) (*asyncBackend, *resp.Server, string) {
	t.Helper()
	b := newAsyncBackend(t, limits)
	s, addr := serveBackend(t, b)
	return b, s, addr
}

// serveBackend serves b on a loopback port until the test ends.
func serveBackend(t *testing.T, b api.Backend) (*resp.Server, string) {
	t.Helper()
	s := resp.New(b, nil, nil)
	resp.SetReadIndexWait(s, 200*time.Millisecond)
	return s, serveOn(t, s, s.Serve)
}

// serveOn runs serve (s.Serve or s.ServeConns) on a loopback port until
// the test ends, then closes s, and returns the port's address.
func serveOn(t *testing.T, s *resp.Server, serve func(net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 2})
	t.Cleanup(func() { c.Close() })
	return c
}
