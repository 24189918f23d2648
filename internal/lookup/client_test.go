package lookup_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/negfilter"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// checkResult checks a Client result against the model's state at x.
func checkResult(t *testing.T, r lookup.Result, key string, x argent.Index, want state) {
	t.Helper()
	if r.Index != x || string(r.Key) != key {
		t.Errorf("key %q: result for %q at %d, want at %d", key, r.Key, r.Index, x)
	}
	v, ok := want[key]
	switch {
	case !ok && (!r.Absent || r.Value.Value != nil || r.ModIndex != 0):
		t.Errorf("key %q as of %d: %+v, want absent", key, x, r)
	case ok && (r.Absent || !bytes.Equal(r.Value.Value, v.Value) || r.ModIndex != v.ModIndex):
		t.Errorf("key %q as of %d: %+v, want %q at %d", key, x, r, v.Value, v.ModIndex)
	}
}

func TestClient_Get(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	c := f.client(&lookup.ClientOptions{Dataset: f.st.Dataset()})
	ctx := context.Background()
	for s := argent.Index(0); s <= applied+2; s++ {
		x := min(s, applied)
		for _, k := range f.keys() {
			r, err := c.Get(ctx, []byte(k), s)
			if err != nil {
				t.Fatalf("Get(%q, %d): %v", k, s, err)
			}
			checkResult(t, r, k, x, f.states[x])
		}
	}
	r, err := c.Get(ctx, []byte("a"), math.MaxUint64)
	if err != nil || r.Index != applied {
		t.Errorf("Get as of MaxUint64 = %+v, %v; want the state at %d", r, err, applied)
	}
}

func TestClient_GetMany(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	c := f.client(nil)
	ctx := context.Background()
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("dir/x"), []byte("dir/y"), []byte("sp ace+&=?%"), []byte("empty"), []byte("never"), []byte("a")}
	for s := argent.Index(0); s <= applied+2; s++ {
		x := min(s, applied)
		rs, err := c.GetMany(ctx, keys, s)
		if err != nil {
			t.Fatalf("GetMany as of %d: %v", s, err)
		}
		if len(rs) != len(keys) {
			t.Fatalf("%d results for %d keys", len(rs), len(keys))
		}
		for i, r := range rs {
			checkResult(t, r, string(keys[i]), x, f.states[x])
		}
	}
	if _, err := c.GetMany(ctx, [][]byte{[]byte("a"), {0xff}}, 1); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("GetMany with a non-UTF-8 key: err = %v, want ErrInvalid", err)
	}
	if rs, err := c.GetMany(ctx, nil, 2); err != nil || len(rs) != 0 {
		t.Errorf("GetMany of no keys = %v, %v; want none", rs, err)
	}
}

func TestClient_Compacted(t *testing.T) {
	f, horizon := compactedFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	_, err := c.Get(ctx, []byte("a"), horizon-1)
	var le *lookup.Error
	if !errors.Is(err, argent.ErrCompacted) || !errors.As(err, &le) || le.Index != f.st.Applied() || le.Op != "get" {
		t.Errorf("Get below the horizon: err = %v, want ErrCompacted from a replica at %d", err, f.st.Applied())
	}
	if errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("compacted reads as unavailable: %v", err)
	}
	if _, err := c.GetMany(ctx, [][]byte{[]byte("a")}, horizon-1); !errors.Is(err, argent.ErrCompacted) {
		t.Errorf("GetMany below the horizon: err = %v, want ErrCompacted", err)
	}
	if _, err := c.Get(ctx, []byte("a"), horizon); err != nil {
		t.Errorf("Get at the horizon: %v", err)
	}
}

func TestClient_Filter(t *testing.T) {
	f := newFixture(t, nil)
	f.writeHistory()
	applied := f.writeKeys("k", 3000)
	c := f.client(nil)
	flt, st, err := c.Filter(context.Background(), 0)
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	if st.Index != applied || flt.Index() != applied {
		t.Errorf("filter at %d (index %d), want %d", st.Index, flt.Index(), applied)
	}
	if want := f.st.State(); st != want {
		t.Errorf("filter state %+v, want the store's %+v", st, want)
	}
	checkNoFalseNegatives(t, flt, f.states[st.Index])
	y := f.write(put("late", "1"))
	if _, st, err := c.Filter(context.Background(), y); err != nil || st.Index != y {
		t.Errorf("Filter(min %d) = %d, %v", y, st.Index, err)
	}
}

func TestClient_Dataset(t *testing.T) {
	f := newFixture(t, nil)
	f.write(put("a", "1"))
	c := f.client(&lookup.ClientOptions{Dataset: argent.DatasetID{9}})
	ctx := context.Background()
	if _, err := c.Get(ctx, []byte("a"), 1); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Errorf("Get: err = %v, want ErrDatasetMismatch", err)
	}
	if _, err := c.GetMany(ctx, [][]byte{[]byte("a")}, 1); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Errorf("GetMany: err = %v, want ErrDatasetMismatch", err)
	}
	if _, _, err := c.Scan(ctx, nil, nil, 10, 1); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Errorf("Scan: err = %v, want ErrDatasetMismatch", err)
	}
	if _, _, err := c.Filter(ctx, 0); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Errorf("Filter: err = %v, want ErrDatasetMismatch", err)
	}
}

func TestClient_Unavailable(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	addr := hs.URL
	hs.Close() // nothing listens there now
	c, err := lookup.NewClient(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, []byte("a"), 1); !errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("Get from a closed port: err = %v, want ErrUnavailable", err)
	}
	if _, err := c.GetMany(ctx, [][]byte{[]byte("a")}, 1); !errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("GetMany from a closed port: err = %v, want ErrUnavailable", err)
	}
	if _, _, err := c.Filter(ctx, 0); !errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("Filter from a closed port: err = %v, want ErrUnavailable", err)
	}
	if _, _, err := c.Scan(ctx, nil, nil, 10, 1); !errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("Scan from a closed port: err = %v, want ErrUnavailable", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Get(canceled, []byte("a"), 1)
	if !errors.Is(err, context.Canceled) || errors.Is(err, argent.ErrUnavailable) {
		t.Errorf("Get with a canceled context: err = %v, want context.Canceled only", err)
	}
	if _, err := c.Get(ctx, nil, 1); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("Get of an empty key: err = %v, want ErrInvalid", err)
	}
}

func TestNewClient_Addr(t *testing.T) {
	for _, tc := range []struct {
		addr, want string
		ok         bool
	}{
		{addr: "127.0.0.1:7401", want: "http://127.0.0.1:7401", ok: true},
		{addr: "http://r1:7401/", want: "http://r1:7401", ok: true},
		{addr: "https://r1", want: "https://r1", ok: true},
		{addr: ""},
		{addr: "ftp://r1"},
		{addr: "http://r1?x=1"},
	} {
		c, err := lookup.NewClient(tc.addr, nil)
		switch {
		case tc.ok && (err != nil || c.Addr() != tc.want):
			t.Errorf("NewClient(%q) = %v, %v; want %q", tc.addr, c, err, tc.want)
		case !tc.ok && !errors.Is(err, argent.ErrInvalid):
			t.Errorf("NewClient(%q): err = %v, want ErrInvalid", tc.addr, err)
		}
	}
}

// TestClient_Protocol answers with things a replica must not say: the
// client refuses each with ErrProtocol (and ErrUnavailable), never a Result.
func TestClient_Protocol(t *testing.T) {
	goodFilter, _ := negfilter.New(10, 0.01).MarshalBinary()
	idx7 := func(h http.Header) { h.Set(apiwire.HeaderIndex, "7") }
	for _, tc := range []struct {
		name    string
		call    string // "get", "many" or "filter"
		handler http.HandlerFunc
	}{
		{name: "Plain404", call: "get", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "NotFoundWithoutIndex", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"x"}}`))
		}},
		{name: "NoIndex", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(apiwire.HeaderModIndex, "1")
			_, _ = w.Write([]byte("v"))
		}},
		{name: "IndexPastAt", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(apiwire.HeaderIndex, "11")
			w.Header().Set(apiwire.HeaderModIndex, "1")
			_, _ = w.Write([]byte("v"))
		}},
		{name: "ModPastIndex", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			w.Header().Set(apiwire.HeaderModIndex, "8")
			_, _ = w.Write([]byte("v"))
		}},
		{name: "NoModIndex", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte("v"))
		}},
		{name: "BadIndex", call: "get", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(apiwire.HeaderIndex, "seven")
			_, _ = w.Write([]byte("v"))
		}},
		{name: "ManyPlain404", call: "many", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "ManyWrongKey", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":7,"items":[{"key":"b","absent":true}]}`))
		}},
		{name: "ManyTooFewItems", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":7,"items":[]}`))
		}},
		{name: "ManyIndexDisagrees", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":6,"items":[{"key":"a","absent":true}]}`))
		}},
		{name: "ManyAbsentWithValue", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":7,"items":[{"key":"a","absent":true,"value":"eA==","mod_index":3}]}`))
		}},
		{name: "ManyModPastIndex", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":7,"items":[{"key":"a","value":"eA==","mod_index":9}]}`))
		}},
		{name: "ManyBadJSON", call: "many", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write([]byte(`{"index":7,`))
		}},
		{name: "FilterPlain404", call: "filter", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "FilterNoIndex", call: "filter", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(goodFilter) }},
		{name: "FilterIndexDisagrees", call: "filter", handler: func(w http.ResponseWriter, r *http.Request) {
			idx7(w.Header())
			_, _ = w.Write(goodFilter) // stands for index 0
		}},
		{name: "FilterCorrupt", call: "filter", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(apiwire.HeaderIndex, "0")
			bad := bytes.Clone(goodFilter)
			bad[len(bad)/2] ^= 1
			_, _ = w.Write(bad)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(wirecheck.Handler(tc.handler))
			defer hs.Close()
			c, err := lookup.NewClient(hs.URL, &lookup.ClientOptions{HTTPClient: hs.Client()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			switch tc.call {
			case "get":
				var r lookup.Result
				r, err = c.Get(ctx, []byte("a"), 10)
				if err == nil {
					t.Errorf("Get = %+v", r)
				}
			case "many":
				_, err = c.GetMany(ctx, [][]byte{[]byte("a")}, 10)
			case "filter":
				_, _, err = c.Filter(ctx, 0)
			}
			if !errors.Is(err, lookup.ErrProtocol) || !errors.Is(err, argent.ErrUnavailable) {
				t.Errorf("err = %v, want ErrProtocol and ErrUnavailable", err)
			}
			if errors.Is(err, argent.ErrNotFound) {
				t.Errorf("a broken answer reads as not found: %v", err)
			}
		})
	}
}
