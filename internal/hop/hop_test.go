package hop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingServer is an httptest server over h that counts the connections
// it accepted.
func countingServer(t *testing.T, h http.Handler, tlsOn bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, tr *Transport, ctx context.Context, url string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestTransport_KeepsConnectionsAlive(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		tls       bool
		wantBody  string
		wantConns int64 // after 20 sequential requests
	}{
		{name: "content length", handler: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }, wantBody: "hello", wantConns: 1},
		{name: "chunked", handler: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "he")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "llo")
		}, wantBody: "hello", wantConns: 1},
		{name: "empty", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, wantConns: 1},
		{name: "tls", handler: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }, tls: true, wantBody: "hello", wantConns: 1},
		{name: "connection close", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "hello")
		}, wantBody: "hello", wantConns: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := countingServer(t, tt.handler, tt.tls)
			tr := &Transport{}
			if tt.tls {
				tr.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			defer tr.Close()
			// With TLS set, an http:// URL is sent over TLS as well.
			url := "http://" + srv.Listener.Addr().String() + "/x"
			for i := 0; i < 20; i++ {
				_, b, err := get(t, tr, context.Background(), url)
				if err != nil || b != tt.wantBody {
					t.Fatalf("request %d: %q, %v; want %q", i, b, err, tt.wantBody)
				}
			}
			if got := conns.Load(); got != tt.wantConns {
				t.Fatalf("%d connections for 20 requests, want %d", got, tt.wantConns)
			}
		})
	}
}

// closingServer answers each connection's first request, echoing its body,
// then closes the connection without saying so, as a server whose idle
// timeout passed does.
func closingServer(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				b, _ := io.ReadAll(req.Body)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func TestTransport_RetriesAConnectionClosedWhileIdle(t *testing.T) {
	addr, conns := closingServer(t)
	tr := &Transport{}
	defer tr.Close()
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf("request %d", i)
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/l2", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != body {
			t.Fatalf("request %d: answer %q, %v; want its body back", i, b, err)
		}
		// Let the server's close reach the idle connection.
		time.Sleep(10 * time.Millisecond)
	}
	if got := conns.Load(); got != 5 {
		t.Fatalf("%d connections, want 5 (each reused one found closed, the request sent again)", got)
	}

	// After several connections were closed while idle (the other side
	// restarted), the next request still gets through: the retry dials
	// instead of taking another closed connection.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := get(t, tr, context.Background(), "http://"+addr+"/"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(10 * time.Millisecond)
	if _, _, err := get(t, tr, context.Background(), "http://"+addr+"/"); err != nil {
		t.Fatalf("after the idle connections were closed: %v", err)
	}

	// A body that cannot be had again is not sent twice.
	if _, _, err := get(t, tr, context.Background(), "http://"+addr+"/"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/l2", io.NopCloser(strings.NewReader("once")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a request with a body that cannot be read again was sent again")
	}
}

func TestTransport_ContextEndsTheExchange(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "ok")
	}), false)
	defer close(release)
	tr := &Transport{}
	defer tr.Close()
	base := "http://" + srv.Listener.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := get(t, tr, ctx, base+"/slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the exchange ended %v after its deadline of 50ms", d)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel2)
	if _, _, err := get(t, tr, ctx2, base+"/slow"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}

	// The connections the contexts ended are not reused.
	if _, b, err := get(t, tr, context.Background(), base+"/fast"); err != nil || b != "ok" {
		t.Fatalf("after cancelled requests: %q, %v", b, err)
	}
	if got := conns.Load(); got != 3 {
		t.Fatalf("%d connections, want 3", got)
	}
}

func TestTransport_EarlyClose(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(big)
			return
		}
		fmt.Fprint(w, "small answer")
	}), false)
	tr := &Transport{}
	defer tr.Close()
	base := "http://" + srv.Listener.Addr().String()
	send := func(path string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send("/small") // the rest is read at Close: the connection stays
	send("/small")
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d connections after two small answers closed early, want 1", got)
	}
	send("/big") // too much left: the connection is closed
	send("/small")
	if got := conns.Load(); got != 2 {
		t.Fatalf("%d connections after a big answer closed early, want 2", got)
	}
}

func TestTransport_Concurrent(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}), false)
	tr := &Transport{MaxIdlePerHost: 8}
	defer tr.Close()
	url := "http://" + srv.Listener.Addr().String() + "/echo"
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				want := fmt.Sprintf("%d/%d", g, i)
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(want))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					errs <- fmt.Errorf("answer %q, %v; want %q", b, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := conns.Load(); got > 8 {
		t.Fatalf("%d connections for 8 callers, want at most 8", got)
	}
}

func TestTransport_Refuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	closed := &Transport{}
	closed.Close()
	tests := []struct {
		name string
		tr   *Transport
		url  string
	}{
		{"no host", &Transport{}, "http:///x"},
		{"other scheme", &Transport{}, "ftp://127.0.0.1:1/x"},
		{"nobody listening", &Transport{}, "http://" + dead + "/x"},
		{"closed transport", closed, "http://" + dead + "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := get(t, tt.tr, context.Background(), tt.url); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestHostPort(t *testing.T) {
	for _, tt := range []struct {
		host   string
		secure bool
		want   string
	}{
		{"127.0.0.1:7000", false, "127.0.0.1:7000"},
		{"example.com", false, "example.com:80"},
		{"example.com", true, "example.com:443"},
		{"[::1]", false, "[::1]:80"},
		{"[::1]:7000", true, "[::1]:7000"},
	} {
		if got := hostPort(tt.host, tt.secure); got != tt.want {
			t.Errorf("hostPort(%q, %v) = %q, want %q", tt.host, tt.secure, got, tt.want)
		}
	}
}

// BenchmarkRoundTrip compares a round trip over loopback with this
// package's Transport and with net/http's.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "value") }))
	defer srv.Close()
	url := srv.URL + "/k"
	for _, rt := range []struct {
		name string
		rt   http.RoundTripper
	}{{"hop", &Transport{}}, {"net-http", &http.Transport{}}} {
		b.Run(rt.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				resp, err := rt.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if c, ok := rt.rt.(interface{ CloseIdleConnections() }); ok {
				c.CloseIdleConnections()
			}
		})
	}
}
