package tlsconf_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// serve starts an HTTP server behind a tlsconf Listener with c's policy
// and returns its address and metrics.
func serve(t *testing.T, c *tlsconf.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := c.NewListener(ln)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: c.RequireClientCert(h), ConnContext: tlsconf.ConnContext}
	go func() { _ = srv.Serve(tl) }()
	t.Cleanup(func() { srv.Close(); tl.Close() })
	return ln.Addr().String()
}

const handshakeErrors = "argent_tls_handshake_errors_total"

func node(t *testing.T, files tlsconf.Files) (*tlsconf.Config, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := tlsconf.Load(files, nil, tlsconf.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func TestHandshakePolicy(t *testing.T) {
	ca, other := certs.NewCA(t), certs.NewCA(t)
	srv, reg := node(t, ca.Issue(t, "server"))
	addr := serve(t, srv)
	onlyCA := tlsconf.Files{CA: ca.CAFile}
	foreign := other.Issue(t, "intruder")
	foreign.CA = ca.CAFile // trusts the server, but its own cert is from another CA

	for _, tc := range []struct {
		name   string
		files  tlsconf.Files
		path   string
		status int    // 0: the handshake must fail
		reason string // the reason it is counted under
	}{
		{"node cert, internal path", ca.Issue(t, "peer"), "/internal/v1/log", 200, ""},
		{"no cert, public path", onlyCA, "/v1/kv/a", 200, ""},
		{"no cert, internal path", onlyCA, "/internal/v1/log", 403, ""},
		{"cert of another CA", foreign, "/v1/kv/a", 0, tlsconf.ReasonUntrustedPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := tlsconf.LoadClient(tc.files)
			if err != nil {
				t.Fatal(err)
			}
			hc := cc.HTTPClient(&http.Transport{})
			defer hc.CloseIdleConnections()
			before := count(t, reg, handshakeErrors, tc.reason)
			resp, err := hc.Get("http://" + addr + tc.path) // upgraded to https
			if tc.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("handshake succeeded with status %d", resp.StatusCode)
				}
				waitCount(t, reg, tc.reason, before+1)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if resp.TLS == nil {
				t.Fatal("request went in plain text")
			}
			if tc.status == 403 {
				var e apiwire.ErrorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tlsconf.CodeClientCertRequired {
					t.Fatalf("body %s: %v", body, err)
				}
			}
		})
	}
	if got := count(t, reg, "argent_tls_client_cert_required_total", ""); got != 1 {
		t.Fatalf("client_cert_required counted %v, want 1", got)
	}
}

func TestPlainTextOnTLSPortIsCounted(t *testing.T) {
	ca := certs.NewCA(t)
	srv, reg := node(t, ca.Issue(t, "server"))
	addr := serve(t, srv)
	before := count(t, reg, handshakeErrors, tlsconf.ReasonNotTLS)
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served")
		}
	}
	waitCount(t, reg, tlsconf.ReasonNotTLS, before+1)
}

func TestReload(t *testing.T) {
	ca := certs.NewCA(t)
	files := ca.Issue(t, "server")
	srv, _ := node(t, files)
	addr := serve(t, srv)
	cc, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	leaf := func() string {
		conn, err := tls.Dial("tcp", addr, cc.Client())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := leaf(); got != "server" {
		t.Fatalf("serves %q", got)
	}
	ca.IssueTo(t, "server-renewed", files.Cert, files.Key)
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := leaf(); got != "server-renewed" {
		t.Fatalf("after reload serves %q, want server-renewed", got)
	}
	// A broken key: the reload fails and the renewed pair stays.
	if err := os.WriteFile(files.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if got := leaf(); got != "server-renewed" {
		t.Fatalf("after a failed reload serves %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	ca := certs.NewCA(t)
	good := ca.Issue(t, "n")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files tlsconf.Files
		want  string
	}{
		{"cert without key", tlsconf.Files{Cert: good.Cert, CA: good.CA}, "go together"},
		{"missing CA file", tlsconf.Files{Cert: good.Cert, Key: good.Key, CA: garbage + ".none"}, "read CA"},
		{"CA not PEM", tlsconf.Files{Cert: good.Cert, Key: good.Key, CA: garbage}, "no PEM certificate"},
		{"key not PEM", tlsconf.Files{Cert: good.Cert, Key: garbage, CA: good.CA}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconf.Load(tc.files, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := tlsconf.LoadClient(tlsconf.Files{Cert: good.Cert, Key: good.Key}); err == nil {
		t.Fatal("a client without a CA was accepted")
	}
}

// count returns the value of the counter name (with label reason, if not
// empty) in reg.
func count(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func waitCount(t *testing.T, reg *prometheus.Registry, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := count(t, reg, handshakeErrors, reason)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s refusals: %v, want %v", reason, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatch: new files are picked up without a signal.
func TestWatch(t *testing.T) {
	ca := certs.NewCA(t)
	files := ca.Issue(t, "server")
	srv, _ := node(t, files)
	addr := serve(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	ca.IssueTo(t, "server-renewed", files.Cert, files.Key)
	cc, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cc.Client()
	cfg.ServerName = "127.0.0.1"
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if cn == "server-renewed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q", cn)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
