package client_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// startTree starts a root and a replica that follows it through a fault
// proxy, so the test can make the replica lag.
func startTree(t *testing.T) (root, replica *node.Node, link *faultproxy.Proxy) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	root, err := node.Start(ctx, node.Config{Role: node.RoleRoot, DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	link = faultproxy.Start(t, root.Addr())
	replica, err = node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: t.TempDir(), Listen: "127.0.0.1:0", Upstreams: []string{link.Addr()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	return root, replica, link
}

// A session that wrote through the root reads its write at a replica that
// lags: the read waits for the replica to catch up, where a plain read
// answers the old value at once.
func TestSession_ReadYourWritesAtLaggingReplica(t *testing.T) {
	root, replica, link := startTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, rp := mustNew(t, root.Addr()), mustNew(t, replica.Addr())
	first, err := rc.Put(ctx, []byte("k"), []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Store().WaitApplied(ctx, 10*time.Second, first); err != nil {
		t.Fatal(err)
	}

	link.Blackhole()
	s := rc.Session()
	idx, err := s.Put(ctx, []byte("k"), []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Index() != idx {
		t.Fatalf("session index %d after a write at %d", s.Index(), idx)
	}
	if v, err := rp.Get(ctx, []byte("k"), client.ReadOptions{}); err != nil || string(v.Value) != "v1" {
		t.Fatalf("plain read at the stalled replica = %q at %d, %v; want the old v1", v.Value, v.Index, err)
	}
	// Not in time: the session's read fails rather than answer v1.
	sr := s.On(rp)
	if v, err := sr.Get(ctx, []byte("k"), client.ReadOptions{Wait: 50 * time.Millisecond}); !errors.Is(err, argent.ErrTimeout) {
		t.Fatalf("session read at the stalled replica = %q, %v; want a timeout", v.Value, err)
	}
	time.AfterFunc(200*time.Millisecond, link.Restore)
	start := time.Now()
	v, err := sr.Get(ctx, []byte("k"), client.ReadOptions{Wait: 10 * time.Second})
	if err != nil || string(v.Value) != "v2" || v.Index < idx {
		t.Fatalf("session read = %q at %d, %v; want v2 at %d or later", v.Value, v.Index, err, idx)
	}
	t.Logf("the session's read waited %s for the replica", time.Since(start).Round(time.Millisecond))
	at, items, err := sr.MGet(ctx, [][]byte{[]byte("k")}, client.ReadOptions{})
	if err != nil || at < idx || string(items[0].Value) != "v2" {
		t.Fatalf("session mget = %d %+v, %v", at, items, err)
	}
}

// Reads raise a session's index too, so a later read on another node is
// never older (monotonic reads); concurrent use keeps the highest index.
func TestSession_Observe(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := c.Put(ctx, []byte("a"), []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Session()
	v, err := s.Get(ctx, []byte("a"), client.ReadOptions{})
	if err != nil || s.Index() != v.Index || v.Index != 3 {
		t.Fatalf("after a read at %d (%v) the session is at %d, want 3", v.Index, err, s.Index())
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { s.Observe(argent.Index(i)) })
	}
	wg.Wait()
	if s.Index() != 49 {
		t.Fatalf("index %d after concurrent Observe up to 49", s.Index())
	}
	s.Observe(10)
	if s.Index() != 49 {
		t.Fatalf("index went down to %d", s.Index())
	}
}
