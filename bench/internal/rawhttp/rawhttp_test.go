package rawhttp_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int
		n      int
		keep   bool
		err    bool
	}{
		{"ContentLength", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, 5, true, false},
		{"NoReason", "HTTP/1.1 404\r\ncontent-length: 2\r\n\r\n{}", 404, 2, true, false},
		{"Empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, 0, true, false},
		{"Close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 200, 1, false, false},
		{"HTTP10", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, 1, false, false},
		{"Chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na;x=y\r\n0123456789\r\n0\r\nT: v\r\n\r\n", 200, 13, true, false},
		{"NoContent", "HTTP/1.1 204 No Content\r\n\r\n", 204, 0, true, false},
		{"Short", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 200, 3, false, true},
		{"NoLength", "HTTP/1.1 200 OK\r\n\r\nabc", 200, 0, false, true},
		{"BadLength", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nabc", 200, 0, false, true},
		{"Garbage", "SSH-2.0-OpenSSH\r\n", 0, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, n, keep, err := rawhttp.ReadResponse(bufio.NewReader(strings.NewReader(tt.in)))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if status != tt.status || n != tt.n || (err == nil && keep != tt.keep) {
				t.Errorf("got status %d n %d keep %v, want %d %d %v", status, n, keep, tt.status, tt.n, tt.keep)
			}
		})
	}
}

func TestReadResponseHeader(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nArgent-Index: 7\r\nArgent-Tier: cache\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 404 Not Found\r\nargent-tier:  filter \r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" +
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
	br := bufio.NewReader(strings.NewReader(in))
	var buf []byte
	for _, want := range []struct {
		status, n int
		tier      string
		keep      bool
	}{{200, 5, "cache", true}, {404, 2, "filter", false}, {200, 1, "", true}} {
		status, n, tier, keep, err := rawhttp.ReadResponseHeader(br, "Argent-Tier", buf)
		if err != nil || status != want.status || n != want.n || string(tier) != want.tier || keep != want.keep {
			t.Errorf("got %d %d %q %v %v, want %+v", status, n, tier, keep, err, want)
		}
		buf = tier
	}
}

// TestReadResponse_Pipelined checks that a parsed answer leaves the reader
// at the start of the next one.
func TestReadResponse_Pipelined(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{}"
	br := bufio.NewReader(strings.NewReader(in))
	for _, want := range []int{200, 409} {
		status, _, _, err := rawhttp.ReadResponse(br)
		if err != nil || status != want {
			t.Fatalf("got %d, %v; want %d", status, err, want)
		}
	}
}

func TestAppendKeyPath(t *testing.T) {
	tests := []struct{ name, key, want string }{
		{"Plain", "a/b-c_d.e~f", "/v1/kv/a/b-c_d.e~f"},
		{"Escaped", "key:1 %", "/v1/kv/key%3A1%20%25"},
		{"Dot", ".", "/v1/kv/%2E"},
		{"DotDot", "..", "/v1/kv/%2E%2E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(rawhttp.AppendKeyPath(nil, []byte(tt.key))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendMGetBody(t *testing.T) {
	keys := [][]byte{[]byte("a/1"), []byte(`q"\` + "\x01")}
	var got struct{ Keys []string }
	if err := json.Unmarshal(rawhttp.AppendMGetBody(nil, keys), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 || got.Keys[0] != "a/1" || got.Keys[1] != `q"\`+"\x01" {
		t.Errorf("got %q", got.Keys)
	}
}

// TestConn checks every request kind against net/http's server, which
// parses them strictly, and that the Conn keeps its connection.
func TestConn(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/kv/a/key:1":
			w.Header().Set("Argent-Tier", "cache")
			_, _ = w.Write([]byte("value"))
		case r.Method == http.MethodPut && r.URL.Path == "/v1/kv/a/key:1" && string(body) == "v2":
			_, _ = w.Write([]byte(`{"index":2}`))
		case r.Method == http.MethodPost && r.URL.Path == "/v1/mget":
			var req struct{ Keys []string }
			if json.Unmarshal(body, &req) != nil || len(req.Keys) != 2 {
				http.Error(w, "bad mget", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"index":2,"items":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := rawhttp.New(strings.TrimPrefix(srv.URL, "http://"))
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	key := []byte("a/key:1")
	for _, tt := range []struct {
		name   string
		do     func() (int, int, error)
		status int
		n      int
	}{
		{"Get", func() (int, int, error) { return c.Get(key) }, 200, 5},
		{"Put", func() (int, int, error) { return c.Put(key, []byte("v2")) }, 200, 11},
		{"MGet", func() (int, int, error) { return c.MGet([][]byte{key, []byte("b")}) }, 200, 22},
		{"Missing", func() (int, int, error) { return c.Get([]byte("nope")) }, 404, 19},
		{"GetHeader", func() (int, int, error) {
			status, n, tier, err := c.GetHeader(key, "argent-tier")
			if string(tier) != "cache" {
				t.Errorf("GetHeader: Argent-Tier %q, want cache", tier)
			}
			return status, n, err
		}, 200, 5},
	} {
		status, n, err := tt.do()
		if err != nil || status != tt.status || n != tt.n {
			t.Errorf("%s: got %d %d %v, want %d %d", tt.name, status, n, err, tt.status, tt.n)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
