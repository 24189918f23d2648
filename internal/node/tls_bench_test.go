package node_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// BenchmarkReadTLS compares reads of one key at a time over keep-alive
// connections from a plain root and a TLS root: the HTTP API (the fast
// lane) and the RESP port (event loops when plain, a goroutine per
// connection with TLS). Clients present no certificate. Each iteration
// runs a round of reads on the plain root, then the same on the TLS root,
// so that both see the same load from the rest of the machine; it reports
// the reads per second of each and their ratio.
//
//	go test ./internal/node/ -run '^$' -bench ReadTLS -benchtime 3s
func BenchmarkReadTLS(b *testing.B) {
	ca := certs.NewCA(b)
	anon, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	const keys, workers, perRound = 1000, 8, 4000
	type target struct {
		get func(ctx context.Context, key string) error
	}
	var plain, secure [2]target // [0] HTTP, [1] RESP
	for i, files := range []tlsconf.Files{{}, ca.Issue(b, "root")} {
		n, err := node.Start(context.Background(), node.Config{Role: node.RoleRoot, DataDir: b.TempDir(),
			Listen: "127.0.0.1:0", RESPListen: "127.0.0.1:0", TLS: files})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		ropts := &redis.Options{Addr: n.RESPAddr(), Protocol: 2, DisableIdentity: true, PoolSize: 64}
		if n.TLS() {
			hc = anon.HTTPClient(&http.Transport{MaxIdleConnsPerHost: 64})
			cfg := anon.Client()
			cfg.ServerName = "127.0.0.1"
			ropts.TLSConfig = cfg
		}
		b.Cleanup(hc.CloseIdleConnections)
		rc := redis.NewClient(ropts)
		b.Cleanup(func() { rc.Close() })
		for k := range keys {
			if err := rc.Set(context.Background(), fmt.Sprintf("k/%04d", k), "value-of-about-32-bytes-........", 0).Err(); err != nil {
				b.Fatal(err)
			}
		}
		base := "http://" + n.Addr() + "/v1/kv/"
		ts := [2]target{
			{func(ctx context.Context, key string) error {
				resp, err := hc.Get(base + key)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}},
			{func(ctx context.Context, key string) error { return rc.Get(ctx, key).Err() }},
		}
		if i == 0 {
			plain = ts
		} else {
			secure = ts
		}
	}
	// round reads perRound keys from t with workers goroutines and returns
	// the time it took.
	round := func(b *testing.B, t target) time.Duration {
		var seq atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := seq.Add(1)
					if i > perRound {
						return
					}
					if err := t.get(context.Background(), fmt.Sprintf("k/%04d", i%keys)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	for p, proto := range []string{"http", "resp"} {
		b.Run(proto, func(b *testing.B) {
			var tPlain, tTLS time.Duration
			rounds := 0
			for b.Loop() {
				tPlain += round(b, plain[p])
				tTLS += round(b, secure[p])
				rounds++
			}
			reads := float64(rounds * perRound)
			b.ReportMetric(reads/tPlain.Seconds(), "plain-reads/s")
			b.ReportMetric(reads/tTLS.Seconds(), "tls-reads/s")
			b.ReportMetric(tPlain.Seconds()/tTLS.Seconds(), "tls/plain")
		})
	}
}
