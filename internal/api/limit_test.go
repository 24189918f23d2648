package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent/internal/auth"
)

// limitRefused reads argent_limit_refused_total{limit} from reg.
func limitRefused(t *testing.T, reg *prometheus.Registry, limit string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "argent_limit_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "limit" && lp.GetValue() == limit {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no argent_limit_refused_total{limit=%q}", limit)
	return 0
}

func TestLimit_InFlight(t *testing.T) {
	ts := newTestServer(t, func(c *serverConfig) { c.opts.MaxInFlight = 1 })
	ts.b.commit(t, put("k", "v"))
	// A read waiting for an index that never comes holds the one place.
	held := make(chan int, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/v1/kv/k?min_index=1000&wait=2s")
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	waitFor(t, "a request refused as overloaded", func() bool {
		resp, body := ts.doString(t, "GET", "/v1/kv/k", "")
		if resp.StatusCode == http.StatusServiceUnavailable {
			if e := decodeError(t, resp, body); e.Code != "overloaded" {
				t.Fatalf("503 with code %q", e.Code)
			}
			return true
		}
		return false
	})
	if got := limitRefused(t, ts.reg, "in_flight"); got < 1 {
		t.Errorf("argent_limit_refused_total{limit=in_flight} = %v", got)
	}
	// Scrapes and status probes are still answered.
	for _, p := range []string{"/metrics", "/v1/status"} {
		if resp, _ := ts.doString(t, "GET", p, ""); resp.StatusCode != 200 {
			t.Errorf("%s while full: %d", p, resp.StatusCode)
		}
	}
	if code := <-held; code != http.StatusGatewayTimeout {
		t.Errorf("the held read ended with %d, want 504", code)
	}
	if resp, body := ts.doString(t, "GET", "/v1/kv/k", ""); resp.StatusCode != 200 {
		t.Errorf("after the place was freed: %d %s", resp.StatusCode, body)
	}
}

func TestLimit_Watchers(t *testing.T) {
	ts := newTestServer(t, func(c *serverConfig) { c.opts.MaxWatchers = 1 })
	wc := ts.watch(t, "prefix=")
	resp, body := ts.doString(t, "GET", "/v1/watch?prefix=", "")
	if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, resp, body).Code != "overloaded" {
		t.Fatalf("second watch: %d %s", resp.StatusCode, body)
	}
	if got := limitRefused(t, ts.reg, "watchers"); got != 1 {
		t.Errorf("argent_limit_refused_total{limit=watchers} = %v", got)
	}
	// Reads are not watches.
	if resp, _ := ts.doString(t, "GET", "/v1/kv/k", ""); resp.StatusCode != 404 {
		t.Errorf("a read while the watches are full: %d", resp.StatusCode)
	}
	wc.close()
	waitFor(t, "a watch after the first closed", func() bool {
		resp, err := http.Get(ts.URL + "/v1/watch?prefix=")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func TestLimit_RatePerToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte(authRules), 0o600); err != nil {
		t.Fatal(err)
	}
	// One request a minute after a burst of two: the third is refused
	// however slow the machine.
	a, err := auth.Open(path, auth.Options{Rate: 1.0 / 60, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *serverConfig) { c.opts.Auth = a })
	ts.as(deployTok)
	for i, want := range []int{404, 404, 429} {
		resp, body := ts.doString(t, "GET", "/v1/kv/app/k", "")
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d %s, want %d", i, resp.StatusCode, body, want)
		}
		if want == 429 {
			if e := decodeError(t, resp, body); e.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 code %q, Retry-After %q", e.Code, resp.Header.Get("Retry-After"))
			}
		}
	}
	// Another token has its own budget.
	ts.as(adminTok)
	if resp, body := ts.doString(t, "GET", "/v1/kv/app/k", ""); resp.StatusCode != 404 {
		t.Errorf("another token: %d %s", resp.StatusCode, body)
	}
	if got := limitRefused(t, ts.reg, "rate"); got != 1 {
		t.Errorf("argent_limit_refused_total{limit=rate} = %v", got)
	}
}
