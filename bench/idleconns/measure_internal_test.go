package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/argent-kv/argent/internal/tlsconf"
)

// pongServer answers +PONG to every line on its connections, over TLS when
// srv is set, until the test ends.
func pongServer(t *testing.T, srv *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if srv != nil {
		ln = tls.NewListener(ln, srv)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := c.Write([]byte("+PONG\r\n")); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// dialAll opens every connection asked for, in order, plain and over TLS
// with a full handshake each, and fails when the port does not answer.
func TestDialAll(t *testing.T) {
	node, _, client, err := makeTLS(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsconf.Load(tlsconf.Files{Cert: node[1], Key: node[3], CA: node[5]}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name    string
		addr    string
		tls     *tls.Config
		wantErr string
	}{
		{name: "Plain", addr: pongServer(t, nil)},
		{name: "TLS", addr: pongServer(t, srv.Server()), tls: client},
		{name: "NotTLS", addr: pongServer(t, nil), tls: client, wantErr: "handshake"},
		{name: "NothingListens", addr: nowhere, wantErr: "connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, err := dialAll(context.Background(), tc.addr, tc.tls, 20, 4)
			defer func() {
				for _, c := range conns {
					if c != nil {
						c.Close()
					}
				}
			}()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dialAll error = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range conns {
				if err := ask(c, respReq, respOK); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				if tconn, ok := c.(*tls.Conn); ok != (tc.tls != nil) {
					t.Fatalf("connection %d is TLS %v, want %v", i, ok, tc.tls != nil)
				} else if ok && tconn.ConnectionState().DidResume {
					t.Fatalf("connection %d resumed a session: every handshake must be full", i)
				}
			}
			if err := ask(conns[0], respReq, "+OK"); err == nil {
				t.Error("ask accepted +PONG for +OK")
			}
		})
	}
}
