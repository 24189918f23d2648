package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/argent-kv/argent/client"
)

// WithTLSConfig makes host:port mean https and verifies the server with the
// config's roots; an explicit scheme is kept.
func TestWithTLSConfig(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"role":"replica","node_id":"n1"}`))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	hostport := srv.Listener.Addr().String()
	for _, tc := range []struct {
		addr, wantBase string
	}{
		{hostport, "https://" + hostport},
		{"https://" + hostport, "https://" + hostport},
		{"http://" + hostport, "http://" + hostport},
	} {
		c, err := client.New(tc.addr, client.WithTLSConfig(&tls.Config{RootCAs: roots}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr() != tc.wantBase {
			t.Fatalf("New(%q).Addr() = %q, want %q", tc.addr, c.Addr(), tc.wantBase)
		}
	}
	c, _ := client.New(hostport, client.WithTLSConfig(&tls.Config{RootCAs: roots}))
	if st, err := c.Status(context.Background()); err != nil || st.NodeID != "n1" {
		t.Fatalf("Status over TLS = %+v, %v", st, err)
	}
	// Without the server's CA the handshake fails.
	c, _ = client.New(hostport, client.WithTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()}))
	if _, err := c.Status(context.Background()); err == nil {
		t.Fatal("a server the roots do not trust was accepted")
	}
}
