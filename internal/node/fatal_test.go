package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/node"
)

// TestNode_StorageFailureStops injects an I/O error into the root's fsync:
// the write in flight gets 503 and no index, the node reports that it must
// stop (Failed), and every later write is refused.
func TestNode_StorageFailureStops(t *testing.T) {
	var inject atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if inject.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	n := start(t, node.Config{Role: node.RoleRoot, DataDir: "/root", FS: fs})
	c := newClient(t, n)
	put := func(k string) error {
		_, err := c.Put(context.Background(), []byte(k), []byte("v"))
		return err
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Failed():
		t.Fatal("Failed before any failure")
	default:
	}
	inject.Store(true)
	if err := put("during"); !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("write during a failed fsync: %v, want 503 unavailable", err)
	}
	select {
	case <-n.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("Failed not closed after the storage failed")
	}
	if n.FailedErr() == nil {
		t.Fatal("FailedErr is nil")
	}
	inject.Store(false)
	if err := put("after"); !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("write after the failure: %v, want 503 unavailable", err)
	}
}
