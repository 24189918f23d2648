package lookup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// modelScan is the page of a scan of the model's state want: at most limit
// keys with prefix after after, and whether more follow.
func modelScan(want state, prefix, after string, limit int) ([]argent.Item, bool) {
	var keys []string
	for k := range want {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	more := len(keys) > limit
	keys = keys[:min(len(keys), limit)]
	items := make([]argent.Item, len(keys))
	for i, k := range keys {
		items[i] = argent.Item{Key: []byte(k), Value: want[k]}
	}
	return items, more
}

// checkPage compares a page with want.
func checkPage(t *testing.T, what string, got []argent.Item, gotMore bool, want []argent.Item, wantMore bool) {
	t.Helper()
	if gotMore != wantMore || len(got) != len(want) {
		t.Errorf("%s: %d items, more %v; want %d, more %v", what, len(got), gotMore, len(want), wantMore)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value.Value, w.Value.Value) || g.ModIndex != w.ModIndex {
			t.Errorf("%s: item %d is %q=%q@%d, want %q=%q@%d", what, i, g.Key, g.Value.Value, g.ModIndex, w.Key, w.Value.Value, w.ModIndex)
		}
	}
}

func scanQuery(prefix, after string, limit int, at argent.Index) string {
	q := url.Values{"prefix": {prefix}, "limit": {strconv.Itoa(limit)}, "at": {strconv.FormatUint(uint64(at), 10)}}
	if after != "" {
		q.Set("after", after)
	}
	return q.Encode()
}

// scanGet sends GET ScanPath with the raw query q.
func (f *fixture) scanGet(q string) *http.Response {
	f.t.Helper()
	resp, err := f.hs.Client().Get(f.hs.URL + lookup.ScanPath + "?" + q)
	if err != nil {
		f.t.Fatalf("GET scan %s: %v", q, err)
	}
	return resp
}

// errorCode reads an error answer's code and closes its body.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb apiwire.ErrorBody
	if err := json.Unmarshal(raw, &eb); err != nil {
		t.Errorf("body %q is not a JSON error: %v", raw, err)
	}
	return eb.Error.Code
}

// TestServer_ScanAhead scans as of every index the replica has, with
// prefixes and afters of any bytes: each page is the state at that index,
// the same kv.Store.Scan gives, and the pages of a walk add up to every
// key with the prefix.
func TestServer_ScanAhead(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	c := f.client(&lookup.ClientOptions{Dataset: f.st.Dataset()})
	ctx := context.Background()
	prefixes := []string{"", "a", "dir/", "\x00", "sp ace+&=?%", "never"}
	afters := []string{"", "a", "b", "dir/x", "\x00", "\x00\xff", "zzz"}
	for s := argent.Index(0); s <= applied; s++ {
		for _, prefix := range prefixes {
			for _, after := range afters {
				for _, limit := range []int{1, 2, 100} {
					what := fmt.Sprintf("scan %q after %q limit %d as of %d", prefix, after, limit, s)
					items, more, err := c.Scan(ctx, []byte(prefix), []byte(after), limit, s)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					want, wantMore := modelScan(f.states[s], prefix, after, limit)
					checkPage(t, what+" (model)", items, more, want, wantMore)
					stItems, stMore, err := f.st.Scan(context.Background(), []byte(prefix), []byte(after), limit, s)
					if err != nil {
						t.Fatalf("store %s: %v", what, err)
					}
					checkPage(t, what+" (store)", items, more, stItems, stMore)
				}
			}
		}
		// A walk of one-key pages finds every key once.
		var walked []argent.Item
		after := []byte(nil)
		for {
			items, more, err := c.Scan(ctx, nil, after, 1, s)
			if err != nil {
				t.Fatalf("walk as of %d: %v", s, err)
			}
			walked = append(walked, items...)
			if !more {
				break
			}
			after = items[len(items)-1].Key
		}
		want, _ := modelScan(f.states[s], "", "", 1000)
		checkPage(t, fmt.Sprintf("walk as of %d", s), walked, false, want, false)
	}
	// The raw answer: Argent-Index is the index asked for.
	resp := f.scanGet(scanQuery("dir/", "", 10, 1))
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(apiwire.HeaderIndex) != "1" {
		t.Errorf("scan as of 1: status %d, Argent-Index %q (%s), want 200 at 1", resp.StatusCode, resp.Header.Get(apiwire.HeaderIndex), raw)
	}
	if want := `{"index":1,"items":[{"key":"ZGlyL3g=","value":"eDE=","mod_index":1},{"key":"ZGlyL3k=","value":"eTE=","mod_index":1}]}` + "\n"; string(raw) != want {
		t.Errorf("scan as of 1: body %s, want %s", raw, want)
	}
}

// TestServer_ScanBehindCatchesUp asks as of an index the replica reaches
// while the scan waits: the page is the state at that index.
func TestServer_ScanBehindCatchesUp(t *testing.T) {
	f := newFixture(t, &lookup.Config{ScanWait: 5 * time.Second})
	applied := f.writeHistory()
	c := f.client(nil)
	type answer struct {
		items []argent.Item
		more  bool
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		items, more, err := c.Scan(context.Background(), nil, nil, 100, applied+2)
		done <- answer{items, more, err}
	}()
	time.Sleep(50 * time.Millisecond)
	f.write(put("late", "1"))
	select {
	case a := <-done:
		t.Fatalf("scan as of %d answered before the replica reached it: %v", applied+2, a.err)
	case <-time.After(50 * time.Millisecond):
	}
	f.write(del("a"), put("later", "2"))
	a := <-done
	if a.err != nil {
		t.Fatalf("scan as of %d: %v", applied+2, a.err)
	}
	want, wantMore := modelScan(f.states[applied+2], "", "", 100)
	checkPage(t, "scan after catching up", a.items, a.more, want, wantMore)
}

// TestServer_ScanBehind asks as of an index the replica does not reach in
// its wait: it refuses with its own index, never a page as of it.
func TestServer_ScanBehind(t *testing.T) {
	f := newFixture(t, &lookup.Config{ScanWait: 300 * time.Millisecond})
	applied := f.writeHistory()
	c := f.client(nil)
	ctx := context.Background()
	for _, at := range []argent.Index{applied + 1, applied + 1000} {
		start := time.Now()
		items, _, err := c.Scan(ctx, nil, nil, 10, at)
		var le *lookup.Error
		if !errors.Is(err, lookup.ErrBehind) || !errors.Is(err, argent.ErrUnavailable) || !errors.As(err, &le) || le.Index != applied || le.Op != "scan" {
			t.Errorf("scan as of %d at a replica at %d: %d items, err %v; want ErrBehind from a replica at %d", at, applied, len(items), err, applied)
		}
		if d := time.Since(start); d < 290*time.Millisecond || d > 3*time.Second {
			t.Errorf("scan as of %d refused after %v, want after the 300 ms wait", at, d)
		}
	}
	// The raw answer: 504 timeout with the replica's index; a wait asked
	// for is cut to ScanWait, and wait=0 does not wait.
	for _, tc := range []struct {
		wait     string
		min, max time.Duration
	}{
		{wait: "1h", min: 290 * time.Millisecond, max: 3 * time.Second},
		{wait: "0s", max: 250 * time.Millisecond},
	} {
		start := time.Now()
		resp := f.scanGet(scanQuery("", "", 10, applied+1) + "&wait=" + tc.wait)
		d := time.Since(start)
		idx := resp.Header.Get(apiwire.HeaderIndex)
		if code := errorCode(t, resp); resp.StatusCode != http.StatusGatewayTimeout || code != apiwire.CodeTimeout || idx != strconv.FormatUint(uint64(applied), 10) {
			t.Errorf("wait=%s: status %d code %q Argent-Index %q, want 504 timeout at %d", tc.wait, resp.StatusCode, code, idx, applied)
		}
		if d < tc.min || d > tc.max {
			t.Errorf("wait=%s: answered after %v, want in [%v, %v]", tc.wait, d, tc.min, tc.max)
		}
	}
}

func TestServer_ScanCompacted(t *testing.T) {
	f, horizon := compactedFixture(t)
	applied := f.st.Applied()
	c := f.client(nil)
	ctx := context.Background()
	_, _, err := c.Scan(ctx, nil, nil, 10, horizon-1)
	var le *lookup.Error
	if !errors.Is(err, argent.ErrCompacted) || !errors.As(err, &le) || le.Index != applied || le.Op != "scan" {
		t.Errorf("scan below the horizon: err = %v, want ErrCompacted from a replica at %d", err, applied)
	}
	if errors.Is(err, argent.ErrUnavailable) || errors.Is(err, lookup.ErrBehind) {
		t.Errorf("compacted reads as unavailable or behind: %v", err)
	}
	resp := f.scanGet(scanQuery("", "", 10, horizon-1))
	idx := resp.Header.Get(apiwire.HeaderIndex)
	if code := errorCode(t, resp); resp.StatusCode != http.StatusGone || code != apiwire.CodeCompacted || idx != strconv.FormatUint(uint64(applied), 10) {
		t.Errorf("raw scan below the horizon: status %d code %q Argent-Index %q, want 410 compacted at %d", resp.StatusCode, code, idx, applied)
	}
	for s := horizon; s <= applied; s++ {
		items, more, err := c.Scan(ctx, nil, nil, 100, s)
		if err != nil {
			t.Fatalf("scan as of %d (horizon %d): %v", s, horizon, err)
		}
		want, wantMore := modelScan(f.states[s], "", "", 100)
		checkPage(t, fmt.Sprintf("scan as of %d", s), items, more, want, wantMore)
	}
}

func TestServer_ScanBadInput(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	long := strings.Repeat("k", argent.DefaultMaxKey+1)
	for _, tc := range []struct {
		name   string
		method string
		query  string
		status int
		code   string
	}{
		{name: "MissingPrefix", query: "limit=1&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "PrefixTwice", query: "prefix=a&prefix=b&limit=1&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "OversizePrefix", query: "prefix=" + long + "&limit=1&at=1", status: 413, code: apiwire.CodeTooLarge},
		{name: "OversizeAfter", query: "prefix=&after=" + long + "&limit=1&at=1", status: 413, code: apiwire.CodeTooLarge},
		{name: "AfterTwice", query: "prefix=&after=a&after=b&limit=1&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "MissingLimit", query: "prefix=&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "ZeroLimit", query: "prefix=&limit=0&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "NegativeLimit", query: "prefix=&limit=-1&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "NonNumericLimit", query: "prefix=&limit=all&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "LimitTwice", query: "prefix=&limit=1&limit=2&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "MissingAt", query: "prefix=&limit=1", status: 400, code: apiwire.CodeInvalid},
		{name: "NonNumericAt", query: "prefix=&limit=1&at=latest", status: 400, code: apiwire.CodeInvalid},
		{name: "AtOverflows", query: "prefix=&limit=1&at=18446744073709551616", status: 400, code: apiwire.CodeInvalid},
		{name: "BadWait", query: "prefix=&limit=1&at=1&wait=soon", status: 400, code: apiwire.CodeInvalid},
		{name: "NegativeWait", query: "prefix=&limit=1&at=1&wait=-1s", status: 400, code: apiwire.CodeInvalid},
		{name: "WaitTwice", query: "prefix=&limit=1&at=1&wait=1s&wait=2s", status: 400, code: apiwire.CodeInvalid},
		{name: "BadEscape", query: "prefix=%zz&limit=1&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "Post", method: "POST", query: "prefix=&limit=1&at=1", status: 405, code: apiwire.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, f.hs.URL+lookup.ScanPath+"?"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := f.hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			h := resp.Header.Get(apiwire.HeaderIndex)
			if code := errorCode(t, resp); resp.StatusCode != tc.status || code != tc.code {
				t.Errorf("status %d code %q, want %d %q", resp.StatusCode, code, tc.status, tc.code)
			}
			if h != "" {
				t.Errorf("refused request has Argent-Index %q", h)
			}
		})
	}
	// The client refuses the same before asking.
	c := f.client(nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		prefix, after string
		limit         int
		want          error
	}{
		{name: "ZeroLimit", limit: 0, want: argent.ErrInvalid},
		{name: "OversizePrefix", prefix: long, limit: 1, want: argent.ErrTooLarge},
		{name: "OversizeAfter", after: long, limit: 1, want: argent.ErrTooLarge},
	} {
		if _, _, err := c.Scan(ctx, []byte(tc.prefix), []byte(tc.after), tc.limit, 1); !errors.Is(err, tc.want) {
			t.Errorf("client %s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := f.st.Applied(); got != applied {
		t.Errorf("applied index %d after bad requests, want %d", got, applied)
	}
}

// TestServer_ScanPageBounds: a page holds at most MaxScanLimit keys and
// about MaxScanBytes of keys and values (at least one item), and says more
// follow when it was cut; walking the pages still finds every key.
func TestServer_ScanPageBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     lookup.Config
		perPage int // the most items a page of the walk may hold
	}{
		{name: "Count", cfg: lookup.Config{MaxScanLimit: 3}, perPage: 3},
		{name: "Bytes", cfg: lookup.Config{MaxScanBytes: 20}, perPage: 2}, // items of 5+2 bytes
		{name: "BytesBelowOneItem", cfg: lookup.Config{MaxScanBytes: 1}, perPage: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &tc.cfg)
			var ops []argent.Op
			for i := range 20 {
				ops = append(ops, put(fmt.Sprintf("p/%03d", i), "vv"))
			}
			at := f.write(ops...)
			c := f.client(nil)
			var walked []argent.Item
			var after []byte
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("more than 20 pages for 20 keys")
				}
				items, more, err := c.Scan(context.Background(), []byte("p/"), after, 100, at)
				if err != nil {
					t.Fatal(err)
				}
				if len(items) == 0 || len(items) > tc.perPage {
					t.Fatalf("page of %d items, want 1..%d", len(items), tc.perPage)
				}
				walked = append(walked, items...)
				if !more {
					break
				}
				after = items[len(items)-1].Key
			}
			want, _ := modelScan(f.states[at], "p/", "", 100)
			checkPage(t, "walk", walked, false, want, false)
		})
	}
}

// TestClient_ScanProtocol answers scans with things a replica must not
// say: the client refuses each with ErrProtocol (and ErrUnavailable).
func TestClient_ScanProtocol(t *testing.T) {
	page := func(index, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if index != "" {
				w.Header().Set(apiwire.HeaderIndex, index)
			}
			_, _ = w.Write([]byte(body))
		}
	}
	a := `{"key":"cC9h","value":"eA==","mod_index":3}`     // p/a
	b := `{"key":"cC9i","value":"eA==","mod_index":3}`     // p/b
	q := `{"key":"cS9h","value":"eA==","mod_index":3}`     // q/a: no prefix p/
	late := `{"key":"cC9i","value":"eA==","mod_index":11}` // mod index past 10
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "Plain404", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "NoIndex", handler: page("", `{"index":10,"items":[]}`)},
		{name: "IndexBehind", handler: page("9", `{"index":9,"items":[]}`)},
		{name: "IndexPastAt", handler: page("11", `{"index":11,"items":[]}`)},
		{name: "BodyIndexDisagrees", handler: page("10", `{"index":9,"items":[]}`)},
		{name: "BadJSON", handler: page("10", `{"index":10,`)},
		{name: "TooManyItems", handler: page("10", `{"index":10,"items":[`+a+`,`+b+`,`+b+`]}`)},
		{name: "Unsorted", handler: page("10", `{"index":10,"items":[`+b+`,`+a+`]}`)},
		{name: "Duplicate", handler: page("10", `{"index":10,"items":[`+a+`,`+a+`]}`)},
		{name: "NotAfter", handler: page("10", `{"index":10,"items":[`+a+`]}`)}, // asked after p/a
		{name: "WrongPrefix", handler: page("10", `{"index":10,"items":[`+q+`]}`)},
		{name: "ModPastIndex", handler: page("10", `{"index":10,"items":[`+late+`]}`)},
		{name: "EmptyWithMore", handler: page("10", `{"index":10,"items":[],"more":true}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(wirecheck.Handler(tc.handler))
			defer hs.Close()
			c, err := lookup.NewClient(hs.URL, &lookup.ClientOptions{HTTPClient: hs.Client()})
			if err != nil {
				t.Fatal(err)
			}
			after := ""
			if tc.name == "NotAfter" {
				after = "p/a"
			}
			items, _, err := c.Scan(context.Background(), []byte("p/"), []byte(after), 2, 10)
			if !errors.Is(err, lookup.ErrProtocol) || !errors.Is(err, argent.ErrUnavailable) {
				t.Errorf("Scan = %d items, err %v; want ErrProtocol and ErrUnavailable", len(items), err)
			}
		})
	}
	// A well-formed page passes the same checks.
	hs := httptest.NewServer(wirecheck.Handler(page("10", `{"index":10,"items":[`+a+`,`+b+`],"more":true}`)))
	defer hs.Close()
	c, err := lookup.NewClient(hs.URL, &lookup.ClientOptions{HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	items, more, err := c.Scan(context.Background(), []byte("p/"), nil, 2, 10)
	if err != nil || len(items) != 2 || !more || string(items[1].Key) != "p/b" || string(items[1].Value.Value) != "x" || items[1].ModIndex != 3 {
		t.Errorf("good page: %+v, more %v, err %v", items, more, err)
	}
}
