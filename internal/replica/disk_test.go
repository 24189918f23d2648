package replica_test

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/replica"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

// TestReplica_StorageFaultStops injects a fault into a replica's disk
// while it applies entries: an I/O error on a write or an fsync, or a full
// disk (ENOSPC). The store stops taking writes and tells its owner; the
// replica never publishes an index it did not make durable; and a restart
// on the same disk without the fault finds at least every index it
// published, then catches up with the root to the same state.
func TestReplica_StorageFaultStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind errorfs.OpKind
		err  error
	}{
		{"WriteEIO", errorfs.OpFileWrite, errorfs.ErrInjected},
		{"SyncEIO", errorfs.OpFileSync, errorfs.ErrInjected},
		{"WriteENOSPC", errorfs.OpFileWrite, syscall.ENOSPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			root := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			root.Write(t, "before", 20)
			rootAddr := n.Serve("root", root.Store, pull.ServerConfig{})

			mem := vfs.NewCrashableMem()
			var inject atomic.Bool
			fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if inject.Load() && (op.Kind == tc.kind || tc.kind == errorfs.OpFileSync && (op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo)) {
					return tc.err
				}
				return nil
			}))
			fatal := make(chan error, 4)
			s, err := kv.Open("/db", &kv.Options{FS: fs, OnFatal: func(err error) { fatal <- err }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			// The replica's published index, sampled as it runs: what it
			// told readers it had applied.
			var published atomic.Uint64
			r := replica.New(s, replica.Config{NodeID: "leaf", Upstreams: []string{rootAddr}, Transport: n.Transport,
				Metrics: pull.NewMetrics(prometheus.NewRegistry()), StallTimeout: pulltest.Stall, Heartbeat: pulltest.Heartbeat})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					cancel()
					<-done
				}
			}
			t.Cleanup(stop)
			pulltest.WaitApplied(t, s, root.Applied())

			inject.Store(true)
			sampleDone := make(chan struct{})
			go func() {
				defer close(sampleDone)
				for range 2000 {
					published.Store(uint64(s.Applied()))
					select {
					case <-fatal:
						published.Store(uint64(s.Applied()))
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			root.Write(t, "during", 20)
			select {
			case <-sampleDone:
			case <-time.After(10 * time.Second):
				t.Fatal("sampling did not end")
			}
			if !errors.Is(s.Failed(), kv.ErrStorageFailed) {
				t.Fatalf("store not failed after the fault: %v", s.Failed())
			}
			if got := s.Applied(); got >= root.Applied() {
				t.Fatalf("replica applied %d, the root's last index, through a failing disk", got)
			}
			stop()

			// Restart on what the disk holds, without the fault.
			rs, err := kv.Open("/db", &kv.Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { _ = rs.Close() })
			if got, pub := rs.Applied(), argent.Index(published.Load()); got < pub {
				t.Fatalf("restart found index %d, the replica had published %d", got, pub)
			}
			start(t, n.Transport, rs, replica.Config{NodeID: "leaf", Upstreams: []string{rootAddr}})
			pulltest.WaitApplied(t, rs, root.Applied())
			pulltest.CheckSame(t, rs, root.Store)
		})
	}
}

// TestReplica_DiskBelowFloorPauses lowers the free space a replica's disk
// reports under its floor: the replica applies no more entries but keeps
// its state and serves it, says so (DiskFull), its store never fails, and
// once space returns it catches up with the root.
func TestReplica_DiskBelowFloorPauses(t *testing.T) {
	const floor = 64 << 20
	plenty := vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30, UsedBytes: 1 << 30}
	n := pulltest.NewNetwork(t, "inmem")
	root := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	root.Write(t, "before", 20)
	rootAddr := n.Serve("root", root.Store, pull.ServerConfig{})

	mem := vfs.NewMem()
	mem.TestingSetDiskUsage(plenty)
	s, err := kv.Open("/db", &kv.Options{FS: mem, OnFatal: func(err error) { t.Errorf("OnFatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := start(t, n.Transport, s, replica.Config{Upstreams: []string{rootAddr}, MinFreeDisk: floor})
	pulltest.WaitApplied(t, s, root.Applied())
	held := s.Applied()

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: floor - 1, TotalBytes: 2 << 30, UsedBytes: 2<<30 - floor + 1})
	last := root.Write(t, "during", 20)
	pulltest.WaitFor(t, "the replica to report a full disk", r.DiskFull)
	time.Sleep(100 * time.Millisecond) // a few of the follower's retries
	if got := s.Applied(); got != held {
		t.Fatalf("applied %d below the floor, held %d", got, held)
	}
	if v, err := s.Get(context.Background(), []byte("before/000"), s.Applied()); err != nil || string(v.Value) != "v-before/000" {
		t.Fatalf("read below the floor: %q, %v", v.Value, err)
	}
	if s.Failed() != nil {
		t.Fatalf("store failed: %v", s.Failed())
	}

	mem.TestingSetDiskUsage(plenty)
	pulltest.WaitApplied(t, s, last)
	if r.DiskFull() {
		t.Error("DiskFull still true once space returned")
	}
	pulltest.CheckSame(t, s, root.Store)
}
