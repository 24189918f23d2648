package relay_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }

// scanHistory is written to a scan test's replicas: keys put, overwritten
// and deleted over six indexes, one of them not UTF-8.
var scanHistory = [][]argent.Op{
	{put("a/1", "x1"), put("a/2", "x2"), put("b/1", "y1")},
	{put("a/3", "x3"), del("a/1")},
	{put("a/2", "x2b"), put("a/4", "x4"), put("ab", "z")},
	{{Type: argent.OpDeletePrefix, Key: []byte("b/")}, put("a/5", "x5")},
	{put("a/\x00\xff", "bin"), put("b/2", "y2")},
	{put("a/1", "x1c"), del("a/3")},
}

// scanStore returns a store of ds holding the first n batches of
// scanHistory.
func scanStore(t *testing.T, n int) *kv.Store {
	t.Helper()
	st := newStore(t, ds)
	for _, ops := range scanHistory[:n] {
		commit(t, st, ops...)
	}
	return st
}

// A page asked at the relay as of S is the replica's page as of S, for
// every S of the replica's history, whichever upstream comes first: one
// down, one with no data (503), one behind S (504).
func TestRelay_ScanForwarded(t *testing.T) {
	full := scanStore(t, len(scanHistory))
	good := serveStore(t, full, nil)
	last := full.Applied()
	for _, tt := range []struct {
		name  string
		first func(t *testing.T) (addr string, asked func() int64)
	}{
		{"OneUpstream", nil},
		{"FirstDown", func(t *testing.T) (string, func() int64) { return downAddr(t), nil }},
		{"FirstNoData", func(t *testing.T) (string, func() int64) {
			// A store with no dataset yet answers 503 unavailable.
			r := serveStore(t, pulltest.NewStore(t, kv.Options{}), nil)
			return r.addr(), r.scans.Load
		}},
		{"FirstBehind", func(t *testing.T) (string, func() int64) {
			r := serveStore(t, scanStore(t, 1), &lookup.Config{ScanWait: 10 * time.Millisecond})
			return r.addr(), r.scans.Load
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ups := []string{good.addr()}
			var asked func() int64
			if tt.first != nil {
				var a string
				a, asked = tt.first(t)
				ups = []string{a, good.addr()}
			}
			_, addr := startRelay(t, ds, ups...)
			c := lookupClient(t, addr, ds)
			ctx := context.Background()
			pages := 0
			// Latest first, so that the first request finds a replica
			// behind the index asked for.
			for s := last; s >= 1; s-- {
				for _, prefix := range []string{"", "a/", "b/", "ab", "zz"} {
					for _, after := range []string{"", "a/2"} {
						for _, limit := range []int{1, 2, 100} {
							want, wantMore, err := full.Scan(ctx, []byte(prefix), []byte(after), limit, s)
							if err != nil {
								t.Fatal(err)
							}
							got, more, err := c.Scan(ctx, []byte(prefix), []byte(after), limit, s)
							if err != nil {
								t.Fatalf("scan %q after %q limit %d as of %d: %v", prefix, after, limit, s, err)
							}
							if !sameItems(got, want) || more != wantMore {
								t.Fatalf("scan %q after %q limit %d as of %d = %v more %v; replica's page %v more %v",
									prefix, after, limit, s, got, more, want, wantMore)
							}
							pages++
						}
					}
				}
			}
			if got := good.scans.Load(); got < int64(pages) {
				t.Fatalf("the replica was asked %d scans for %d pages", got, pages)
			}
			if asked != nil && asked() == 0 {
				t.Fatal("the first upstream was never asked")
			}
		})
	}
}

func sameItems(got, want []argent.Item) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value.Value, want[i].Value.Value) || got[i].ModIndex != want[i].ModIndex {
			return false
		}
	}
	return true
}

// Bad input gets the replica's own 4xx error, passed through, and no
// other upstream is asked for it.
func TestRelay_ScanBadInput(t *testing.T) {
	rep := serveStore(t, scanStore(t, 2), nil)
	other := serveStore(t, scanStore(t, 2), nil)
	_, addr := startRelay(t, ds, rep.addr(), other.addr())
	long := string(bytes.Repeat([]byte("k"), argent.Limits{}.WithDefaults().MaxKey+1))
	for _, tt := range []struct {
		name   string
		query  url.Values
		status int
		code   string
	}{
		{"NoLimit", url.Values{"prefix": {"a/"}, "at": {"1"}}, http.StatusBadRequest, apiwire.CodeInvalid},
		{"ZeroLimit", url.Values{"prefix": {"a/"}, "limit": {"0"}, "at": {"1"}}, http.StatusBadRequest, apiwire.CodeInvalid},
		{"NoPrefix", url.Values{"limit": {"5"}, "at": {"1"}}, http.StatusBadRequest, apiwire.CodeInvalid},
		{"BadIndex", url.Values{"prefix": {""}, "limit": {"5"}, "at": {"x"}}, http.StatusBadRequest, apiwire.CodeInvalid},
		{"BadWait", url.Values{"prefix": {""}, "limit": {"5"}, "at": {"1"}, "wait": {"-1s"}}, http.StatusBadRequest, apiwire.CodeInvalid},
		{"LongPrefix", url.Values{"prefix": {long}, "limit": {"5"}, "at": {"1"}}, http.StatusRequestEntityTooLarge, apiwire.CodeTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := "?" + tt.query.Encode()
			direct, wantBody := httpGet(t, rep.srv.URL+lookup.ScanPath+q)
			before := rep.scans.Load() + other.scans.Load()
			resp, body := httpGet(t, "http://"+addr+lookup.ScanPath+q)
			if direct.StatusCode != tt.status || errorCode(wantBody) != tt.code {
				t.Fatalf("the replica answers %d %s, want %d %s", direct.StatusCode, wantBody, tt.status, tt.code)
			}
			if resp.StatusCode != direct.StatusCode || !bytes.Equal(body, wantBody) || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("relay: %d %q (%s); replica: %d %q", resp.StatusCode, body, resp.Header.Get("Content-Type"), direct.StatusCode, wantBody)
			}
			if n := rep.scans.Load() + other.scans.Load() - before; n != 1 {
				t.Fatalf("the relay sent %d upstream scans for one bad request, want 1", n)
			}
		})
	}
}

// A scan as of an index no upstream has reached is refused as behind
// (504 timeout, with a replica's applied index), never answered with a
// page as of another index.
func TestRelay_ScanBehind(t *testing.T) {
	quick := &lookup.Config{ScanWait: 10 * time.Millisecond}
	for _, tt := range []struct {
		name      string
		ups       func(t *testing.T) []string
		wantIndex argent.Index
	}{
		{"OneBehind", func(t *testing.T) []string {
			return []string{serveStore(t, scanStore(t, 2), quick).addr()}
		}, 2},
		{"NoDataThenBehind", func(t *testing.T) []string {
			return []string{statusReplica(t, http.StatusServiceUnavailable, apiwire.CodeUnavailable), serveStore(t, scanStore(t, 3), quick).addr()}
		}, 3},
		{"DownThenTwoBehind", func(t *testing.T) []string {
			return []string{downAddr(t), serveStore(t, scanStore(t, 2), quick).addr(), serveStore(t, scanStore(t, 4), quick).addr()}
		}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startRelay(t, ds, tt.ups(t)...)
			const at = 6
			q := url.Values{"prefix": {"a/"}, "limit": {"10"}, "at": {strconv.Itoa(at)}}
			resp, body := httpGet(t, "http://"+addr+lookup.ScanPath+"?"+q.Encode())
			if resp.StatusCode != http.StatusGatewayTimeout || errorCode(body) != apiwire.CodeTimeout {
				t.Fatalf("scan as of %d = %d %s, want 504 timeout", at, resp.StatusCode, body)
			}
			if got := resp.Header.Get(apiwire.HeaderIndex); got != strconv.FormatUint(uint64(tt.wantIndex), 10) {
				t.Fatalf("Argent-Index %q, want the last replica's %d", got, tt.wantIndex)
			}
			_, _, err := lookupClient(t, addr, ds).Scan(context.Background(), []byte("a/"), nil, 10, at)
			var le *lookup.Error
			if !errors.Is(err, lookup.ErrBehind) || !errors.Is(err, argent.ErrUnavailable) || !errors.As(err, &le) || le.Index != tt.wantIndex {
				t.Fatalf("Scan = %v, want ErrBehind at %d", err, tt.wantIndex)
			}
		})
	}
}

// TestRelay_ScanWaitShared asks two replicas, both behind, for a scan with
// a wait of 400 ms: the relay shares the wait out between them, so its
// 504 comes within the wait, not after one wait at each.
func TestRelay_ScanWaitShared(t *testing.T) {
	slow := &lookup.Config{ScanWait: time.Second}
	_, addr := startRelay(t, ds, serveStore(t, scanStore(t, 2), slow).addr(), serveStore(t, scanStore(t, 3), slow).addr())
	q := url.Values{"prefix": {"a/"}, "limit": {"10"}, "at": {"6"}, "wait": {"400ms"}}
	start := time.Now()
	resp, body := httpGet(t, "http://"+addr+lookup.ScanPath+"?"+q.Encode())
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get(apiwire.HeaderIndex) != "3" {
		t.Fatalf("scan as of 6 = %d %s (Argent-Index %s), want 504 from the second replica, at 3", resp.StatusCode, body, resp.Header.Get(apiwire.HeaderIndex))
	}
	if took < 350*time.Millisecond || took > 760*time.Millisecond {
		t.Errorf("two replicas behind answered in %v; the wait was 400ms, shared between them", took)
	}
}
