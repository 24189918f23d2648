package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNode answers like argent: values of GETs, {"index":N} to PUTs, an
// mget answer naming every key.
func fakeNode(t *testing.T, value []byte) (*httptest.Server, *atomic.Int64) {
	var puts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/kv/bench/key/"):
			if len(r.URL.Path) != len("/v1/kv/bench/key/00000000") {
				http.Error(w, "bad key "+r.URL.Path, http.StatusBadRequest)
				return
			}
			_, _ = w.Write(value)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/kv/bench/key/"):
			b, _ := io.ReadAll(r.Body)
			if len(b) != len(value) {
				http.Error(w, "bad value", http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "{\"index\":%d}\n", puts.Add(1))
		case r.Method == http.MethodPost && r.URL.Path == "/v1/mget":
			var req struct{ Keys []string }
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			// A chunked answer: no Content-Length on a flushed write.
			_, _ = w.Write([]byte(`{"index":1,"items":[`))
			w.(http.Flusher).Flush()
			_, _ = w.Write(bytes.Repeat([]byte(`{"key":"x"},`), len(req.Keys)))
			_, _ = w.Write([]byte(`]}`))
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &puts
}

func TestRunLoad(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 64)
	srv, puts := fakeNode(t, value)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, cl := range []string{clientRaw, clientStd} {
		for _, mode := range []string{modeGet, modePut, modeMGet} {
			for _, rate := range []float64{0, 2000} {
				t.Run(fmt.Sprintf("%s/%s/rate%v", cl, mode, rate), func(t *testing.T) {
					cfg, err := parseFlags([]string{"-target", addr, "-client", cl, "-mode", mode,
						"-conns", "4", "-duration", "200ms", "-keys", "1000", "-value", "64",
						"-dist", "zipf", "-mget-keys", "10", "-rate", fmt.Sprint(rate)}, io.Discard)
					if err != nil {
						t.Fatal(err)
					}
					before := puts.Load()
					res, err := runLoad(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if res.Ops == 0 || res.Errors != 0 {
						t.Fatalf("ops %d errors %d (%v)", res.Ops, res.Errors, res.ErrorKinds)
					}
					if mode == modeGet && res.BodyBytes != 64 {
						t.Errorf("mean body %v bytes, want 64", res.BodyBytes)
					}
					if mode == modePut && puts.Load()-before != res.Ops {
						t.Errorf("server saw %d puts, load counted %d", puts.Load()-before, res.Ops)
					}
					// 400 requests are due; a slow machine may leave some unsent.
					if sched := res.Ops + res.Unsent; rate > 0 && (sched < 390 || sched > 410) {
						t.Errorf("open loop at %v/s for 200ms: %d sent + %d unsent, want 400", rate, res.Ops, res.Unsent)
					}
					if res.P50 <= 0 || res.Max < res.P99 {
						t.Errorf("odd percentiles: %+v", res)
					}
				})
			}
		}
	}
}

func TestRunLoad_Errors(t *testing.T) {
	srv, _ := fakeNode(t, nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cfg, err := parseFlags([]string{"-target", addr, "-mode", "put", "-conns", "2", "-duration", "100ms", "-value", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLoad(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 0 || res.Errors == 0 || res.ErrorKinds["status 400"] != res.Errors {
		t.Fatalf("ops %d errors %d %v, want only 400s", res.Ops, res.Errors, res.ErrorKinds)
	}
}

func TestRunLoad_Refused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	cfg, err := parseFlags([]string{"-target", addr, "-duration", "50ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := runLoad(cfg); err == nil {
		t.Fatal("no error from a closed port")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("took too long to fail")
	}
}

// TestRunLoad_Hung checks that a server that stops answering cannot hold
// the run past its duration plus -timeout.
func TestRunLoad_Hung(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/00000000") { // all but the warm-up request
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, cl := range []string{clientRaw, clientStd} {
		cfg, err := parseFlags([]string{"-target", addr, "-client", cl, "-conns", "3", "-duration", "100ms",
			"-timeout", "200ms", "-keys", "1000", "-seed", "1"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := runLoad(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: run took %v, want about 300ms", cl, took)
		}
		if res.Errors == 0 {
			t.Errorf("%s: no errors from a hung server", cl)
		}
	}
}

func TestPutKey(t *testing.T) {
	b := make([]byte, 8)
	for _, n := range []int{0, 7, 12345678, 99999999} {
		putKey(b, n)
		if got, want := string(b), keyName(n)[len(keyPrefix):]; got != want {
			t.Errorf("putKey(%d) = %s, want %s", n, got, want)
		}
	}
}
