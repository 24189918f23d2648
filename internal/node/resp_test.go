package node_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent/internal/node"
)

// TestNode_RESPAtProxy reads through a proxy's RESP port in a root ->
// replica -> proxy tree: misses go to the replica on a goroutine, hits are
// answered on the event loop, and both equal what the root wrote; a SET is
// forwarded to the root, and READINDEX makes the next read see it.
func TestNode_RESPAtProxy(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	// The proxy's window of recent updates holds only the last few of
	// these writes: its first reads of the others miss.
	last := write(t, newClient(t, root), 40, "k")
	waitApplied(t, replica, last)
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{replica.Addr()},
		CacheSize: 64 << 20, WindowBytes: 1 << 10, RESPListen: "127.0.0.1:0"})
	waitFor(t, 20*time.Second, func() error {
		if got := proxy.Status().AppliedIndex; got < last {
			return fmt.Errorf("proxy at %d, want %d", got, last)
		}
		return nil
	})

	rc := redis.NewClient(&redis.Options{Addr: proxy.RESPAddr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	handoffs := func() float64 { return counter(t, proxy.Registry(), "argent_resp_goroutine_handoffs_total") }
	var afterMisses float64
	for pass := range 2 { // the first pass misses, the second hits
		if pass == 1 {
			afterMisses = handoffs()
		}
		for i := range 40 {
			key := fmt.Sprintf("k/%04d", i)
			got, err := rc.Get(ctx, key).Result()
			deleted := i%7 == 2 && i+1 < 40 // write deletes k/(j-1) with its batch j when j%7 == 3
			switch {
			case deleted && err != redis.Nil:
				t.Fatalf("pass %d: GET %s = %q, %v, want nil", pass, key, got, err)
			case !deleted && (err != nil || got != string(bytes.Repeat([]byte{byte(i)}, 100))):
				t.Fatalf("pass %d: GET %s = %d bytes, %v", pass, key, len(got), err)
			}
		}
	}
	if afterMisses == 0 || handoffs() != afterMisses {
		t.Fatalf("hand-offs to goroutines: %v after the misses, %v after the hits; want the hits answered on the loop", afterMisses, handoffs())
	}
	if got, err := rc.Get(ctx, "k/last").Result(); err != nil || got != "39" {
		t.Fatalf("GET k/last = %q, %v", got, err)
	}
	if err := rc.Set(ctx, "via-proxy", "1", 0).Err(); err != nil {
		t.Fatalf("SET through the proxy: %v", err)
	}
	idx := root.Status().AppliedIndex
	if err := rc.Do(ctx, "READINDEX", uint64(idx)).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rc.Get(ctx, "via-proxy").Result(); err != nil || got != "1" {
		t.Fatalf("GET after READINDEX %d = %q, %v", idx, got, err)
	}
}
