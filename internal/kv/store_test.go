package kv_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

func TestStore_OpenNew(t *testing.T) {
	s := mustOpen(t, "db", nil)
	if st := s.State(); st != (argent.State{}) {
		t.Fatalf("State of a new store = %+v", st)
	}
	if s.Applied() != 0 || s.Horizon() != 0 || s.LogFirst() != 1 || s.Restoring() {
		t.Fatalf("new store: applied %d horizon %d logFirst %d restoring %v", s.Applied(), s.Horizon(), s.LogFirst(), s.Restoring())
	}
	if s.NodeID() == ([16]byte{}) {
		t.Fatal("new store has a zero node ID")
	}
	if !s.Dataset().IsZero() {
		t.Fatalf("new store has dataset %s", s.Dataset())
	}
	if s.HistoryBytes() != 0 || s.LogBytes() != 0 {
		t.Fatalf("new store: HistoryBytes %d, LogBytes %d", s.HistoryBytes(), s.LogBytes())
	}
	checkStore(t, s, newModel(), 1)
}

func TestStore_Reopen(t *testing.T) {
	fs := vfs.NewMem()
	opts := &kv.Options{FS: fs}
	s := mustOpen(t, "db", opts)
	ds, err := s.InitDataset()
	if err != nil {
		t.Fatal(err)
	}
	node := s.NodeID()
	m := newModel()
	commitAll(t, s, m, [][]argent.Op{{put("a", "1")}, {put("a", "2"), put("b", "2")}, {del("a")}}, 2, time.Now)
	s = reopen(t, s, "db", opts)
	defer func() { _ = s.Close() }()
	if s.NodeID() != node || s.Dataset() != ds {
		t.Fatalf("reopen: node %x dataset %s, want %x %s", s.NodeID(), s.Dataset(), node, ds)
	}
	// A root calls InitDataset at every start: it keeps the ID it has.
	if got, err := s.InitDataset(); err != nil || got != ds {
		t.Fatalf("InitDataset after reopen = %s, %v; want %s", got, err, ds)
	}
	checkStore(t, s, m, 1)
	// Another directory on the same file system is another store.
	other := mustOpen(t, "other", opts)
	if other.NodeID() == node || other.Applied() != 0 {
		t.Fatalf("a second store shares the node ID or state")
	}
}

func TestStore_Dataset(t *testing.T) {
	s := mustOpen(t, "db", nil)
	id, err := s.InitDataset()
	if err != nil || id.IsZero() {
		t.Fatalf("InitDataset = %s, %v", id, err)
	}
	tests := []struct {
		name string
		do   func() (argent.DatasetID, error)
		want error
	}{
		{name: "InitAgainKeeps", do: s.InitDataset},
		{name: "AdoptSame", do: func() (argent.DatasetID, error) { return s.AdoptDataset(id) }},
		{name: "AdoptZero", do: func() (argent.DatasetID, error) { return s.AdoptDataset(argent.DatasetID{}) }},
		{name: "AdoptOther", do: func() (argent.DatasetID, error) { return s.AdoptDataset(argent.DatasetID{7}) }, want: argent.ErrDatasetMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do()
			if !errors.Is(err, tc.want) || got != id {
				t.Fatalf("= %s, %v; want %s, %v", got, err, id, tc.want)
			}
			if s.Dataset() != id {
				t.Fatalf("Dataset = %s, want %s", s.Dataset(), id)
			}
		})
	}
	// A replica adopts its parent's ID.
	r := mustOpen(t, "replica", nil)
	if got, err := r.AdoptDataset(id); err != nil || got != id || r.Dataset() != id {
		t.Fatalf("AdoptDataset on a new store = %s, %v", got, err)
	}
}

// TestStore_RealDisk runs a few commits on the OS file system, where
// Commit really fsyncs.
func TestStore_RealDisk(t *testing.T) {
	dir := t.TempDir()
	opts := &kv.Options{FS: vfs.Default}
	s := mustOpen(t, dir, opts)
	m := newModel()
	commitAll(t, s, m, [][]argent.Op{{put("a", "1")}, {put("b", "2"), del("a")}, {delPrefix("")}}, 1, time.Now)
	if s.Metrics() == nil {
		t.Fatal("no Metrics")
	}
	// DiskUsage counts every file of the directory, the WAL included.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want, wal uint64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() {
			want += uint64(fi.Size())
			if strings.HasSuffix(e.Name(), ".log") {
				wal += uint64(fi.Size())
			}
		}
	}
	if got := s.DiskUsage(); got != want || wal == 0 {
		t.Fatalf("DiskUsage %d, want the %d bytes of the directory's files (%d of them WAL)", got, want, wal)
	}
	s = reopen(t, s, dir, opts)
	defer func() { _ = s.Close() }()
	checkStore(t, s, m, 1)
}

func TestStore_CloseTwice(t *testing.T) {
	s := mustOpen(t, "db", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestStore_ReadsCheckContext checks that a read whose context has ended
// is not served: it fails with the context's error.
func TestStore_ReadsCheckContext(t *testing.T) {
	s := mustOpen(t, "db", nil)
	w := s.NewWriter()
	if _, err := w.Append([]argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if v, err := s.Get(ctx, []byte("k"), 1); err != nil || string(v.Value) != "v" {
		t.Fatalf("Get(k) = %q, %v; want v", v.Value, err)
	}
	cancel()
	if _, err := s.Get(ctx, []byte("k"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with its context cancelled = %v, want context.Canceled", err)
	}
	if _, _, err := s.Scan(ctx, nil, nil, 10, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with its context cancelled = %v, want context.Canceled", err)
	}
}
