package wirecheck

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echo answers the key it was asked for, with an index header, and the
// body it was sent.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Argent-Index", "42")
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Query().Get("key") == "gone" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, "value of "+r.URL.Query().Get("key")+" "+string(body))
})

// damage changes an answer between the server and the checking transport.
type damage struct {
	base   http.RoundTripper
	answer func(resp *http.Response, body []byte) []byte
}

func (d damage) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(req)
	if err != nil || d.answer == nil {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = d.answer(resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func TestTransport(t *testing.T) {
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x04; return b }
	tests := []struct {
		name    string
		server  func(http.Handler) http.Handler // in front of the checked handler
		checked bool                            // the server wraps echo in Handler
		answer  func(resp *http.Response, body []byte) []byte
		method  string
		key     string
		want    string // body, or "corrupt"
		status  int
	}{
		{name: "intact get", checked: true, key: "k1", want: "value of k1 ", status: 200},
		{name: "intact post", checked: true, method: "POST", key: "k1", want: "value of k1 hello", status: 200},
		{name: "intact 404", checked: true, key: "gone", want: "", status: 404},
		{name: "server not checked", checked: false, key: "k1", want: "corrupt"},
		{name: "body bit flipped", checked: true, key: "k1", want: "corrupt",
			answer: func(_ *http.Response, b []byte) []byte { return flip(b, 3) }},
		{name: "index header changed", checked: true, key: "k1", want: "corrupt",
			answer: func(r *http.Response, b []byte) []byte { r.Header.Set("Argent-Index", "43"); return b }},
		{name: "index header renamed", checked: true, key: "k1", want: "corrupt",
			answer: func(r *http.Response, b []byte) []byte {
				r.Header["Brgent-Index"] = r.Header["Argent-Index"]
				delete(r.Header, "Argent-Index")
				return b
			}},
		{name: "status changed", checked: true, key: "gone", want: "corrupt",
			answer: func(r *http.Response, b []byte) []byte { r.StatusCode = 200; return b }},
		{name: "sum header lost", checked: true, key: "k1", want: "corrupt",
			answer: func(r *http.Response, b []byte) []byte { r.Header.Del(HeaderSum); return b }},
		{name: "request damaged on the way", checked: true, key: "k1", want: "corrupt",
			server: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.RequestURI = strings.Replace(r.RequestURI, "k1", "k3", 1)
					r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "k1", "k3", 1)
					h.ServeHTTP(w, r)
				})
			}},
		{name: "request body damaged on the way", checked: true, method: "POST", key: "k1", want: "corrupt",
			server: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Body = io.NopCloser(strings.NewReader("hellp"))
					h.ServeHTTP(w, r)
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Handler = echo
			if tt.checked {
				h = Handler(h)
			}
			if tt.server != nil {
				h = tt.server(h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			var refused int
			hc := Client(&http.Client{Transport: damage{base: http.DefaultTransport, answer: tt.answer}},
				Transport{OnCorrupt: func(*http.Request, error) { refused++ }})
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("hello")
			}
			req, err := http.NewRequest(method, srv.URL+"/x?key="+tt.key, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if tt.want == "corrupt" {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if refused != 1 {
					t.Errorf("OnCorrupt called %d times, want 1", refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if string(got) != tt.want || resp.StatusCode != tt.status {
				t.Errorf("answer %d %q, want %d %q", resp.StatusCode, got, tt.status, tt.want)
			}
			if resp.Header.Get("Argent-Index") != "42" {
				t.Errorf("Argent-Index %q", resp.Header.Get("Argent-Index"))
			}
		})
	}
}

// A body that cannot be replayed cannot be hashed before it is sent.
func TestTransport_BodyNotReplayable(t *testing.T) {
	srv := httptest.NewServer(Handler(echo))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", io.NopCloser(strings.NewReader("x")))
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = nil
	if _, err := Client(nil, Transport{}).Do(req); err == nil || !strings.Contains(err.Error(), "replayable") {
		t.Fatalf("err = %v, want a refusal of the body", err)
	}
}

func TestTransport_MaxBody(t *testing.T) {
	srv := httptest.NewServer(Handler(echo))
	defer srv.Close()
	hc := &http.Client{Transport: &Transport{MaxBody: 4}}
	if _, err := hc.Get(srv.URL + "/x?key=long"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt for an answer over MaxBody", err)
	}
}
