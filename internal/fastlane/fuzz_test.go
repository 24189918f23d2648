package fastlane

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"testing"
)

// FuzzParse feeds the lane's request parser a request header and holds it
// to net/http: a request the lane takes is one net/http reads too, with
// the same method, target, host, length and header values, and the lane
// consumes exactly the header. Anything else the lane must leave alone.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
		"GET /v1/kv/a?at=7 HTTP/1.1\r\nHost: h\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
		"POST /v1/mget HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"keys\":[\"a\"]}",
		"PUT /v1/kv/k HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nv",
		"DELETE /v1/kv/k HTTP/1.1\r\nhost:h\r\nX-Custom:  a b\t\r\n\r\n",
		"GET /v1/kv/a HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
		"GET /v1/kv/a HTTP/1.1\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /v1/kv/%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := bytes.Index(b, crlf2)
		if n < 0 {
			return // the lane waits for the header's end
		}
		n += len(crlf2)
		l := &Listener{opts: Options{Eligible: func(_, path string) bool { return len(path) > 1 }}.withDefaults(), base: new(http.Request)}
		lc := &conn{l: l, br: bufio.NewReaderSize(bytes.NewReader(b), len(b)+16), hdr: make(http.Header)}
		req, err := lc.parse(n)
		if err != nil {
			if err != errNotSimple {
				t.Fatalf("parse error %v is not errNotSimple", err)
			}
			if lc.br.Buffered() != len(b) {
				t.Fatalf("a refused request consumed %d bytes", len(b)-lc.br.Buffered())
			}
			return
		}
		if lc.br.Buffered() != len(b)-n {
			t.Fatalf("consumed %d bytes, the header is %d", len(b)-lc.br.Buffered(), n)
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("the lane took a request net/http refuses: %v\n%q", err, b[:n])
		}
		defer std.Body.Close()
		switch {
		case req.Method != std.Method, req.RequestURI != std.RequestURI:
			t.Fatalf("request line: lane %s %s, net/http %s %s", req.Method, req.RequestURI, std.Method, std.RequestURI)
		case req.URL.String() != std.URL.String(), req.URL.Path != std.URL.Path, req.URL.RawQuery != std.URL.RawQuery:
			t.Fatalf("URL: lane %q, net/http %q", req.URL, std.URL)
		case req.Host != std.Host:
			t.Fatalf("Host: lane %q, net/http %q", req.Host, std.Host)
		case req.ContentLength != std.ContentLength && !(req.ContentLength == 0 && std.ContentLength <= 0):
			t.Fatalf("Content-Length: lane %d, net/http %d", req.ContentLength, std.ContentLength)
		case req.ProtoMajor != std.ProtoMajor || req.ProtoMinor != std.ProtoMinor:
			t.Fatalf("protocol: lane %d.%d, net/http %s", req.ProtoMajor, req.ProtoMinor, std.Proto)
		}
		for k, v := range req.Header {
			if !slices.Equal(v, std.Header[k]) {
				t.Fatalf("header %q: lane %q, net/http %q", k, v, std.Header[k])
			}
		}
		for k := range std.Header {
			if _, ok := req.Header[k]; !ok {
				t.Fatalf("header %q: net/http has %q, the lane nothing", k, std.Header[k])
			}
		}
	})
}
