package lookup_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
)

// checkAnswer checks a one-key answer against the model's state want at
// index x.
func checkAnswer(t *testing.T, resp *http.Response, key string, x argent.Index, want state) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.FormatUint(uint64(x), 10) {
		t.Errorf("key %q: Argent-Index %q, want %d", key, got, x)
	}
	v, ok := want[key]
	if !ok {
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("key %q as of %d: status %d, want 404 (absent)", key, x, resp.StatusCode)
			return
		}
		var eb apiwire.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != apiwire.CodeNotFound {
			t.Errorf("key %q: 404 body %q, want a not_found error", key, body)
		}
		if h := resp.Header.Get(apiwire.HeaderModIndex); h != "" {
			t.Errorf("key %q: absent answer has Argent-Mod-Index %q", key, h)
		}
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("key %q as of %d: status %d (%s), want 200", key, x, resp.StatusCode, body)
		return
	}
	if !bytes.Equal(body, v.Value) {
		t.Errorf("key %q as of %d: value %q, want %q", key, x, body, v.Value)
	}
	if got := resp.Header.Get(apiwire.HeaderModIndex); got != strconv.FormatUint(uint64(v.ModIndex), 10) {
		t.Errorf("key %q as of %d: Argent-Mod-Index %q, want %d", key, x, got, v.ModIndex)
	}
}

func lookupQuery(key string, at argent.Index) string {
	return url.Values{"key": {key}, "at": {strconv.FormatUint(uint64(at), 10)}}.Encode()
}

// TestServer_GetAhead reads every key as of every index the replica has:
// each answer is the state at that index.
func TestServer_GetAhead(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	for s := argent.Index(0); s <= applied; s++ {
		for _, k := range f.keys() {
			checkAnswer(t, f.get(lookupQuery(k, s)), k, s, f.states[s])
		}
	}
}

// TestServer_GetBehind asks as of indexes the replica has not reached: the
// answer is the state at its applied index, which Argent-Index names.
func TestServer_GetBehind(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	for _, s := range []argent.Index{applied + 1, applied + 1000, math.MaxUint64} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			for _, k := range f.keys() {
				checkAnswer(t, f.get(lookupQuery(k, s)), k, applied, f.states[applied])
			}
		})
	}
}

// compactedFixture writes history, lets an hour and more pass, writes again
// and trims, so that the oldest indexes fall below the horizon.
func compactedFixture(t *testing.T) (*fixture, argent.Index) {
	t.Helper()
	f := newFixture(t, nil)
	f.writeHistory()
	f.clock.Advance(2 * time.Hour)
	f.write(put("a", "late"))
	for {
		r, err := f.st.Trim()
		if err != nil {
			t.Fatalf("trim: %v", err)
		}
		if !r.Progress() {
			break
		}
	}
	h := f.st.Horizon()
	if h <= 1 {
		t.Fatalf("horizon %d after trim, want > 1", h)
	}
	return f, h
}

func TestServer_GetCompacted(t *testing.T) {
	f, horizon := compactedFixture(t)
	applied := f.st.Applied()
	for s := argent.Index(0); s < horizon; s++ {
		resp := f.get(lookupQuery("a", s))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb apiwire.ErrorBody
		_ = json.Unmarshal(body, &eb)
		if resp.StatusCode != http.StatusGone || eb.Error.Code != apiwire.CodeCompacted {
			t.Errorf("as of %d (horizon %d): status %d code %q, want 410 compacted", s, horizon, resp.StatusCode, eb.Error.Code)
		}
		if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.FormatUint(uint64(applied), 10) {
			t.Errorf("as of %d: 410 has Argent-Index %q, want the applied index %d", s, got, applied)
		}
	}
	for s := horizon; s <= applied+1; s++ {
		x := min(s, applied)
		for _, k := range f.keys() {
			checkAnswer(t, f.get(lookupQuery(k, s)), k, x, f.states[x])
		}
	}
}

func TestServer_BadInput(t *testing.T) {
	f := newFixture(t, &lookup.Config{MaxKeys: 3, MaxBody: 1 << 10})
	applied := f.writeHistory()
	long := strings.Repeat("k", argent.DefaultMaxKey+1)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		query  string
		body   string
		status int
		code   string
	}{
		{name: "MissingKey", method: "GET", query: "at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "EmptyKey", method: "GET", query: "key=&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "KeyTwice", method: "GET", query: "key=a&key=b&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "OversizeKey", method: "GET", query: "key=" + long + "&at=1", status: 413, code: apiwire.CodeTooLarge},
		{name: "MissingAt", method: "GET", query: "key=a", status: 400, code: apiwire.CodeInvalid},
		{name: "EmptyAt", method: "GET", query: "key=a&at=", status: 400, code: apiwire.CodeInvalid},
		{name: "NonNumericAt", method: "GET", query: "key=a&at=latest", status: 400, code: apiwire.CodeInvalid},
		{name: "NegativeAt", method: "GET", query: "key=a&at=-1", status: 400, code: apiwire.CodeInvalid},
		{name: "AtOverflows", method: "GET", query: "key=a&at=18446744073709551616", status: 400, code: apiwire.CodeInvalid},
		{name: "AtTwice", method: "GET", query: "key=a&at=1&at=2", status: 400, code: apiwire.CodeInvalid},
		{name: "BadEscape", method: "GET", query: "key=%zz&at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "Put", method: "PUT", query: "key=a&at=1", status: 405, code: apiwire.CodeInvalid},
		{name: "Delete", method: "DELETE", query: "key=a&at=1", status: 405, code: apiwire.CodeInvalid},
		{name: "PostMissingAt", method: "POST", body: `{"keys":["a"]}`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostBadAt", method: "POST", query: "at=x", body: `{"keys":["a"]}`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostNoBody", method: "POST", query: "at=1", status: 400, code: apiwire.CodeInvalid},
		{name: "PostBadJSON", method: "POST", query: "at=1", body: `{"keys":`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostUnknownField", method: "POST", query: "at=1", body: `{"keys":["a"],"x":1}`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostTrailingData", method: "POST", query: "at=1", body: `{"keys":["a"]} {}`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostEmptyKey", method: "POST", query: "at=1", body: `{"keys":["a",""]}`, status: 400, code: apiwire.CodeInvalid},
		{name: "PostTooManyKeys", method: "POST", query: "at=1", body: `{"keys":["a","b","c","d"]}`, status: 413, code: apiwire.CodeTooLarge},
		{name: "PostBodyTooLarge", method: "POST", query: "at=1", body: `{"keys":["` + strings.Repeat("k", 2000) + `"]}`, status: 413, code: apiwire.CodeTooLarge},
		{name: "FilterBadMinIndex", method: "GET", path: lookup.FilterPath, query: "min_index=x", status: 400, code: apiwire.CodeInvalid},
		{name: "FilterPost", method: "POST", path: lookup.FilterPath, status: 405, code: apiwire.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = lookup.LookupPath
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, f.hs.URL+path+"?"+tc.query, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := f.hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var eb apiwire.ErrorBody
			if err := json.Unmarshal(raw, &eb); err != nil {
				t.Errorf("body %q is not a JSON error: %v", raw, err)
			}
			if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
				t.Errorf("status %d code %q (%s), want %d %q", resp.StatusCode, eb.Error.Code, eb.Error.Message, tc.status, tc.code)
			}
			if h := resp.Header.Get(apiwire.HeaderIndex); h != "" {
				t.Errorf("refused request has Argent-Index %q", h)
			}
		})
	}
	// Nothing changed: same applied index, same answers.
	if got := f.st.Applied(); got != applied {
		t.Errorf("applied index %d after bad requests, want %d", got, applied)
	}
	for _, k := range f.keys() {
		checkAnswer(t, f.get(lookupQuery(k, applied)), k, applied, f.states[applied])
	}
}

// checkMany checks a many-key answer against the model's state want at x.
func checkMany(t *testing.T, got apiwire.MGetResponse, keys []string, x argent.Index, want state) {
	t.Helper()
	if got.Index != x {
		t.Errorf("index %d, want %d", got.Index, x)
	}
	if len(got.Items) != len(keys) {
		t.Fatalf("%d items for %d keys", len(got.Items), len(keys))
	}
	for i, it := range got.Items {
		if it.Key != keys[i] {
			t.Errorf("item %d is key %q, want %q", i, it.Key, keys[i])
		}
		v, ok := want[keys[i]]
		switch {
		case !ok && !it.Absent:
			t.Errorf("key %q as of %d: %+v, want absent", keys[i], x, it)
		case ok && (it.Absent || !bytes.Equal(it.Value, v.Value) || it.ModIndex != v.ModIndex):
			t.Errorf("key %q as of %d: %+v, want %q at %d", keys[i], x, it, v.Value, v.ModIndex)
		}
	}
}

func TestServer_PostOneIndex(t *testing.T) {
	f := newFixture(t, nil)
	applied := f.writeHistory()
	var keys []string
	for _, k := range f.keys() {
		if utf8.ValidString(k) {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "a") // a key twice is answered twice
	body, _ := json.Marshal(apiwire.MGetRequest{Keys: keys})
	for s := argent.Index(0); s <= applied+2; s++ {
		x := min(s, applied)
		resp := f.post("at="+strconv.FormatUint(uint64(s), 10), string(body))
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("as of %d: status %d (%s)", s, resp.StatusCode, raw)
		}
		if h := resp.Header.Get(apiwire.HeaderIndex); h != strconv.FormatUint(uint64(x), 10) {
			t.Errorf("as of %d: Argent-Index %q, want %d", s, h, x)
		}
		var got apiwire.MGetResponse
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("as of %d: decode %q: %v", s, raw, err)
		}
		checkMany(t, got, keys, x, f.states[x])
	}
	if got, want := f.srv.KeysLookedUp(), uint64(len(keys))*uint64(applied+3); got != want {
		t.Errorf("KeysLookedUp = %d, want %d", got, want)
	}
	// No keys: an empty answer at the index.
	resp := f.post("at=2", `{"keys":[]}`)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"index":2`) {
		t.Errorf("no keys: status %d body %s", resp.StatusCode, raw)
	}
}

func TestServer_PostCompacted(t *testing.T) {
	f, horizon := compactedFixture(t)
	resp := f.post("at="+strconv.FormatUint(uint64(horizon-1), 10), `{"keys":["a","b"]}`)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("status %d, want 410", resp.StatusCode)
	}
	if h := resp.Header.Get(apiwire.HeaderIndex); h != strconv.FormatUint(uint64(f.st.Applied()), 10) {
		t.Errorf("Argent-Index %q, want the applied index %d", h, f.st.Applied())
	}
}

func TestServer_Dataset(t *testing.T) {
	f := newFixture(t, nil)
	f.write(put("a", "1"))
	other := argent.DatasetID{1, 2, 3}
	for _, tc := range []struct {
		name   string
		header string
		status int
		code   string
	}{
		{name: "None", header: "", status: 200},
		{name: "Same", header: f.st.Dataset().String(), status: 200},
		{name: "Other", header: other.String(), status: 409, code: apiwire.CodeDatasetMismatch},
		{name: "Malformed", header: "nope", status: 400, code: apiwire.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{lookup.LookupPath + "?key=a&at=1", lookup.ScanPath + "?prefix=&limit=10&at=1", lookup.FilterPath} {
				req, _ := http.NewRequest("GET", f.hs.URL+path, nil)
				if tc.header != "" {
					req.Header.Set(lookup.HeaderDataset, tc.header)
				}
				resp, err := f.hs.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || tc.code != "" && !strings.Contains(string(raw), `"code":"`+tc.code+`"`) {
					t.Errorf("%s: status %d body %s, want %d %s", path, resp.StatusCode, raw, tc.status, tc.code)
				}
			}
		})
	}
}

// TestServer_NoData: a store without a dataset (a replica that has not
// loaded anything yet) answers 503, not "absent as of 0".
func TestServer_NoData(t *testing.T) {
	st, err := kv.Open(t.TempDir(), &kv.Options{CacheSize: 1 << 20, LatestCache: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := lookup.NewServer(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{lookup.LookupPath + "?key=a&at=5", lookup.ScanPath + "?prefix=&limit=10&at=0", lookup.FilterPath} {
		req, _ := http.NewRequest("GET", target, nil)
		rec := newRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), apiwire.CodeUnavailable) {
			t.Errorf("%s: status %d body %s, want 503 unavailable", target, rec.Code, rec.Body)
		}
	}
}

func TestNewServer_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  lookup.Config
	}{
		{name: "NegativeMaxKeys", cfg: lookup.Config{MaxKeys: -1}},
		{name: "NegativeMaxBody", cfg: lookup.Config{MaxBody: -1}},
		{name: "NegativeMaxScanLimit", cfg: lookup.Config{MaxScanLimit: -1}},
		{name: "NegativeMaxScanBytes", cfg: lookup.Config{MaxScanBytes: -1}},
		{name: "FPRateOne", cfg: lookup.Config{FilterFPRate: 1}},
		{name: "FPRateNaN", cfg: lookup.Config{FilterFPRate: math.NaN()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lookup.NewServer(nil, &tc.cfg); err == nil {
				t.Errorf("NewServer(%+v) = nil error", tc.cfg)
			}
		})
	}
	d := lookup.DefaultConfig()
	if d.MaxKeys != lookup.DefaultMaxKeys || d.MaxScanLimit != lookup.DefaultMaxScanLimit || d.MaxScanBytes != lookup.DefaultMaxScanBytes || d.ScanWait != lookup.DefaultScanWait || d.FilterFPRate != 0.01 || d.FilterMaxAge != lookup.DefaultFilterMaxAge || d.Limits.MaxKey != argent.DefaultMaxKey {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}
