package fastlane_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent/internal/fastlane"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo answers with the request's method, path, query, body and whether it
// came through the lane (lane ResponseWriters cannot Flush).
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, flusher := w.(http.Flusher)
	lane := "lane"
	if flusher {
		lane = "net/http"
	}
	w.Header().Set("X-Via", lane)
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Path == "/status/404" {
		w.WriteHeader(http.StatusNotFound)
	}
	fmt.Fprintf(w, "%s %s %q %q host=%s ua=%q", r.Method, r.URL.Path, r.URL.RawQuery, body, r.Host, r.Header.Get("User-Agent"))
}

// eligible takes everything under /kv/ and /status/.
func eligible(_, path string) bool {
	return strings.HasPrefix(path, "/kv/") || strings.HasPrefix(path, "/status/")
}

// serve starts a lane with an http.Server behind it and returns its address.
func serve(t *testing.T, opts fastlane.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Eligible == nil {
		opts.Eligible = eligible
	}
	h := http.HandlerFunc(echo)
	fl := fastlane.New(ln, h, opts)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{}, 2)
	go func() { _ = fl.Serve(); done <- struct{}{} }()
	go func() { _ = srv.Serve(fl); done <- struct{}{} }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = fl.Close()
		<-done
		<-done
	})
	return ln.Addr().String()
}

// exchange sends raw on one connection and reads n responses.
func exchange(t *testing.T, addr, raw string, n int) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestLane_Requests(t *testing.T) {
	addr := serve(t, fastlane.Options{BufferSize: 512, MaxBody: 64})
	long := strings.Repeat("x", 600)
	tests := []struct {
		name, raw string
		status    int
		via, body string
	}{
		{"get", "GET /kv/a?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n", 200, "lane", `GET /kv/a "x=1" "" host=h ua="t"`},
		{"escaped path", "GET /kv/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", 200, "lane", `GET /kv/a/b "" "" host=h ua=""`},
		{"put with body", "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 200, "lane", `PUT /kv/a "" "abc" host=h ua=""`},
		{"status", "GET /status/404 HTTP/1.1\r\nHost: h\r\n\r\n", 404, "lane", `GET /status/404 "" "" host=h ua=""`},
		{"not eligible", "GET /other HTTP/1.1\r\nHost: h\r\n\r\n", 200, "net/http", `GET /other "" "" host=h ua=""`},
		{"delete", "DELETE /kv/a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", 200, "lane", `DELETE /kv/a "" "" host=h ua=""`},
		{"patch", "PATCH /kv/a HTTP/1.1\r\nHost: h\r\n\r\n", 200, "net/http", `PATCH /kv/a "" "" host=h ua=""`},
		{"connection close", "GET /kv/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200, "net/http", `GET /kv/a "" "" host=h ua=""`},
		{"http/1.0", "GET /kv/a HTTP/1.0\r\nHost: h\r\n\r\n", 200, "net/http", `GET /kv/a "" "" host=h ua=""`},
		{"body over MaxBody", "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("b", 100), 200, "net/http", `PUT /kv/a "" "` + strings.Repeat("b", 100) + `" host=h ua=""`},
		{"chunked", "PUT /kv/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, "net/http", `PUT /kv/a "" "hi" host=h ua=""`},
		{"header over buffer", "GET /kv/a HTTP/1.1\r\nHost: h\r\nUser-Agent: " + long + "\r\n\r\n", 200, "net/http", `GET /kv/a "" "" host=h ua="` + long + `"`},
		{"no host", "GET /kv/a HTTP/1.1\r\n\r\n", 400, "", ""},
		{"bad header", "GET /kv/a HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400, "", ""},
		{"folded header", "GET /kv/a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n", 200, "net/http", `GET /kv/a "" "" host=h ua=""`},
		{"two lengths", "PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, addr, tt.raw, 1)[0]
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body(resp))
			}
			if tt.via == "" {
				return
			}
			if got := resp.Header.Get("X-Via"); got != tt.via {
				t.Errorf("served by %q, want %q", got, tt.via)
			}
			if got := body(resp); got != tt.body {
				t.Errorf("body %q, want %q", got, tt.body)
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date header")
			}
		})
	}
}

// TestLane_PipelineAndHandOff sends pipelined lane requests and then one
// that is not simple on the same connection: all are answered in order, the
// last ones by net/http with the bytes the lane had read.
func TestLane_PipelineAndHandOff(t *testing.T) {
	addr := serve(t, fastlane.Options{})
	raw := "GET /kv/1 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"PUT /kv/2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi" +
		"GET /other HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /kv/3 HTTP/1.1\r\nHost: h\r\n\r\n"
	resps := exchange(t, addr, raw, 4)
	want := []struct{ via, body string }{
		{"lane", `GET /kv/1 "" "" host=h ua=""`},
		{"lane", `PUT /kv/2 "" "hi" host=h ua=""`},
		{"net/http", `GET /other "" "" host=h ua=""`},
		{"net/http", `GET /kv/3 "" "" host=h ua=""`},
	}
	for i, r := range resps {
		if got := r.Header.Get("X-Via"); got != want[i].via {
			t.Errorf("response %d served by %q, want %q", i, got, want[i].via)
		}
		if got := body(r); got != want[i].body {
			t.Errorf("response %d: body %q, want %q", i, got, want[i].body)
		}
	}
}

// TestLane_SlowHeader shows a header sent in pieces is put together, and a
// client that stops mid-header is cut after HeaderTimeout.
func TestLane_SlowHeader(t *testing.T) {
	addr := serve(t, fastlane.Options{HeaderTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, part := range []string{"GET /kv/a HT", "TP/1.1\r\nHo", "st: h\r\n", "\r\n"} {
		_, _ = io.WriteString(c, part)
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.Header.Get("X-Via") != "lane" {
		t.Fatalf("pieced request: %v %v", resp, err)
	}
	_, _ = io.ReadAll(resp.Body)
	_, _ = io.WriteString(c, "GET /kv/b HTTP/1.1\r\n") // and nothing more
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("stalled client: read %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stalled client cut after %v", d)
	}
}

// TestLane_CloseEndsIdleConnections shows Close ends lane connections that
// wait for a request (goleak checks the goroutines).
func TestLane_CloseEndsIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := fastlane.New(ln, http.HandlerFunc(echo), fastlane.Options{Eligible: eligible})
	served := make(chan error, 1)
	go func() { served <- fl.Serve() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resps := exchange(t, ln.Addr().String(), "GET /kv/a HTTP/1.1\r\nHost: h\r\n\r\n", 1)
	if resps[0].StatusCode != 200 {
		t.Fatal(resps[0].Status)
	}
	if err := fl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection still open after Close")
	}
	if _, err := fl.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

// TestLane_IdleTimeout shows a kept-alive connection that sends nothing
// more is cut after IdleTimeout, while one that keeps asking is not.
func TestLane_IdleTimeout(t *testing.T) {
	addr := serve(t, fastlane.Options{IdleTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	// Requests 100 ms apart, each within the idle timeout, for longer than it.
	for i := range 5 {
		if _, err := io.WriteString(c, "GET /kv/a HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.Header.Get("X-Via") != "lane" {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		_, _ = io.ReadAll(resp.Body)
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle client: read %v, want EOF", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle client cut after %v", d)
	}
}
