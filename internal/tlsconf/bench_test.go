package tlsconf_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// BenchmarkHandshake measures one TLS handshake through a tlsconf
// Listener, mutual TLS with ECDSA P-256 certificates: full, and resumed
// from a session ticket. Each connection reads one byte so that the client
// takes the ticket TLS 1.3 sends after the handshake.
//
//	go test ./internal/tlsconf/ -run '^$' -bench Handshake -benchtime 2s
func BenchmarkHandshake(b *testing.B) {
	ca := certs.NewCA(b)
	srv, err := tlsconf.Load(ca.Issue(b, "server"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := tlsconf.LoadClient(ca.Issue(b, "client"))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tl := srv.NewListener(ln)
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = c.Write([]byte{1})
				buf := make([]byte, 1)
				_, _ = c.Read(buf) // until the client closes
				c.Close()
			}()
		}
	}()
	for _, tc := range []struct {
		name   string
		resume bool
	}{{"full", false}, {"resumed", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := cli.Client()
			cfg.ServerName = "127.0.0.1"
			if !tc.resume {
				cfg.ClientSessionCache = nil
			}
			resumed := 0
			buf := make([]byte, 1)
			for b.Loop() {
				c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
				if c.ConnectionState().DidResume {
					resumed++
				}
				c.Close()
			}
			if tc.resume && resumed < b.N-1 {
				b.Fatalf("%d of %d handshakes resumed", resumed, b.N)
			}
			if !tc.resume && resumed > 0 {
				b.Fatalf("%d handshakes resumed without a session cache", resumed)
			}
		})
	}
}
