package node_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// BenchmarkReadTLS compares reads of one key at a time, over keep-alive
// connections, from a plain root and a TLS root in the same run: the HTTP
// API (the fast lane) and the RESP port (event loops when plain, a
// goroutine per connection with TLS). Clients present no certificate.
//
//	go test ./internal/node/ -run '^$' -bench ReadTLS -benchtime 3s
func BenchmarkReadTLS(b *testing.B) {
	ca := certs.NewCA(b)
	anon, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	const keys = 1000
	for _, tc := range []struct {
		name string
		tls  tlsconf.Files
	}{{"plain", tlsconf.Files{}}, {"tls", ca.Issue(b, "root")}} {
		n, err := node.Start(context.Background(), node.Config{Role: node.RoleRoot, DataDir: b.TempDir(),
			Listen: "127.0.0.1:0", RESPListen: "127.0.0.1:0", TLS: tc.tls})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		ropts := &redis.Options{Addr: n.RESPAddr(), Protocol: 2, DisableIdentity: true, PoolSize: 64}
		if tc.name == "tls" {
			hc = anon.HTTPClient(&http.Transport{MaxIdleConnsPerHost: 64})
			cfg := anon.Client()
			cfg.ServerName = "127.0.0.1"
			ropts.TLSConfig = cfg
		}
		b.Cleanup(hc.CloseIdleConnections)
		rc := redis.NewClient(ropts)
		b.Cleanup(func() { rc.Close() })
		ctx := context.Background()
		for i := range keys {
			if err := rc.Set(ctx, fmt.Sprintf("k/%04d", i), "value-of-about-32-bytes-........", 0).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("http/"+tc.name, func(b *testing.B) {
			var seq atomic.Uint64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1) % keys
					resp, err := hc.Get(fmt.Sprintf("http://%s/v1/kv/k/%04d", n.Addr(), i))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
		b.Run("resp/"+tc.name, func(b *testing.B) {
			var seq atomic.Uint64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1) % keys
					if err := rc.Get(ctx, fmt.Sprintf("k/%04d", i)).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
