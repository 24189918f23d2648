package client_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// counted starts a server answering every request with status and code
// (200: the key's value) and counts the requests.
func counted(t *testing.T, status int, code string) (string, *atomic.Int32) {
	t.Helper()
	n := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if status == http.StatusOK {
			w.Header().Set(client.HeaderIndex, "7")
			_, _ = w.Write([]byte("v"))
			return
		}
		writeJSON(w, status, client.ErrorBody{Error: client.ErrorDetail{Code: code, Message: code}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n
}

func TestClient_Failover(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    int // of the first node
		code      string
		dead      bool // the first node does not listen
		wantErr   error
		wantFirst int32 // requests the first node saw
		wantNext  int32 // requests the second node saw
	}{
		{name: "ConnectionRefused", dead: true, wantNext: 1},
		{name: "NotReady", status: 503, code: client.CodeNotReady, wantFirst: 1, wantNext: 1},
		{name: "NotFoundIsTheAnswer", status: 404, code: client.CodeNotFound, wantErr: argent.ErrNotFound, wantFirst: 1},
		{name: "InvalidIsTheAnswer", status: 400, code: client.CodeInvalid, wantErr: argent.ErrInvalid, wantFirst: 1},
		{name: "TimeoutIsTheAnswer", status: 504, code: client.CodeTimeout, wantErr: argent.ErrTimeout, wantFirst: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first, n1 := counted(t, tt.status, tt.code)
			if tt.dead {
				first = deadAddr(t)
			}
			next, n2 := counted(t, http.StatusOK, "")
			c, err := client.New(first + "," + next)
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Get(t.Context(), []byte("k"), client.ReadOptions{})
			if tt.wantErr == nil && (err != nil || string(v.Value) != "v") {
				t.Fatalf("Get = %q, %v; want v from the second node", v.Value, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get = %v, want %v", err, tt.wantErr)
			}
			if n1.Load() != tt.wantFirst || n2.Load() != tt.wantNext {
				t.Fatalf("requests: first node %d, second %d; want %d, %d", n1.Load(), n2.Load(), tt.wantFirst, tt.wantNext)
			}
			if tt.wantNext > 0 && !strings.HasSuffix(next, strings.TrimPrefix(c.Addr(), "http://")) {
				t.Fatalf("Addr() = %q after failing over to %s", c.Addr(), next)
			}
		})
	}
}

// A write fails over when the node refuses the connection, and the client
// keeps to the node that answered.
func TestClient_Failover_Write(t *testing.T) {
	_, live := newFake(t)
	c, err := client.NewFailover([]string{deadAddr(t), live.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		idx, err := c.Put(t.Context(), []byte("k"), []byte("v"))
		if err != nil || idx != argent.Index(i+1) {
			t.Fatalf("Put %d = %d, %v", i, idx, err)
		}
	}
	if c.Addr() != live.Addr() {
		t.Fatalf("Addr() = %q, want %q", c.Addr(), live.Addr())
	}
	all, err := client.New(deadAddr(t) + "," + deadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.Put(t.Context(), []byte("k"), []byte("v")); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Put with no node up = %v, want connection refused", err)
	}
	if _, err := client.New("127.0.0.1:1,"); !errors.Is(err, argent.ErrInvalid) {
		t.Fatalf("New with an empty address = %v, want ErrInvalid", err)
	}
}
