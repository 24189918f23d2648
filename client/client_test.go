package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// rawServer starts a server with h and returns a client for it.
func rawServer(t *testing.T, h http.HandlerFunc) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return mustNew(t, srv.URL)
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name, addr, want string
	}{
		{"HostPort", "127.0.0.1:7400", "http://127.0.0.1:7400"},
		{"IPv6", "[::1]:7400", "http://[::1]:7400"},
		{"HTTP", "http://example.com:7400/", "http://example.com:7400"},
		{"HTTPSWithPath", "https://example.com/argent/", "https://example.com/argent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustNew(t, tt.addr).Addr(); got != tt.want {
				t.Errorf("Addr() = %q, want %q", got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, addr string }{
		{"Empty", ""},
		{"Scheme", "ftp://example.com"},
		{"NoHost", "http://"},
		{"Query", "http://example.com?x=1"},
		{"Bad", "http://[::1"},
	} {
		t.Run("Invalid"+tt.name, func(t *testing.T) {
			if _, err := client.New(tt.addr); !errors.Is(err, argent.ErrInvalid) {
				t.Errorf("New(%q) = %v, want ErrInvalid", tt.addr, err)
			}
		})
	}
}

func TestClient_PutGet(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	idx, err := c.Put(ctx, []byte("a"), []byte("one"))
	if err != nil || idx != 1 {
		t.Fatalf("Put = %d, %v; want 1", idx, err)
	}
	if idx, err = c.Put(ctx, []byte("b"), []byte{0, 1, 2, 255}); err != nil || idx != 2 {
		t.Fatalf("Put = %d, %v; want 2", idx, err)
	}
	got, err := c.Get(ctx, []byte("a"), client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := client.Value{Value: []byte("one"), ModIndex: 1, Index: 2, Tier: "fake"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Get(a) = %+v, want %+v", got, want)
	}
	if got, err = c.Get(ctx, []byte("b"), client.ReadOptions{MinIndex: 2}); err != nil || !bytes.Equal(got.Value, []byte{0, 1, 2, 255}) {
		t.Errorf("Get(b) = %+v, %v", got, err)
	}
}

func TestClient_Put_EmptyValue(t *testing.T) {
	_, c := newFake(t)
	if _, err := c.Put(t.Context(), []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(t.Context(), []byte("k"), client.ReadOptions{})
	if err != nil || got.Value == nil || len(got.Value) != 0 || got.ModIndex != 1 {
		t.Errorf("Get = %+v, %v; want an empty non-nil value at mod index 1", got, err)
	}
}

func TestClient_Get_NotFound(t *testing.T) {
	_, c := newFake(t)
	if _, err := c.Put(t.Context(), []byte("a"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(t.Context(), []byte("missing"), client.ReadOptions{})
	if !errors.Is(err, argent.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Code != client.CodeNotFound {
		t.Errorf("error = %#v, want a 404 not_found *Error", ce)
	}
	if want := (client.Value{Index: 1, Tier: "fake"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
}

func TestClient_Keys(t *testing.T) {
	f, c := newFake(t)
	ctx := t.Context()
	keys := []string{"a/b", "/lead", "trail/", "a//b", ".", "..", "../../etc/passwd", "a/./b",
		"sp ace?q=1&x#frag%25+", "\xff\x00\x01", "日本", "~-_.", "%2F"}
	for i, k := range keys {
		idx, err := c.Put(ctx, []byte(k), []byte(k))
		if err != nil || idx != argent.Index(i+1) {
			t.Fatalf("Put(%q) = %d, %v", k, idx, err)
		}
	}
	f.mu.Lock()
	for _, k := range keys {
		if _, ok := f.mu.data[k]; !ok {
			t.Errorf("server did not get key %q", k)
		}
	}
	if len(f.mu.data) != len(keys) {
		t.Errorf("server has %d keys, want %d", len(f.mu.data), len(keys))
	}
	f.mu.Unlock()
	for _, k := range keys {
		v, err := c.Get(ctx, []byte(k), client.ReadOptions{})
		if err != nil || string(v.Value) != k {
			t.Errorf("Get(%q) = %q, %v", k, v.Value, err)
		}
		if _, err := c.Delete(ctx, []byte(k)); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	if _, err := c.Get(ctx, nil, client.ReadOptions{}); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("Get(empty) = %v, want ErrInvalid", err)
	}
	if _, err := c.Put(ctx, nil, nil); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("Put(empty) = %v, want ErrInvalid", err)
	}
}

func TestClient_Delete(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	idx, err := c.Delete(ctx, []byte("k"))
	if err != nil || idx != 2 {
		t.Fatalf("Delete = %d, %v; want 2", idx, err)
	}
	if v, err := c.Get(ctx, []byte("k"), client.ReadOptions{}); !errors.Is(err, argent.ErrNotFound) || v.Index != 2 {
		t.Errorf("Get after Delete = %+v, %v", v, err)
	}
}

func TestClient_Get_MinIndex(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()

	t.Run("Waits", func(t *testing.T) {
		go func() {
			time.Sleep(20 * time.Millisecond)
			_, _ = c.Put(context.Background(), []byte("k"), []byte("late"))
		}()
		v, err := c.Get(ctx, []byte("k"), client.ReadOptions{MinIndex: 1, Wait: 10 * time.Second})
		if err != nil || string(v.Value) != "late" || v.Index < 1 {
			t.Errorf("Get = %+v, %v", v, err)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		_, err := c.Get(ctx, []byte("k"), client.ReadOptions{MinIndex: 100, Wait: 10 * time.Millisecond})
		var ce *client.Error
		if !errors.Is(err, argent.ErrTimeout) || !errors.As(err, &ce) || ce.Status != http.StatusGatewayTimeout {
			t.Errorf("Get = %v, want a 504 ErrTimeout", err)
		}
	})
	t.Run("NoWait", func(t *testing.T) {
		start := time.Now()
		_, err := c.Get(ctx, []byte("k"), client.ReadOptions{MinIndex: 100, Wait: -1})
		if !errors.Is(err, argent.ErrTimeout) || time.Since(start) > 2*time.Second {
			t.Errorf("Get = %v after %v, want ErrTimeout at once", err, time.Since(start))
		}
	})
}

func TestClient_Get_Query(t *testing.T) {
	var got atomic.Value
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.Query())
		w.Header().Set(client.HeaderIndex, "5")
	})
	for _, tt := range []struct {
		name string
		opts client.ReadOptions
		want url.Values
	}{
		{"Zero", client.ReadOptions{}, url.Values{}},
		{"MinIndex", client.ReadOptions{MinIndex: 7}, url.Values{"min_index": {"7"}}},
		{"Wait", client.ReadOptions{MinIndex: 7, Wait: 1500 * time.Millisecond}, url.Values{"min_index": {"7"}, "wait": {"1.5s"}}},
		{"NoWait", client.ReadOptions{MinIndex: 7, Wait: -1}, url.Values{"min_index": {"7"}, "wait": {"0s"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Get(t.Context(), []byte("k"), tt.opts); err != nil {
				t.Fatal(err)
			}
			if q := got.Load().(url.Values); !reflect.DeepEqual(q, tt.want) {
				t.Errorf("query = %v, want %v", q, tt.want)
			}
		})
	}
}

func TestClient_Get_BadHeader(t *testing.T) {
	for _, tt := range []struct{ name, header, value string }{
		{"Index", client.HeaderIndex, "x"},
		{"NegativeIndex", client.HeaderIndex, "-1"},
		{"ModIndex", client.HeaderModIndex, "1.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(tt.header, tt.value)
				_, _ = w.Write([]byte("v"))
			})
			if v, err := c.Get(t.Context(), []byte("k"), client.ReadOptions{}); err == nil {
				t.Errorf("Get = %+v, want an error", v)
			}
		})
	}
}

func TestClient_MGet(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	if _, err := c.Put(ctx, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, []byte("c"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	idx, items, err := c.MGet(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, client.ReadOptions{MinIndex: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []client.Item{
		{Key: "a", Value: []byte("1"), ModIndex: 1},
		{Key: "b", Absent: true},
		{Key: "c", Value: []byte("3"), ModIndex: 2},
	}
	if idx != 2 || !reflect.DeepEqual(items, want) {
		t.Errorf("MGet = %d, %+v; want 2, %+v", idx, items, want)
	}
	if _, _, err := c.MGet(ctx, [][]byte{[]byte("a")}, client.ReadOptions{MinIndex: 9, Wait: -1}); !errors.Is(err, argent.ErrTimeout) {
		t.Errorf("MGet(min_index 9) = %v, want ErrTimeout", err)
	}
}

func TestClient_MGet_NotUTF8(t *testing.T) {
	var calls atomic.Int32
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, _, err := c.MGet(t.Context(), [][]byte{[]byte("ok"), {0xff}}, client.ReadOptions{})
	if !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("MGet = %v, want ErrInvalid", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestClient_Scan(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	for _, k := range []string{"p/a", "p/b", "p/c", "p/d", "p/e", "q/a"} {
		if _, err := c.Put(ctx, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	var after []byte
	var pages int
	for {
		p, err := c.Scan(ctx, []byte("p/"), after, 2, client.ReadOptions{MinIndex: 6})
		if err != nil {
			t.Fatal(err)
		}
		if p.Index != 6 {
			t.Errorf("page index = %d, want 6", p.Index)
		}
		for _, it := range p.Items {
			if string(it.Value) != "v"+it.Key || it.ModIndex == 0 {
				t.Errorf("item = %+v", it)
			}
			keys = append(keys, it.Key)
		}
		pages++
		if p.Next == nil {
			break
		}
		after = p.Next
	}
	if want := []string{"p/a", "p/b", "p/c", "p/d", "p/e"}; !reflect.DeepEqual(keys, want) || pages != 3 {
		t.Errorf("scanned %v in %d pages, want %v in 3", keys, pages, want)
	}
}

func TestClient_Scan_Query(t *testing.T) {
	var got url.Values
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/kv" {
			t.Errorf("path = %q", r.URL.Path)
		}
		got = r.URL.Query()
		_, _ = w.Write([]byte(`{"index":3,"items":[{"key":"k","value":"aGk=","mod_index":2}],"next":"k"}`))
	})
	p, err := c.Scan(t.Context(), []byte("a&b=\xff"), []byte("a&b=\xff/x y"), 10, client.ReadOptions{MinIndex: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"prefix": {"a&b=\xff"}, "after": {"a&b=\xff/x y"}, "limit": {"10"}, "min_index": {"3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("query = %v, want %v", got, want)
	}
	wantPage := client.Page{Index: 3, Items: []client.Item{{Key: "k", Value: []byte("hi"), ModIndex: 2}}, Next: []byte("k")}
	if !reflect.DeepEqual(p, wantPage) {
		t.Errorf("Scan = %+v, want %+v", p, wantPage)
	}
}

func TestClient_Txn(t *testing.T) {
	f, c := newFake(t)
	ctx := t.Context()
	for _, k := range []string{"tmp/1", "tmp/2", "j"} {
		if _, err := c.Put(ctx, []byte(k), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := c.Txn(ctx, argent.Batch{
		Conditions: []argent.Condition{{Key: []byte("j"), ModIndex: 3}, {Key: []byte("k"), ModIndex: 0}},
		Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte("k"), Value: []byte("hi")},
			{Type: argent.OpDelete, Key: []byte("j")},
			{Type: argent.OpDeletePrefix, Key: []byte("tmp/")},
		},
	})
	if err != nil || idx != 4 {
		t.Fatalf("Txn = %d, %v; want 4", idx, err)
	}
	f.mu.Lock()
	if len(f.mu.data) != 1 || string(f.mu.data["k"].value) != "hi" {
		t.Errorf("data after txn = %v", f.mu.data)
	}
	f.mu.Unlock()

	_, err = c.Txn(ctx, argent.Batch{
		Conditions: []argent.Condition{{Key: []byte("k"), ModIndex: 0}},
		Ops:        []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("again")}},
	})
	var cond *argent.ConditionError
	if !errors.As(err, &cond) {
		t.Fatalf("Txn = %v, want a *ConditionError", err)
	}
	if want := (&argent.ConditionError{Key: []byte("k"), Want: 0, Got: 4}); !reflect.DeepEqual(cond, want) {
		t.Errorf("condition error = %+v, want %+v", cond, want)
	}
	var ce *client.Error
	if !errors.Is(err, argent.ErrConditionFailed) || !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Errorf("Txn = %v, want a 409 ErrConditionFailed", err)
	}

	if _, err := c.Txn(ctx, argent.Batch{}); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("Txn(empty) = %v, want ErrInvalid from the server", err)
	}
	if _, err := c.Txn(ctx, argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte{0xc3}}}}); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("Txn(non-UTF-8 key) = %v, want ErrInvalid", err)
	}
}

func TestClient_Txn_Wire(t *testing.T) {
	var body []byte
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/txn" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request = %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		body, _ = io.ReadAll(r.Body)
		_, _ = w.Write([]byte(`{"index":12}`))
	})
	idx, err := c.Txn(t.Context(), argent.Batch{
		Conditions: []argent.Condition{{Key: []byte("k"), ModIndex: 7}},
		Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte("k"), Value: []byte("hi")},
			{Type: argent.OpDelete, Key: []byte("j")},
			{Type: argent.OpDeletePrefix, Key: []byte("tmp/")},
		},
	})
	if err != nil || idx != 12 {
		t.Fatalf("Txn = %d, %v", idx, err)
	}
	// The example of docs/CONTRACT.md section 4.
	want := `{"conditions":[{"key":"k","mod_index":7}],"ops":[{"op":"put","key":"k","value":"aGk="},{"op":"delete","key":"j"},{"op":"delete_prefix","key":"tmp/"}]}`
	if string(body) != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}

func TestClient_Put_Wire(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPut || r.URL.EscapedPath() != "/v1/kv/a%2Fb" || string(body) != "\x00v" ||
			r.Header.Get("Content-Type") != "application/octet-stream" || r.Header.Get("User-Agent") != client.DefaultUserAgent {
			t.Errorf("request = %s %s %q %v", r.Method, r.URL.EscapedPath(), body, r.Header)
		}
		_, _ = w.Write([]byte(`{"index":3}`))
	})
	if idx, err := c.Put(t.Context(), []byte("a/b"), []byte("\x00v")); err != nil || idx != 3 {
		t.Errorf("Put = %d, %v", idx, err)
	}
}

func TestClient_Put_Redirect(t *testing.T) {
	root, _ := newFake(t)
	rootSrv := httptest.NewServer(root.handler())
	t.Cleanup(rootSrv.Close)
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rootSrv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
	idx, err := c.Put(t.Context(), []byte("k"), []byte("v"))
	if err != nil || idx != 1 {
		t.Fatalf("Put = %d, %v", idx, err)
	}
	if _, err := c.Txn(t.Context(), argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("j"), Value: []byte("w")}}}); err != nil {
		t.Fatal(err)
	}
	root.mu.Lock()
	defer root.mu.Unlock()
	if string(root.mu.data["k"].value) != "v" || string(root.mu.data["j"].value) != "w" {
		t.Errorf("root data = %v", root.mu.data)
	}
}

func TestClient_Status(t *testing.T) {
	_, c := newFake(t)
	if _, err := c.Put(t.Context(), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != "replica" || st.NodeID != "n1" || st.DatasetID != "00112233445566778899aabbccddeeff" ||
		st.AppliedIndex != 1 || st.RootIndex != 3 || st.LagSeconds != 0.004 || st.Upstream != "10.0.0.1:7400" {
		t.Errorf("Status = %+v", st)
	}
	if len(st.Children) != 2 {
		t.Fatalf("children = %+v", st.Children)
	}
	ch := st.Children[0]
	if ch.Addr != "10.0.0.3:7400" || ch.NodeID != "n3" || ch.AppliedIndex != 1 || ch.LagSeconds != 0.5 ||
		!bytes.Contains(ch.Raw, []byte(`"extra":true`)) {
		t.Errorf("child 0 = %+v (raw %s)", ch, ch.Raw)
	}
	if ch := st.Children[1]; ch.Addr != "10.0.0.4:7400" || string(ch.Raw) != `"10.0.0.4:7400"` {
		t.Errorf("child 1 = %+v (raw %s)", ch, ch.Raw)
	}
}

func TestClient_ContextCancel(t *testing.T) {
	block := make(chan struct{})
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Read the body so that the server sees the client go away.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-block:
		}
	})
	t.Cleanup(func() { close(block) }) // before the server's Close, which waits for handlers
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := c.Get(ctx, []byte("k"), client.ReadOptions{}); return err }},
		{"MGet", func(ctx context.Context) error {
			_, _, err := c.MGet(ctx, [][]byte{[]byte("k")}, client.ReadOptions{})
			return err
		}},
		{"Scan", func(ctx context.Context) error { _, err := c.Scan(ctx, nil, nil, 0, client.ReadOptions{}); return err }},
		{"Put", func(ctx context.Context) error { _, err := c.Put(ctx, []byte("k"), []byte("v")); return err }},
		{"Delete", func(ctx context.Context) error { _, err := c.Delete(ctx, []byte("k")); return err }},
		{"Status", func(ctx context.Context) error { _, err := c.Status(ctx); return err }},
		{"Watch", func(ctx context.Context) error { _, err := c.Watch(ctx, nil, 0); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name+"Cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(10*time.Millisecond, cancel)
			if err := tt.call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
		t.Run(tt.name+"Deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
			defer cancel()
			if err := tt.call(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var _ http.RoundTripper = roundTripFunc(nil)

func TestWithHTTPClient(t *testing.T) {
	_, fake := newFake(t)
	var n atomic.Int32
	var ua atomic.Value
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		ua.Store(r.Header.Get("User-Agent"))
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := mustNew(t, fake.Addr(), client.WithHTTPClient(hc), client.WithUserAgent("test/1"))
	if _, err := c.Put(t.Context(), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 || ua.Load() != "test/1" {
		t.Errorf("transport saw %d requests with User-Agent %v", n.Load(), ua.Load())
	}
}

func TestNewHTTPClient(t *testing.T) {
	hc := client.NewHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost < 100 || hc.Timeout != 0 {
		t.Errorf("NewHTTPClient() = %+v", hc)
	}
}
