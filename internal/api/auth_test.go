package api_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
)

// The tokens of authRules.
const (
	adminTok  = "admin-secret-0123456789"
	deployTok = "deploy-secret-0123456789"
	splitTok  = "split-secret-0123456789"
)

const authRules = `
[[token]]
name = "admin"
secret = "` + adminTok + `"
read = [""]
write = [""]

[[token]]
name = "deploy"
secret = "` + deployTok + `"
read = ["app/"]
write = ["app/config/"]

[[token]]
name = "split"
secret = "` + splitTok + `"
read = ["app/c/", "app/a/"]
`

// authEnv is the rules a test server checks: their file (which a test may
// rewrite and reload), the Authorizer and the registry of its metrics.
type authEnv struct {
	path string
	a    *auth.Authorizer
	reg  *prometheus.Registry
}

// withAuth gives the server the rules of authRules.
func withAuth(t *testing.T, env *authEnv) func(*serverConfig) {
	return func(c *serverConfig) {
		env.path = filepath.Join(t.TempDir(), "auth.toml")
		if err := os.WriteFile(env.path, []byte(authRules), 0o600); err != nil {
			t.Fatal(err)
		}
		env.reg = prometheus.NewRegistry()
		a, err := auth.Open(env.path, auth.Options{Registry: env.reg})
		if err != nil {
			t.Fatal(err)
		}
		env.a, c.opts.Auth = a, a
	}
}

// refused reads argent_auth_refused_total{reason, proto="http"}.
func (env *authEnv) refused(t *testing.T, reason string) float64 {
	t.Helper()
	mfs, err := env.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if mf.GetName() == "argent_auth_refused_total" && labels["reason"] == reason && labels["proto"] == "http" {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no argent_auth_refused_total{reason=%q}", reason)
	return 0
}

// tokenTransport sends every request with a bearer token.
type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (tt *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tt.token)
	return tt.base.RoundTrip(r)
}

// as makes the test server's client send token (none when "").
func (ts *testServer) as(token string) {
	c := ts.Client()
	if tt, ok := c.Transport.(*tokenTransport); ok {
		c.Transport = tt.base
	}
	if token != "" {
		c.Transport = &tokenTransport{base: c.Transport, token: token}
	}
}

func TestAuth_HTTP(t *testing.T) {
	var env authEnv
	ts := newTestServer(t, withAuth(t, &env))
	ts.b.commit(t, put("app/config/a", "1"), put("app/x", "2"), put("other/y", "3"))
	b64 := base64.StdEncoding.EncodeToString([]byte("new"))

	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		code                            string
	}{
		{"get no token", "", "GET", "/v1/kv/app/x", "", 401, "unauthorized"},
		{"get wrong token", "nope-nope-nope-nope", "GET", "/v1/kv/app/x", "", 401, "unauthorized"},
		{"get other prefix", deployTok, "GET", "/v1/kv/other/y", "", 403, "forbidden"},
		{"get allowed", deployTok, "GET", "/v1/kv/app/x", "", 200, ""},
		{"put no token", "", "PUT", "/v1/kv/app/config/a", "new", 401, "unauthorized"},
		{"put wrong token", "nope-nope-nope-nope", "PUT", "/v1/kv/app/config/a", "new", 401, "unauthorized"},
		{"put read-only prefix", deployTok, "PUT", "/v1/kv/app/x", "new", 403, "forbidden"},
		{"put other prefix", deployTok, "PUT", "/v1/kv/other/y", "new", 403, "forbidden"},
		{"delete other prefix", deployTok, "DELETE", "/v1/kv/other/y", "", 403, "forbidden"},
		{"read-only token writes", splitTok, "DELETE", "/v1/kv/app/config/a", "", 403, "forbidden"},
		{"mget one forbidden", deployTok, "POST", "/v1/mget", `{"keys":["app/x","other/y"]}`, 403, "forbidden"},
		{"mget allowed", deployTok, "POST", "/v1/mget", `{"keys":["app/x","app/config/a"]}`, 200, ""},
		{"txn spans a forbidden prefix", deployTok, "POST", "/v1/txn",
			`{"ops":[{"op":"put","key":"app/config/a","value":"` + b64 + `"},{"op":"put","key":"other/y","value":"` + b64 + `"}]}`, 403, "forbidden"},
		{"txn condition unreadable", deployTok, "POST", "/v1/txn",
			`{"conditions":[{"key":"other/y","mod_index":1}],"ops":[{"op":"put","key":"app/config/a","value":"` + b64 + `"}]}`, 403, "forbidden"},
		{"txn delete_prefix wider than rights", deployTok, "POST", "/v1/txn", `{"ops":[{"op":"delete_prefix","key":"app/"}]}`, 403, "forbidden"},
		{"trace other prefix", deployTok, "GET", "/v1/trace/other/y", "", 403, "forbidden"},
		{"watch no token", "", "GET", "/v1/watch?prefix=app/", "", 401, "unauthorized"},
		{"scan no token", "", "GET", "/v1/kv?prefix=app/", "", 401, "unauthorized"},
		{"unknown path no token", "", "GET", "/v1/nothing", "", 401, "unauthorized"},
		{"unknown path with token", deployTok, "GET", "/v1/nothing", "", 404, "not_found"},
		{"members need every key", deployTok, "POST", "/v1/members", `{"id":2,"addr":"x"}`, 403, "forbidden"},
		{"status is open", "", "GET", "/v1/status", "", 200, ""},
		{"internal is open", "", "GET", "/internal/v1/none", "", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.as(tc.token)
			resp, body := ts.doString(t, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				if e := decodeError(t, resp, body); e.Code != tc.code {
					t.Fatalf("code %q, want %q", e.Code, tc.code)
				}
				if strings.Contains(string(body), "secret") {
					t.Fatalf("error shows a secret: %s", body)
				}
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	// Nothing refused changed anything: the store holds its three keys as
	// they were.
	ts.as(adminTok)
	for k, want := range map[string]string{"app/config/a": "1", "app/x": "2", "other/y": "3"} {
		resp, body := ts.doString(t, "GET", "/v1/kv/"+k, "")
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("%s = %d %q, want %q", k, resp.StatusCode, body, want)
		}
	}
	if n := ts.b.writes.Load(); n != 0 {
		t.Errorf("backend saw %d writes, want 0", n)
	}

	// A permitted write goes through.
	ts.as(deployTok)
	if resp, body := ts.doString(t, "PUT", "/v1/kv/app/config/a", "9"); resp.StatusCode != 200 {
		t.Fatalf("permitted put: %d %s", resp.StatusCode, body)
	}
}

func TestAuth_Metrics(t *testing.T) {
	var env authEnv
	ts := newTestServer(t, withAuth(t, &env))
	for _, tok := range []string{"", "wrong-wrong-wrong-wrong", "wrong-wrong-wrong-wrong", deployTok, deployTok, deployTok} {
		ts.as(tok)
		ts.doString(t, "GET", "/v1/kv/other/y", "")
	}
	for reason, want := range map[string]float64{"missing": 1, "invalid": 2, "forbidden": 3} {
		if got := env.refused(t, reason); got != want {
			t.Errorf("argent_auth_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

func TestAuth_ScanNarrowed(t *testing.T) {
	var env authEnv
	ts := newTestServer(t, withAuth(t, &env))
	ts.b.commit(t, put("app/a/1", "a1"), put("app/b/1", "b1"), put("app/c/1", "c1"), put("app/c/2", "c2"), put("cfg/x", "x"))
	ts.as(splitTok)
	for _, tc := range []struct {
		query, keys, next string
	}{
		{"prefix=&limit=2", "app/a/1,app/c/1", "app/c/1"},
		{"prefix=&limit=2&after=app/c/1", "app/c/2", ""},
		{"prefix=app/&limit=10", "app/a/1,app/c/1,app/c/2", ""},
		{"prefix=app/c/&limit=10", "app/c/1,app/c/2", ""},
		{"prefix=app/b/&limit=10", "", ""},
		{"prefix=cfg/&limit=10", "", ""},
		{"prefix=app/a/1&limit=10", "app/a/1", ""},
	} {
		resp, body := ts.doString(t, "GET", "/v1/kv?"+tc.query, "")
		if resp.StatusCode != 200 {
			t.Fatalf("scan %s: %d %s", tc.query, resp.StatusCode, body)
		}
		p := decodeJSON[apiwire.ScanPage](t, body)
		var ks []string
		for _, it := range p.Items {
			ks = append(ks, it.Key)
		}
		if got := strings.Join(ks, ","); got != tc.keys || p.Next != tc.next {
			t.Errorf("scan %s = %q next %q, want %q next %q", tc.query, got, p.Next, tc.keys, tc.next)
		}
	}
}

func TestAuth_WatchFiltered(t *testing.T) {
	var env authEnv
	ts := newTestServer(t, withAuth(t, &env), fastProgress)
	ts.b.commit(t, put("app/a/1", "1"))                      // 1
	ts.b.commit(t, put("app/b/1", "2"))                      // 2: unreadable
	ts.b.commit(t, put("app/b/2", "3"), put("app/c/1", "4")) // 3: only app/c/1
	ts.b.commit(t, delPrefix("app/"))                        // 4: deletes readable keys
	ts.b.commit(t, delPrefix("app/b/"), del("cfg/x"))        // 5: nothing readable
	ts.b.commit(t, del("app/a/1"))                           // 6
	ts.as(splitTok)
	wc := ts.watch(t, "prefix=&from=1")
	for _, want := range []string{"1:put app/a/1=1", "3:put app/c/1=4", "4:delete_prefix app/", "6:delete app/a/1"} {
		if got := describe(wc.nextBatch()); got != want {
			t.Fatalf("watch line %q, want %q", got, want)
		}
	}
	// Progress markers still come, past the unreadable batches.
	for {
		l := wc.next()
		if !l.Progress {
			t.Fatalf("unexpected batch %s", describe(l))
		}
		if l.Index >= 6 {
			break
		}
	}

	// A reload that removes the token ends its open stream.
	if err := os.WriteFile(env.path, []byte(strings.Replace(authRules, splitTok, "rotated-secret-0123456789", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.a.Reload(); err != nil {
		t.Fatal(err)
	}
	for {
		l, err := wc.nextErr()
		if err == io.EOF {
			t.Fatal("stream ended without an error line")
		}
		if err != nil {
			t.Fatal(err)
		}
		if l.Error != nil {
			if l.Error.Code != "unauthorized" {
				t.Fatalf("error line %+v, want unauthorized", l.Error)
			}
			break
		}
	}
	ts.as(splitTok)
	if resp, body := ts.doString(t, "GET", "/v1/kv/app/a/1", ""); resp.StatusCode != 401 {
		t.Fatalf("old token after reload: %d %s", resp.StatusCode, body)
	}
}
