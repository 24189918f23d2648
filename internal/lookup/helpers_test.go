package lookup_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// clock is a settable time source for the store and the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// state is the model of the store at one index: key -> value and mod index.
type state map[string]argent.Value

// fixture is a replica's store with a lookup Server on an httptest server,
// and a model of the store's state at every index written.
type fixture struct {
	t      testing.TB
	clock  *clock
	st     *kv.Store
	srv    *lookup.Server
	hs     *httptest.Server
	states []state // states[i] is the state at index i
}

// newFixture opens a store in a temporary directory (with a dataset ID, as
// a replica has once it follows a parent) and serves it. cfg may be nil.
func newFixture(t testing.TB, cfg *lookup.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), states: []state{{}}}
	st, err := kv.Open(t.TempDir(), &kv.Options{
		Now:             f.clock.Now,
		HistoryDuration: time.Hour,
		CacheSize:       8 << 20,
		LatestCache:     1 << 20,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.InitDataset(); err != nil {
		t.Fatalf("init dataset: %v", err)
	}
	f.st = st
	c := lookup.Config{Now: f.clock.Now}
	if cfg != nil {
		c = *cfg
		if c.Now == nil {
			c.Now = f.clock.Now
		}
	}
	if f.srv, err = lookup.NewServer(st, &c); err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	f.hs = httptest.NewServer(f.srv)
	t.Cleanup(f.hs.Close)
	return f
}

// write commits ops as the next index and records the state after it.
func (f *fixture) write(ops ...argent.Op) argent.Index {
	f.t.Helper()
	w := f.st.NewWriter()
	e, err := w.Append(ops, f.clock.Now())
	if err != nil {
		w.Discard()
		f.t.Fatalf("append: %v", err)
	}
	if err := w.Commit(); err != nil {
		f.t.Fatalf("commit: %v", err)
	}
	next := state{}
	for k, v := range f.states[len(f.states)-1] {
		next[k] = v
	}
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut:
			next[string(op.Key)] = argent.Value{Value: op.Value, ModIndex: e.Index}
		case argent.OpDelete:
			delete(next, string(op.Key))
		case argent.OpDeletePrefix:
			for k := range next {
				if strings.HasPrefix(k, string(op.Key)) {
					delete(next, k)
				}
			}
		}
	}
	f.states = append(f.states, next)
	if argent.Index(len(f.states)-1) != e.Index {
		f.t.Fatalf("model at %d, store at %d", len(f.states)-1, e.Index)
	}
	return e.Index
}

// client returns a Client of the fixture's server.
func (f *fixture) client(opts *lookup.ClientOptions) *lookup.Client {
	f.t.Helper()
	if opts == nil {
		opts = &lookup.ClientOptions{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = f.hs.Client()
	}
	c, err := lookup.NewClient(f.hs.URL, opts)
	if err != nil {
		f.t.Fatalf("NewClient: %v", err)
	}
	return c
}

// keys returns every key the model ever held, and some never written.
func (f *fixture) keys() []string {
	seen := map[string]bool{"never": true, "never/either": true}
	for _, s := range f.states {
		for k := range s {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}
func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }
func delPrefix(p string) argent.Op {
	return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)}
}

// writeHistory writes a few batches that put, overwrite and delete keys
// (keys with bytes that need escaping among them) and returns the last index.
func (f *fixture) writeHistory() argent.Index {
	f.t.Helper()
	f.write(put("a", "a1"), put("b", "b1"), put("dir/x", "x1"), put("dir/y", "y1"))
	f.write(put("a", "a2"), del("b"))
	f.write(put("b", "b3"), put("sp ace+&=?%", "odd"), put("\x00\xff", "bin"))
	f.write(delPrefix("dir/"), put("empty", ""))
	f.write(put("dir/x", "x5"), del("a"))
	return f.write(put("a", "a6"), put("c", "c6"))
}

// get sends GET LookupPath with the raw query q.
func (f *fixture) get(q string) *http.Response {
	f.t.Helper()
	resp, err := f.hs.Client().Get(f.hs.URL + lookup.LookupPath + "?" + q)
	if err != nil {
		f.t.Fatalf("GET %s: %v", q, err)
	}
	return resp
}

// post sends POST LookupPath with the raw query q and body.
func (f *fixture) post(q, body string) *http.Response {
	f.t.Helper()
	resp, err := f.hs.Client().Post(f.hs.URL+lookup.LookupPath+"?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		f.t.Fatalf("POST %s: %v", q, err)
	}
	return resp
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
