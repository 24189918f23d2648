package root_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/root"
)

// runRoot starts a root over s and stops it at cleanup, before s closes.
func runRoot(t *testing.T, s *kv.Store, cfg root.Config) *root.Root {
	t.Helper()
	r := root.New(s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = s.Close() // a failed store closes with an error
	})
	return r
}

func putKey(r *root.Root, k string) (argent.Index, error) {
	return r.Write(context.Background(), argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte("v")}}})
}

// checkRestart reopens what a crash of mem leaves and checks that the
// acknowledged keys are there and the refused ones are not.
func checkRestart(t *testing.T, mem *vfs.MemFS, acked, refused []string) {
	t.Helper()
	cs, err := kv.Open("/db", &kv.Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer cs.Close()
	for _, k := range acked {
		if _, err := cs.Get(context.Background(), []byte(k), cs.Applied()); err != nil {
			t.Errorf("acknowledged write %q lost: %v", k, err)
		}
	}
	for _, k := range refused {
		if _, err := cs.Get(context.Background(), []byte(k), cs.Applied()); !errors.Is(err, argent.ErrNotFound) {
			t.Errorf("refused write %q present after restart: %v", k, err)
		}
	}
}

// TestRoot_DiskBelowFloorRefusesWrites lowers the free space the store's
// disk reports under the root's floor: writes are refused with ErrDiskFull
// (507 insufficient_storage on the API), nothing is written, the store
// keeps working, and writes are taken again once space returns.
func TestRoot_DiskBelowFloorRefusesWrites(t *testing.T) {
	mem := vfs.NewCrashableMem()
	const floor = 64 << 20
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30, UsedBytes: 1 << 30})
	s, err := kv.Open("/db", &kv.Options{FS: mem, OnFatal: func(err error) { t.Errorf("OnFatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	r := runRoot(t, s, root.Config{MinFreeDisk: floor})
	if _, err := putKey(r, "before"); err != nil {
		t.Fatal(err)
	}
	applied := s.Applied()
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: floor - 1, TotalBytes: 2 << 30, UsedBytes: 2<<30 - floor + 1})
	for _, k := range []string{"full1", "full2"} {
		idx, err := putKey(r, k)
		if err == nil {
			t.Fatalf("write %q acknowledged at %d below the floor", k, idx)
		}
		if !errors.Is(err, root.ErrDiskFull) || !errors.Is(err, argent.ErrUnavailable) {
			t.Fatalf("write below the floor: %v, want root.ErrDiskFull", err)
		}
		if status, body := apiwire.NewErrorBody(err); status != http.StatusInsufficientStorage || body.Error.Code != apiwire.CodeInsufficientStorage {
			t.Fatalf("API answer %d %q, want 507 %q", status, body.Error.Code, apiwire.CodeInsufficientStorage)
		}
	}
	if !r.DiskFull() {
		t.Error("DiskFull false while writes are refused")
	}
	if got := s.Applied(); got != applied {
		t.Fatalf("applied index moved from %d to %d while writes were refused", applied, got)
	}
	if s.Failed() != nil {
		t.Fatalf("store failed: %v", s.Failed())
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: floor, TotalBytes: 2 << 30, UsedBytes: 2<<30 - floor})
	if r.DiskFull() {
		t.Error("DiskFull true once space returned, before any write")
	}
	if _, err := putKey(r, "after"); err != nil {
		t.Fatalf("write once space returned: %v", err)
	}
	if r.DiskFull() {
		t.Error("DiskFull true once space returned")
	}
	checkRestart(t, mem, []string{"before", "after"}, []string{"full1", "full2"})
}

// TestRoot_WriteErrorStops injects errors into the writes (not the
// fsyncs) of the log's file, an I/O error and a full disk (ENOSPC) that
// the free-space floor did not foresee: the write is not acknowledged, the
// store stops taking writes (kv.ErrStorageFailed) and tells its owner, and
// a restart on the same disk without the fault finds every acknowledged
// write and none of the refused ones.
func TestRoot_WriteErrorStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"EIO", errorfs.ErrInjected},
		{"ENOSPC", syscall.ENOSPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30, UsedBytes: 1 << 30})
			var inject atomic.Bool
			fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if inject.Load() && op.Kind == errorfs.OpFileWrite {
					return tc.err
				}
				return nil
			}))
			fatal := make(chan error, 4)
			s, err := kv.Open("/db", &kv.Options{FS: fs, OnFatal: func(err error) { fatal <- err }})
			if err != nil {
				t.Fatal(err)
			}
			r := runRoot(t, s, root.Config{MinFreeDisk: 1 << 20})
			if _, err := putKey(r, "before"); err != nil {
				t.Fatal(err)
			}
			inject.Store(true)
			if idx, err := putKey(r, "during"); err == nil {
				t.Fatalf("write acknowledged at %d although its log write failed", idx)
			} else if !errors.Is(err, kv.ErrStorageFailed) {
				t.Fatalf("write during a failed log write: %v, want kv.ErrStorageFailed", err)
			}
			select {
			case err := <-fatal:
				t.Logf("OnFatal: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("OnFatal not called")
			}
			inject.Store(false)
			if _, err := putKey(r, "after"); !errors.Is(err, kv.ErrStorageFailed) {
				t.Fatalf("write after the failure: %v, want kv.ErrStorageFailed", err)
			}
			checkRestart(t, mem, []string{"before"}, []string{"during", "after"})
		})
	}
}
