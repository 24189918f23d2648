package resp_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/resp"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// serveTLS serves b with ServeConns behind a TLS listener until the test
// ends, and returns a go-redis client's TLS config for it.
func serveTLS(t *testing.T, b api.Backend) (string, *tls.Config) {
	t.Helper()
	ca := certs.NewCA(t)
	st, err := tlsconf.Load(ca.Issue(t, "server"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := resp.New(b, nil, nil)
	done := make(chan error, 1)
	go func() { done <- s.ServeConns(st.NewListener(ln)) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cfg := ct.Client()
	cfg.ServerName = "127.0.0.1"
	return ln.Addr().String(), cfg
}

// TestServeConnsTLS runs reads, writes, a pipeline of SETs and a protocol
// error over TLS, with a backend that writes synchronously and one that
// queues SETs (whose replies must keep their order).
func TestServeConnsTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(t *testing.T) api.Backend
	}{
		{"sync", func(t *testing.T) api.Backend { return newFakeBackend(t, argent.Limits{}) }},
		{"async", func(t *testing.T) api.Backend { return newAsyncBackend(t, argent.Limits{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, cfg := serveTLS(t, tc.b(t))
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 2, TLSConfig: cfg})
			defer c.Close()
			ctx := context.Background()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
				t.Fatalf("GET = %q, %v", got, err)
			}
			if err := c.Get(ctx, "absent").Err(); err != redis.Nil {
				t.Fatalf("GET absent: %v, want nil reply", err)
			}
			pipe := c.Pipeline()
			for i := range 50 {
				pipe.Set(ctx, "p"+strconv.Itoa(i), strconv.Itoa(i), 0)
			}
			get := pipe.Get(ctx, "p49")
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			if get.Val() != "49" {
				t.Fatalf("GET after the pipeline's SETs = %q", get.Val())
			}
			got, err := c.MGet(ctx, "p0", "nope", "p1").Result()
			if err != nil || !slices.Equal(got, []any{"0", nil, "1"}) {
				t.Fatalf("MGET = %v, %v", got, err)
			}
			if n, err := c.Del(ctx, "p0", "nope").Result(); err != nil || n != 1 {
				t.Fatalf("DEL = %d, %v", n, err)
			}
			if err := c.Do(ctx, "NOSUCH").Err(); err == nil {
				t.Fatal("unknown command accepted")
			}
		})
	}
}

// TestServeConnsMalformed: malformed input gets an error reply and the
// connection is closed.
func TestServeConnsMalformed(t *testing.T) {
	addr, cfg := serveTLS(t, newFakeBackend(t, argent.Limits{}))
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("*1\r\n$x\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := conn.Read(buf)
	if n == 0 || buf[0] != '-' {
		t.Fatalf("reply %q, want an error", buf[:n])
	}
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection still open after a protocol error")
	}
}
