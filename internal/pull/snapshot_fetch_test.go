package pull_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

// recordingLoader is a SnapshotLoader built from function fields that
// records what it was given.
type recordingLoader struct {
	begin func(h wire.SnapshotHeader) error
	add   func(n int, rec argent.Item) error

	header  wire.SnapshotHeader
	keys    []string
	trailer uint64
	ended   bool
}

var _ pull.SnapshotLoader = (*recordingLoader)(nil)

func (l *recordingLoader) Begin(h wire.SnapshotHeader) error {
	l.header = h
	if l.begin != nil {
		return l.begin(h)
	}
	return nil
}

func (l *recordingLoader) Add(rec argent.Item) error {
	if l.add != nil {
		if err := l.add(len(l.keys), rec); err != nil {
			return err
		}
	}
	l.keys = append(l.keys, string(rec.Key))
	return nil
}

func (l *recordingLoader) End(records uint64) error {
	l.trailer, l.ended = records, true
	if records != uint64(len(l.keys)) {
		return fmt.Errorf("%w: trailer says %d records, got %d", argent.ErrCorruption, records, len(l.keys))
	}
	return nil
}

// FetchSnapshot streams a snapshot into a loader, checking its frames:
// the loader sees the header, the records in key order and the trailer;
// its refusal passes through as it is; a bad record or frame is counted as
// corruption; a stalled stream is given up.
func TestFollower_FetchSnapshot(t *testing.T) {
	refused := fmt.Errorf("%w: not this one", pull.ErrRefused)
	for _, tc := range []struct {
		name        string
		fault       pull.Fault // for the snapshot request, if Kind is set
		loader      recordingLoader
		after       string
		wantErr     error  // errors.Is; nil: success
		wantErrText string // contained in the error, if set
		wantKeys    int    // records the loader took; -1: not checked (a fault cuts a chunk)
		wantCorrupt float64
		wantCounted float64 // argent_snapshot_records_received_total; -1: not checked
	}{
		{name: "Whole", wantKeys: 60, wantCounted: 60},
		{name: "After", after: "k/029", wantKeys: 30, wantCounted: 30},
		{name: "BeginRefuses", loader: recordingLoader{begin: func(wire.SnapshotHeader) error { return refused }},
			wantErr: pull.ErrRefused},
		{name: "AddFails", loader: recordingLoader{add: func(n int, _ argent.Item) error {
			if n == 4 {
				return fmt.Errorf("%w: bad record", argent.ErrCorruption)
			}
			return nil
		}}, wantErr: argent.ErrCorruption, wantKeys: 4, wantCorrupt: 1},
		{name: "CorruptChunk", fault: pull.Fault{Kind: pull.FaultCorrupt, After: 2},
			wantErr: argent.ErrCorruption, wantKeys: -1, wantCorrupt: 1, wantCounted: -1},
		{name: "Cut", fault: pull.Fault{Kind: pull.FaultCut, After: 2},
			wantErr: pull.ErrInmemCut, wantKeys: -1, wantCounted: -1},
		{name: "Stall", fault: pull.Fault{Kind: pull.FaultStall, After: 2},
			wantErrText: "pull: upstream stalled", wantKeys: -1, wantCounted: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			r.Write(t, "k", 60)
			addr := n.Serve("root", r.Store, pull.ServerConfig{SnapshotChunk: 256})
			if tc.fault.Kind != 0 {
				tc.fault.Request = pull.SnapshotRequest
				n.Inmem.Inject(addr, tc.fault)
			}
			reg := prometheus.NewRegistry()
			f := pull.NewFollower(pull.FollowerConfig{Target: &storeTarget{s: pulltest.NewStore(t, kv.Options{})},
				NodeID: "child", Upstreams: []string{addr}, Transport: n.Transport, StallTimeout: pulltest.Stall,
				Metrics: pull.NewMetrics(reg)})
			l := &tc.loader
			var after []byte
			if tc.after != "" {
				after = []byte(tc.after)
			}
			err := f.FetchSnapshot(context.Background(), addr, after, l)

			switch {
			case tc.wantErr == nil && tc.wantErrText == "":
				if err != nil {
					t.Fatalf("FetchSnapshot: %v", err)
				}
				if !l.ended || l.trailer != uint64(tc.wantKeys) {
					t.Errorf("trailer: ended %v with %d records, want %d", l.ended, l.trailer, tc.wantKeys)
				}
				if st := r.State(); l.header.Index != st.Index || l.header.Chain != st.Chain || l.header.Dataset != r.Dataset() {
					t.Errorf("header %+v, want the root's state at %d", l.header, st.Index)
				}
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("FetchSnapshot: got %v, want %v", err, tc.wantErr)
			case tc.wantErrText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrText)):
				t.Fatalf("FetchSnapshot: got %v, want %q", err, tc.wantErrText)
			}
			if tc.wantErr == pull.ErrRefused && err != refused {
				t.Errorf("Begin's error was changed: got %v, want it as it was", err)
			}
			if tc.wantKeys >= 0 && len(l.keys) != tc.wantKeys {
				t.Errorf("loader took %d records, want %d", len(l.keys), tc.wantKeys)
			}
			for i := 1; i < len(l.keys); i++ {
				if l.keys[i-1] >= l.keys[i] || (tc.after != "" && l.keys[0] <= tc.after) {
					t.Fatalf("records out of order or not after %q: %q", tc.after, l.keys)
				}
			}
			if got := pulltest.Metric(t, reg, "argent_corrupt_frames_total"); got != tc.wantCorrupt {
				t.Errorf("corrupt frames = %v, want %v", got, tc.wantCorrupt)
			}
			if tc.wantCounted >= 0 {
				if got := pulltest.Metric(t, reg, "argent_snapshot_records_received_total"); got != tc.wantCounted {
					t.Errorf("records counted = %v, want %v", got, tc.wantCounted)
				}
			}
			wantLoaded := 0.0
			if err == nil {
				wantLoaded = 1
			}
			if got := pulltest.Metric(t, reg, "argent_snapshots_loaded_total"); got != wantLoaded {
				t.Errorf("snapshots loaded = %v, want %v", got, wantLoaded)
			}
		})
	}
}
