package replica_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/replica"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

// When the parent's log no longer holds the replica's next index, the
// replica loads a snapshot, then follows the log from the snapshot's index.
func TestReplica_BootstrapsFromSnapshot(t *testing.T) {
	for _, kind := range pulltest.Transports {
		t.Run(kind, func(t *testing.T) {
			n := pulltest.NewNetwork(t, kind)
			r := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
			r.Write(t, "old", 60)
			pulltest.TrimAll(t, r.Store)
			addr := n.Serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 512})

			s := pulltest.NewStore(t, kv.Options{})
			rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}})
			pulltest.WaitApplied(t, s, r.Applied())
			last := r.Write(t, "new", 10)
			pulltest.WaitApplied(t, s, last)
			pulltest.CheckSame(t, s, r.Store)
			checkMetrics(t, rp,
				metricWant{"argent_snapshots_loaded_total", 1},
				metricWant{"argent_snapshot_records_received_total", 60},
				metricWant{"argent_snapshot_resumes_total", 0},
				metricWant{"argent_log_entries_received_total", 10})
		})
	}
}

// A snapshot load cut part way resumes after the last key it stored (it
// does not start over), from the same state or from a newer one, which the
// replica then reaches by replaying the log.
func TestReplica_SnapshotResumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newer int // entries the parent commits between the cut and the resume
	}{
		{name: "SameState"},
		{name: "NewerState", newer: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			r, addr := snapshotRoot(t, n, 200, 256)
			// SnapBegin and 3 chunks arrive, then the parent stops sending
			// until the link is cut.
			n.Inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultStall, After: 4})

			s := pulltest.NewStore(t, kv.Options{})
			rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}, StallTimeout: pulltest.WaitLimit})
			pulltest.WaitFor(t, "part of the snapshot", func() bool { return rp.metric(t, "argent_snapshot_records_received_total") > 0 })
			if tc.newer > 0 {
				r.Write(t, "newer", tc.newer)
			}
			n.Inmem.Cut(addr)

			pulltest.WaitApplied(t, s, r.Applied())
			pulltest.CheckSame(t, s, r.Store)
			checkMetrics(t, rp,
				metricWant{"argent_snapshots_loaded_total", 1},
				metricWant{"argent_snapshot_resumes_total", 1},
				metricWant{"argent_snapshot_records_received_total", 200 + float64(tc.newer)},
				metricWant{"argent_log_entries_received_total", float64(tc.newer)})
		})
	}
}

// A cut snapshot load resumes on its own: FaultCut ends the transfer and
// the replica asks again, after the last key it stored.
func TestReplica_SnapshotCutResumes(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r, addr := snapshotRoot(t, n, 120, 256)
	for i := range 2 {
		n.Inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultCut, After: 2 + i})
	}
	s := pulltest.NewStore(t, kv.Options{})
	rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{addr}})
	pulltest.WaitApplied(t, s, r.Applied())
	pulltest.CheckSame(t, s, r.Store)
	checkMetrics(t, rp,
		metricWant{"argent_snapshot_resumes_total", 2},
		metricWant{"argent_snapshot_records_received_total", 120}) // none twice
}

// A replica stopped in the middle of a snapshot load, and its store closed
// and opened again (a restart), resumes the load where it stopped.
func TestReplica_SnapshotResumesAfterRestart(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r, addr := snapshotRoot(t, n, 200, 256)
	n.Inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultStall, After: 4})

	fs := vfs.NewMem()
	s1, close1 := openStore(t, fs)
	cfg := replica.Config{Upstreams: []string{addr}, StallTimeout: pulltest.WaitLimit}
	first := start(t, n.Transport, s1, cfg)
	pulltest.WaitFor(t, "part of the snapshot", func() bool { return first.metric(t, "argent_snapshot_records_received_total") > 0 })
	first.stop()
	// Counted once the first load stopped: records may arrive until then
	// (the stall comes after several chunks).
	loaded := first.metric(t, "argent_snapshot_records_received_total")
	close1()

	s2, _ := openStore(t, fs)
	if !s2.Restoring() {
		t.Fatalf("store opened after the cut is not restoring")
	}
	second := start(t, n.Transport, s2, cfg)
	pulltest.WaitApplied(t, s2, r.Applied())
	pulltest.CheckSame(t, s2, r.Store)
	checkMetrics(t, second,
		metricWant{"argent_snapshots_loaded_total", 1},
		metricWant{"argent_snapshot_resumes_total", 1},
		metricWant{"argent_snapshot_records_received_total", 200 - loaded})
}

// openStore opens the store of fs; the returned func closes it, and the
// test's cleanup does if it was not called.
func openStore(t *testing.T, fs vfs.FS) (*kv.Store, func()) {
	t.Helper()
	s, err := kv.Open("/db", &kv.Options{FS: fs, MemTableSize: 4 << 20, CacheSize: 8 << 20})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	closeStore := sync.OnceFunc(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	t.Cleanup(closeStore)
	return s, closeStore
}

// A cut load that must go on from an upstream whose state is older than
// the load's base cannot resume: the replica says so and starts over from
// that upstream's snapshot.
func TestReplica_SnapshotCannotResumeStartsOver(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	a := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
	a.Write(t, "a", 200)
	pulltest.TrimAll(t, a.Store)
	aAddr := n.Serve("a", a.Store, pull.ServerConfig{SnapshotChunk: 256})
	n.Inmem.Inject(aAddr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultStall, After: 4})
	// B holds the same dataset at an older state.
	b := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, a.Dataset())
	b.Write(t, "b", 50)
	pulltest.TrimAll(t, b.Store)
	bAddr := n.Serve("b", b.Store, pull.ServerConfig{SnapshotChunk: 256})

	var logs syncBuffer
	s := pulltest.NewStore(t, kv.Options{})
	rp := start(t, n.Transport, s, replica.Config{Upstreams: []string{aAddr, bAddr}, StallTimeout: pulltest.WaitLimit,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	pulltest.WaitFor(t, "part of A's snapshot", func() bool { return rp.metric(t, "argent_snapshot_records_received_total") > 0 })
	n.Inmem.Unregister(aAddr)

	pulltest.WaitApplied(t, s, b.Applied())
	pulltest.CheckSame(t, s, b.Store)
	checkMetrics(t, rp,
		metricWant{"argent_snapshots_loaded_total", 1},
		metricWant{"argent_snapshot_resumes_total", 0})
	if got := logs.String(); !strings.Contains(got, `msg="snapshot load cannot resume: starting over" upstream=b`) {
		t.Errorf("no log line about starting over; log:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer that goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
