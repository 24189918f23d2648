package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/auth"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the handler alone.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func benchBackend(b *testing.B) *fakeBackend {
	fb := newFakeBackend(b, argent.Limits{}, nil)
	ops := make([]argent.Op, 0, 1000)
	for i := range 1000 {
		ops = append(ops, put(fmt.Sprintf("key/%04d", i), "a value of some 32 bytes, roughly"))
	}
	fb.commit(b, ops...)
	return fb
}

// BenchmarkServer_Get measures the handler of GET /v1/kv/{key} without the
// network: routing, the read, headers and metrics.
func BenchmarkServer_Get(b *testing.B) {
	for _, tt := range []struct{ name, path string }{
		{"Hit", "/v1/kv/key/0042"},
		{"HitMinIndex", "/v1/kv/key/0042?min_index=1"},
		{"Miss", "/v1/kv/nope"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			srv := api.New(benchBackend(b), api.Options{Registry: prometheus.NewRegistry()})
			req := httptest.NewRequest("GET", tt.path, nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					srv.ServeHTTP(w, req)
					if w.code != 200 && w.code != 404 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		})
	}
}

// BenchmarkServer_GetHTTP measures GET /v1/kv/{key} over loopback HTTP with
// keep-alive connections; the client shares the CPUs with the server.
func BenchmarkServer_GetHTTP(b *testing.B) {
	srv := api.New(benchBackend(b), api.Options{Registry: prometheus.NewRegistry()})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(hs.URL + "/v1/kv/key/0042")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkServer_GetRawHTTP measures GET /v1/kv/{key} over loopback HTTP
// with a minimal client (one request in flight per keep-alive connection, no
// net/http client), so most of the CPU goes to the server.
func BenchmarkServer_GetRawHTTP(b *testing.B) {
	srv := api.New(benchBackend(b), api.Options{Registry: prometheus.NewRegistry()})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	reqBytes := []byte("GET /v1/kv/key/0042 HTTP/1.1\r\nHost: bench\r\n\r\n")
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for pb.Next() {
			if _, err := conn.Write(reqBytes); err != nil {
				b.Fatal(err)
			}
			n := -1
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if n < 0 {
				b.Fatal("no Content-Length")
			}
			if _, err := br.Discard(n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkServer_MGet100 measures the handler of POST /v1/mget with 100
// keys (90 present, 10 absent) without the network: JSON in, reads, JSON out.
func BenchmarkServer_MGet100(b *testing.B) {
	srv := api.New(benchBackend(b), api.Options{Registry: prometheus.NewRegistry()})
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("%q", fmt.Sprintf("key/%04d", i*11))
	}
	body := `{"keys":[` + strings.Join(keys, ",") + `]}`
	b.ReportAllocs()
	w := &discardWriter{h: http.Header{}}
	for b.Loop() {
		clear(w.h)
		req := httptest.NewRequest("POST", "/v1/mget", strings.NewReader(body))
		srv.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServer_GetAuth measures the token check on GET /v1/kv/{key}:
// without rules, and with rules and a bearer token (hash, lookup, the
// context the token rides in, the per-key check).
func BenchmarkServer_GetAuth(b *testing.B) {
	path := filepath.Join(b.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte("[[token]]\nname = \"r\"\nsecret = \"bench-secret-0123456789\"\nread = [\"key/\"]\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	a, err := auth.Open(path, auth.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		auth *auth.Authorizer
	}{{"NoRules", nil}, {"Token", a}} {
		b.Run(tt.name, func(b *testing.B) {
			srv := api.New(benchBackend(b), api.Options{Registry: prometheus.NewRegistry(), Auth: tt.auth})
			req := httptest.NewRequest("GET", "/v1/kv/key/0042", nil)
			req.Header.Set("Authorization", "Bearer bench-secret-0123456789")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					srv.ServeHTTP(w, req)
					if w.code != 200 {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		})
	}
}
