package node_test

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/node"
)

// TestMaxConnections starts a root that takes one connection: a second
// client gets 503 overloaded until the first goes.
func TestMaxConnections(t *testing.T) {
	n := start(t, node.Config{Role: node.RoleRoot, MaxConnections: 1})
	hold, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The held connection is accepted before the client's comes.
	time.Sleep(100 * time.Millisecond)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	c, err := client.New(n.Addr(), client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(t.Context(), []byte("k"), client.ReadOptions{})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != client.CodeOverloaded || !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("a connection over the bound: %v", err)
	}
	hold.Close()
	waitFor(t, 5*time.Second, func() error {
		_, err := c.Get(t.Context(), []byte("k"), client.ReadOptions{})
		if errors.Is(err, argent.ErrNotFound) {
			return nil
		}
		return err
	})
}
