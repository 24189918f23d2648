package fastlane_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/fastlane"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// TestOverTLS: behind a TLS listener, lane requests and handed-off ones
// both see the connection's TLS state (the latter through ConnContext).
func TestOverTLS(t *testing.T) {
	ca := certs.NewCA(t)
	srvTLS, err := tlsconf.Load(ca.Issue(t, "server"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cliTLS, err := tlsconf.LoadClient(ca.Issue(t, "client"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := srvTLS.NewListener(ln)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, flusher := w.(http.Flusher)
		st := tlsconf.State(r)
		cn := ""
		if st != nil && len(st.PeerCertificates) > 0 {
			cn = st.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "net/http=%v tls=%v peer=%s", flusher, st != nil, cn)
	})
	fl := fastlane.New(tl, h, fastlane.Options{Eligible: eligible})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: tlsconf.ConnContext}
	done := make(chan struct{}, 2)
	go func() { _ = fl.Serve(); done <- struct{}{} }()
	go func() { _ = srv.Serve(fl); done <- struct{}{} }()
	defer func() {
		_ = srv.Close()
		_ = fl.Close()
		<-done
		<-done
	}()
	hc := cliTLS.HTTPClient(&http.Transport{})
	defer hc.CloseIdleConnections()
	for _, tc := range []struct{ path, want string }{
		{"/kv/a", "net/http=false tls=true peer=client"},
		{"/other", "net/http=true tls=true peer=client"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+tc.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("%s: not over TLS 1.2+", tc.path)
		}
		if !strings.Contains(string(body), tc.want) {
			t.Fatalf("%s: %s, want %s", tc.path, body, tc.want)
		}
	}
}
