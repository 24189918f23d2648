package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
)

func TestServer_Get(t *testing.T) {
	ts := newTestServer(t)
	ts.b.tier = "replica"
	i1 := ts.b.commit(t, put("a", "one"), put("dir/x", "slash"), put("a/../b", "dots"), put("a//b", "double"), put("héllo wörld", "utf8"))
	i2 := ts.b.commit(t, put("empty", ""), put("a", "two"))
	ts.b.commit(t, put("other", "x"))
	applied := ts.b.store.Applied()

	tests := []struct {
		name   string
		method string
		path   string
		status int
		value  string
		mod    argent.Index
	}{
		{"Present", "GET", "/v1/kv/a", 200, "two", i2},
		{"SlashRaw", "GET", "/v1/kv/dir/x", 200, "slash", i1},
		{"SlashEscaped", "GET", "/v1/kv/dir%2Fx", 200, "slash", i1},
		{"DotSegmentsKept", "GET", "/v1/kv/a/../b", 200, "dots", i1},
		{"DotSegmentsEscaped", "GET", "/v1/kv/a%2F..%2Fb", 200, "dots", i1},
		{"DoubleSlashKept", "GET", "/v1/kv/a//b", 200, "double", i1},
		{"Unicode", "GET", "/v1/kv/" + url.PathEscape("héllo wörld"), 200, "utf8", i1},
		{"EmptyValue", "GET", "/v1/kv/empty", 200, "", i2},
		{"Head", "HEAD", "/v1/kv/a", 200, "", i2},
		{"Absent", "GET", "/v1/kv/nope", 404, "", 0},
		{"AbsentPrefixOfKey", "GET", "/v1/kv/dir", 404, "", 0},
		{"MinIndexReached", "GET", "/v1/kv/a?min_index=" + strconv.Itoa(int(i1)), 200, "two", i2},
		{"WaitWithoutMinIndex", "GET", "/v1/kv/a?wait=1s", 200, "two", i2},
		{"UnknownParamIgnored", "GET", "/v1/kv/a?x=y&min_index=", 200, "two", i2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.doString(t, tt.method, tt.path, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.Itoa(int(applied)) {
				t.Errorf("Argent-Index = %q, want %d", got, applied)
			}
			if got := resp.Header.Get(apiwire.HeaderTier); got != "replica" {
				t.Errorf("Argent-Tier = %q, want replica", got)
			}
			wantMod := ""
			if tt.mod > 0 {
				wantMod = strconv.Itoa(int(tt.mod))
			}
			if got := resp.Header.Get(apiwire.HeaderModIndex); got != wantMod {
				t.Errorf("Argent-Mod-Index = %q, want %q", got, wantMod)
			}
			if tt.status != 200 {
				if d := decodeError(t, resp, body); d.Code != apiwire.CodeNotFound {
					t.Errorf("code = %q, want not_found", d.Code)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(body) != tt.value {
				t.Errorf("body = %q, want %q", body, tt.value)
			}
			if tt.method == "HEAD" && resp.ContentLength != 3 {
				t.Errorf("HEAD Content-Length = %d, want 3", resp.ContentLength)
			}
		})
	}
}

func TestServer_GetMinIndex(t *testing.T) {
	ts := newTestServer(t, func(c *serverConfig) { c.opts.MaxWait = 200 * time.Millisecond })
	base := ts.b.commit(t, put("k", "v1"))

	t.Run("WaitSucceeds", func(t *testing.T) {
		want := ts.b.store.Applied() + 2
		wait := commitLater(t, ts.b, 20*time.Millisecond, []argent.Op{put("x", "1")}, []argent.Op{put("k", "v2")})
		defer wait()
		resp, body := ts.doString(t, "GET", fmt.Sprintf("/v1/kv/k?min_index=%d&wait=150ms", want), "")
		wait()
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d: %s", resp.StatusCode, body)
		}
		idx, _ := strconv.Atoi(resp.Header.Get(apiwire.HeaderIndex))
		if argent.Index(idx) < want {
			t.Errorf("Argent-Index = %d, below min_index %d", idx, want)
		}
		if string(body) != "v2" {
			t.Errorf("body = %q, want v2", body)
		}
	})
	for _, tt := range []struct {
		name    string
		query   string
		atLeast time.Duration
		atMost  time.Duration
	}{
		{"Timeout", "wait=50ms", 50 * time.Millisecond, 2 * time.Second},
		{"NoWait", "wait=0s", 0, time.Second},
		{"WaitCapped", "wait=1h", 200 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			applied := ts.b.store.Applied()
			start := time.Now()
			resp, body := ts.doString(t, "GET", fmt.Sprintf("/v1/kv/k?min_index=%d&%s", applied+5, tt.query), "")
			took := time.Since(start)
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("status = %d, want 504: %s", resp.StatusCode, body)
			}
			if d := decodeError(t, resp, body); d.Code != apiwire.CodeTimeout {
				t.Errorf("code = %q, want timeout", d.Code)
			}
			if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.Itoa(int(applied)) {
				t.Errorf("Argent-Index = %q, want the index reached, %d", got, applied)
			}
			if took < tt.atLeast || took > tt.atMost {
				t.Errorf("took %v, want between %v and %v", took, tt.atLeast, tt.atMost)
			}
		})
	}
	_ = base
}

func TestServer_MGet(t *testing.T) {
	ts := newTestServer(t)
	i1 := ts.b.commit(t, put("a", "1"), put("b", "2"), put("e", ""))
	i2 := ts.b.commit(t, put("a", "3"), del("b"))

	t.Run("Items", func(t *testing.T) {
		resp, body := ts.doString(t, "POST", "/v1/mget", `{"keys":["a","b","c","e","a"]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got := decodeJSON[apiwire.MGetResponse](t, body)
		want := apiwire.MGetResponse{Index: i2, Items: []apiwire.Item{
			{Key: "a", Value: []byte("3"), ModIndex: i2},
			{Key: "b", Absent: true},
			{Key: "c", Absent: true},
			{Key: "e", ModIndex: i1},
			{Key: "a", Value: []byte("3"), ModIndex: i2},
		}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("mget = %+v\nwant   %+v", got, want)
		}
		if h := resp.Header.Get(apiwire.HeaderIndex); h != strconv.Itoa(int(i2)) {
			t.Errorf("Argent-Index = %q, want %d", h, i2)
		}
	})
	t.Run("NoKeys", func(t *testing.T) {
		resp, body := ts.doString(t, "POST", "/v1/mget", `{"keys":[]}`)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"items":[]`) {
			t.Errorf("status %d body %s", resp.StatusCode, body)
		}
	})
	t.Run("MinIndexTimeout", func(t *testing.T) {
		resp, body := ts.doString(t, "POST", fmt.Sprintf("/v1/mget?min_index=%d&wait=10ms", i2+1), `{"keys":["a"]}`)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("MinIndexWait", func(t *testing.T) {
		defer commitLater(t, ts.b, 20*time.Millisecond, []argent.Op{put("c", "late")})()
		resp, body := ts.doString(t, "POST", fmt.Sprintf("/v1/mget?min_index=%d&wait=5s", i2+1), `{"keys":["c"]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got := decodeJSON[apiwire.MGetResponse](t, body)
		if got.Index < i2+1 || string(got.Items[0].Value) != "late" {
			t.Errorf("mget = %+v, want c=late at >= %d", got, i2+1)
		}
	})
}

// TestServer_MGetOneIndex checks that an mget reads every key at one index
// while batches that change all the keys at once keep committing.
func TestServer_MGetOneIndex(t *testing.T) {
	ts := newTestServer(t)
	keys := []string{"m/a", "m/b", "m/c", "m/d"}
	write := func(i int) {
		ops := make([]argent.Op, 0, len(keys))
		for _, k := range keys {
			if i%5 == 4 {
				ops = append(ops, del(k))
			} else {
				ops = append(ops, put(k, strconv.Itoa(i)))
			}
		}
		ts.b.commit(t, ops...)
	}
	write(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			write(i)
			// Leave the readers some CPU when GOMAXPROCS is 1.
			time.Sleep(50 * time.Microsecond)
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()
	body := `{"keys":["m/a","m/b","m/c","m/d"]}`
	seen := map[argent.Index]bool{}
	// At least 200 mgets, and more until the writer (fsyncing each commit,
	// slow on a busy machine) has moved the index ten times.
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 200 || len(seen) < 10 && time.Now().Before(deadline); n++ {
		resp, b := ts.doString(t, "POST", "/v1/mget", body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		got := decodeJSON[apiwire.MGetResponse](t, b)
		seen[got.Index] = true
		first := got.Items[0]
		for _, it := range got.Items {
			if it.Absent != first.Absent || string(it.Value) != string(first.Value) || it.ModIndex != first.ModIndex {
				t.Fatalf("mget at %d mixes states: %+v", got.Index, got.Items)
			}
			if it.ModIndex > got.Index {
				t.Fatalf("mget at %d has mod index %d", got.Index, it.ModIndex)
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("mgets saw %d indexes; the writer did not run alongside", len(seen))
	}
}

func TestServer_Scan(t *testing.T) {
	ts := newTestServer(t, func(c *serverConfig) { c.opts.MaxScanLimit = 3 })
	ts.b.commit(t, put("p/1", "a"), put("p/2", "b"), put("p/3", "c"), put("p/4", "d"), put("q/1", "e"), put("p", "root"))
	last := ts.b.commit(t, put("p/5", "f"), del("p/4"))

	page := func(t *testing.T, query string) apiwire.ScanPage {
		t.Helper()
		resp, body := ts.doString(t, "GET", "/v1/kv?"+query, "")
		if resp.StatusCode != 200 {
			t.Fatalf("scan %s: status %d: %s", query, resp.StatusCode, body)
		}
		if h := resp.Header.Get(apiwire.HeaderIndex); h != strconv.Itoa(int(last)) {
			t.Errorf("Argent-Index = %q, want %d", h, last)
		}
		p := decodeJSON[apiwire.ScanPage](t, body)
		if p.Index != last {
			t.Errorf("page index = %d, want %d", p.Index, last)
		}
		return p
	}
	keysOf := func(p apiwire.ScanPage) string {
		var ks []string
		for _, it := range p.Items {
			ks = append(ks, it.Key+"="+string(it.Value))
		}
		return strings.Join(ks, ",")
	}
	for _, tt := range []struct {
		name  string
		query string
		keys  string
		next  string
	}{
		{"FirstPage", "prefix=p/&limit=2", "p/1=a,p/2=b", "p/2"},
		{"SecondPage", "prefix=p/&limit=2&after=p/2", "p/3=c,p/5=f", ""},
		{"EscapedPrefix", "prefix=p%2F&limit=2&after=p%2F2", "p/3=c,p/5=f", ""},
		{"LimitCapped", "prefix=p/&limit=50", "p/1=a,p/2=b,p/3=c", "p/3"},
		{"DefaultLimitAllKeys", "", "p=root,p/1=a,p/2=b", "p/2"},
		{"NoMatch", "prefix=z", "", ""},
		{"AfterLast", "prefix=p/&after=p/5", "", ""},
		{"OtherPrefix", "prefix=q", "q/1=e", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := page(t, tt.query)
			if got := keysOf(p); got != tt.keys {
				t.Errorf("keys = %q, want %q", got, tt.keys)
			}
			if p.Next != tt.next {
				t.Errorf("next = %q, want %q", p.Next, tt.next)
			}
		})
	}
	t.Run("ModIndexes", func(t *testing.T) {
		p := page(t, "prefix=p/5")
		if len(p.Items) != 1 || p.Items[0].ModIndex != last {
			t.Errorf("items = %+v, want p/5 at mod index %d", p.Items, last)
		}
	})
	t.Run("AtPinsTheIndex", func(t *testing.T) {
		// At the index before the last batch, p/4 still exists and p/5 does not.
		resp, body := ts.doString(t, "GET", fmt.Sprintf("/v1/kv?prefix=p/&after=p/2&at=%d", last-1), "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		p := decodeJSON[apiwire.ScanPage](t, body)
		if p.Index != last-1 || keysOf(p) != "p/3=c,p/4=d" {
			t.Errorf("page at %d = %d %q, want %d \"p/3=c,p/4=d\"", last-1, p.Index, keysOf(p), last-1)
		}
	})
	t.Run("AtInTheFuture", func(t *testing.T) {
		resp, body := ts.doString(t, "GET", fmt.Sprintf("/v1/kv?prefix=p&at=%d&wait=5ms", last+1), "")
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("AtNotANumber", func(t *testing.T) {
		resp, body := ts.doString(t, "GET", "/v1/kv?prefix=p&at=x", "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("MinIndexTimeout", func(t *testing.T) {
		resp, body := ts.doString(t, "GET", fmt.Sprintf("/v1/kv?prefix=p&min_index=%d&wait=5ms", last+1), "")
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

// hangingReader is a store whose reads of keys under "miss/" wait until
// their context ends, as a proxy's misses do at a replica that never
// answers, and then send the context's error on ended.
type hangingReader struct {
	*kv.Store
	ended chan error
}

func (h *hangingReader) hang(ctx context.Context) error {
	<-ctx.Done()
	h.ended <- ctx.Err()
	return fmt.Errorf("%w: miss: %w", argent.ErrUnavailable, ctx.Err())
}

func (h *hangingReader) Get(ctx context.Context, key []byte, at argent.Index) (argent.Value, error) {
	if bytes.HasPrefix(key, []byte("miss/")) {
		return argent.Value{}, h.hang(ctx)
	}
	return h.Store.Get(ctx, key, at)
}

func (h *hangingReader) Scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error) {
	if bytes.HasPrefix(prefix, []byte("miss/")) {
		return nil, false, h.hang(ctx)
	}
	return h.Store.Scan(ctx, prefix, after, limit, at)
}

// readerBackend is a Backend whose reads go to r.
type readerBackend struct {
	*fakeBackend
	r api.Reader
}

func (b readerBackend) Reader() api.Reader { return b.r }

// TestServer_ReadStopsWhenClientLeaves checks that the handlers give a
// read the request's context, so that a read that waits (a proxy's miss)
// stops when its client leaves.
func TestServer_ReadStopsWhenClientLeaves(t *testing.T) {
	for _, tt := range []struct {
		name, method, path, body string
	}{
		{"Get", http.MethodGet, "/v1/kv/miss%2Fa", ""},
		{"MGet", http.MethodPost, "/v1/mget", `{"keys":["miss/a"]}`},
		{"Scan", http.MethodGet, "/v1/kv?prefix=miss%2F", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &hangingReader{ended: make(chan error, 1)}
			ts := newTestServer(t, func(c *serverConfig) {
				c.wrap = func(f *fakeBackend) api.Backend {
					h.Store = f.store
					return readerBackend{fakeBackend: f, r: h}
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if resp, err := ts.Client().Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("%s %s answered %s; want the client to give up first", tt.method, tt.path, resp.Status)
			}
			select {
			case err := <-h.ended:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("the read ended with %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the read's context did not end within 5 s of the client leaving")
			}
		})
	}
}
