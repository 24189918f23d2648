package resp_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/resp"
)

// The bound on connections holds on the event loops (Serve) and with a
// goroutine per connection (ServeConns, the TLS path).
func TestLimit_RESPConnections(t *testing.T) {
	for _, mode := range []string{"loops", "goroutines"} {
		t.Run(mode, func(t *testing.T) { testRESPConnections(t, mode) })
	}
}

func testRESPConnections(t *testing.T, mode string) {
	b := newFakeBackend(t, argent.Limits{})
	s := resp.New(b, nil, prometheus.NewRegistry())
	s.SetMaxConnections(2)
	serve := s.Serve
	if mode == "goroutines" {
		serve = s.ServeConns
	}
	addr := serveOn(t, s, serve)
	ping := func(c net.Conn) (string, error) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := ping(c); err != nil || got != "+PONG\r\n" {
			t.Fatalf("PING within the bound: %q %v", got, err)
		}
		conns = append(conns, c)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := bufio.NewReader(over).ReadString('\n')
	if got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("connection over the bound read %q %v", got, err)
	}
	// A closed connection frees its place.
	conns[0].Close()
	waitForRESP(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, _ := ping(c)
		return got == "+PONG\r\n"
	})
}

// waitForRESP polls cond for up to 5 s.
func waitForRESP(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLimit_RESPRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte(authRules), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Open(path, auth.Options{Rate: 1.0 / 60, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	b := newAsyncBackend(t, argent.Limits{})
	b.refuse.Store(0)
	s := resp.New(b, nil, nil)
	s.RequireAuth(a)
	addr := serveOn(t, s, s.Serve)
	c := authClient(t, addr, deployTok)
	ctx := context.Background()
	// AUTH is free; then a burst of three commands, SETs included.
	for i, cmd := range [][]any{{"GET", "app/x"}, {"SET", "app/config/a", "1"}, {"GET", "app/x"}, {"SET", "app/config/b", "2"}, {"GET", "app/x"}} {
		err := c.Do(ctx, cmd...).Err()
		limited := err != nil && strings.Contains(err.Error(), "rate limit")
		if limited != (i >= 3) {
			t.Errorf("command %d %v: %v", i, cmd, err)
		}
	}
	admin := authClient(t, addr, adminTok)
	if err := admin.Get(ctx, "app/config/b").Err(); err == nil || err.Error() != "redis: nil" {
		t.Errorf("the refused SET wrote: %v", err)
	}
}

// TestLimit_RESPRateOnce shows a read the loop hands to a goroutine (it
// must wait for READINDEX) takes one place in the rate, not two.
func TestLimit_RESPRateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte(authRules), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Open(path, auth.Options{Rate: 1.0 / 60, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.New(newFakeBackend(t, argent.Limits{}), nil, nil)
	s.RequireAuth(a)
	resp.SetReadIndexWait(s, 50*time.Millisecond)
	addr := serveOn(t, s, s.Serve)
	c := authClient(t, addr, deployTok)
	ctx := context.Background()
	if err := c.Do(ctx, "READINDEX", "1000").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "app/x").Err(); err == nil || !strings.HasPrefix(err.Error(), "TIMEOUT") {
		t.Fatalf("GET waiting for READINDEX: %v, want TIMEOUT", err)
	}
	if err := c.Get(ctx, "app/x").Err(); err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("third command: %v, want the rate limit", err)
	}
}
