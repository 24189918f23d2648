package pull_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

// A parent's refusals read the same over both transports: the checks are
// the Server's, whatever carries the request.
func TestTransport_Refusals(t *testing.T) {
	other, err := argent.ParseDatasetID(strings.Repeat("ab", 16))
	if err != nil {
		t.Fatal(err)
	}
	type open func(tr pull.Transport, addr string) error
	logFrom := func(from argent.Index, c pull.Child) open {
		return func(tr pull.Transport, addr string) error {
			rc, err := tr.OpenLog(context.Background(), addr, from, c)
			if err == nil {
				rc.Close()
			}
			return err
		}
	}
	snapshot := func(c pull.Child) open {
		return func(tr pull.Transport, addr string) error {
			rc, err := tr.OpenSnapshot(context.Background(), addr, nil, c)
			if err == nil {
				rc.Close()
			}
			return err
		}
	}
	for _, tc := range []struct {
		name    string
		empty   bool // the parent has no data yet
		open    open
		wantErr string // "" for a stream
	}{
		{name: "Log", open: logFrom(1, pull.Child{NodeID: "c"})},
		{name: "Snapshot", open: snapshot(pull.Child{NodeID: "c"})},
		{name: "Itself", open: logFrom(1, pull.Child{NodeID: "parent"}),
			wantErr: "pull: upstream refused: pull: upstream answered 409: refusing to feed node parent its own log"},
		{name: "OtherDataset", open: snapshot(pull.Child{NodeID: "c", Dataset: other}),
			wantErr: "pull: upstream refused: pull: upstream answered 409: argent: dataset mismatch: child has " + other.String()},
		{name: "FromZero", open: logFrom(0, pull.Child{NodeID: "c"}),
			wantErr: "pull: upstream answered 400: from must be an index >= 1"},
		{name: "NoDataYet", empty: true, open: logFrom(1, pull.Child{NodeID: "c"}),
			wantErr: "pull: upstream answered 503: node has no data yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, kind := range pulltest.Transports {
				n := pulltest.NewNetwork(t, kind)
				s := pulltest.NewStore(t, kv.Options{})
				if !tc.empty {
					r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
					r.Write(t, "k", 3)
					s = r.Store
				}
				err := tc.open(n.Transport, n.Serve("parent", s, pull.ServerConfig{}))
				if err != nil {
					// Each parent has its own dataset ID.
					got[i] = strings.ReplaceAll(err.Error(), s.Dataset().String(), "DATASET")
				}
				if !strings.HasPrefix(got[i], tc.wantErr) || (tc.wantErr == "") != (err == nil) {
					t.Errorf("%s: got %q, want %q", kind, got[i], tc.wantErr)
				}
			}
			if got[0] != got[1] {
				t.Errorf("inmem and http differ:\n%s\n%s", got[0], got[1])
			}
		})
	}
}

// readFrames reads frames from rc until an error, and returns their types
// and the error.
func readFrames(rc io.Reader, max int) ([]wire.FrameType, error) {
	r := wire.NewReader(rc, wire.DefaultMaxFrame)
	var types []wire.FrameType
	for len(types) < max {
		typ, _, err := r.ReadFrame()
		if err != nil {
			return types, err
		}
		types = append(types, typ)
	}
	return types, nil
}

// Each injected fault does what it says, at the frame it says, once: the
// next stream of the same kind is whole.
func TestInmemTransport_Faults(t *testing.T) {
	hello, entry := wire.FrameHello, wire.FrameEntry
	for _, tc := range []struct {
		name      string
		fault     pull.Fault
		ctxLimit  time.Duration // cancels the request after this long; 0: never
		want      []wire.FrameType
		wantErrIs error
	}{
		{name: "Cut", fault: pull.Fault{Kind: pull.FaultCut, After: 3},
			want: []wire.FrameType{hello, entry, entry}, wantErrIs: pull.ErrInmemCut},
		{name: "Corrupt", fault: pull.Fault{Kind: pull.FaultCorrupt, After: 2},
			want: []wire.FrameType{hello, entry}, wantErrIs: argent.ErrCorruption},
		{name: "Stall", fault: pull.Fault{Kind: pull.FaultStall, After: 1}, ctxLimit: 50 * time.Millisecond,
			want: []wire.FrameType{hello}, wantErrIs: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pulltest.NewNetwork(t, "inmem")
			r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
			r.Write(t, "k", 5)
			addr := n.Serve("parent", r.Store, pull.ServerConfig{Heartbeat: time.Hour})
			n.Inmem.Inject(addr, tc.fault)

			ctx := context.Background()
			if tc.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxLimit)
				defer cancel()
			}
			rc, err := n.Transport.OpenLog(ctx, addr, 1, pull.Child{NodeID: "c"})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			got, err := readFrames(rc, 10)
			rc.Close()
			if !errors.Is(err, tc.wantErrIs) {
				t.Errorf("read error %v, want %v", err, tc.wantErrIs)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("frames %v, want %v", got, tc.want)
			}

			// The fault was used up: the next stream is whole (Hello, 5
			// entries, the heartbeat after the burst).
			rc, err = n.Transport.OpenLog(context.Background(), addr, 1, pull.Child{NodeID: "c"})
			if err != nil {
				t.Fatalf("open again: %v", err)
			}
			defer rc.Close()
			got, err = readFrames(rc, 7)
			if err != nil || len(got) != 7 || got[6] != wire.FrameHeartbeat {
				t.Errorf("second stream: frames %v, err %v; want hello, 5 entries, heartbeat", got, err)
			}
		})
	}
}

// A refusal injected for one kind of request leaves the others alone, and
// a probe can be refused or stalled too.
func TestInmemTransport_FaultKinds(t *testing.T) {
	n := pulltest.NewNetwork(t, "inmem")
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	r.Write(t, "k", 2)
	addr := n.Serve("parent", r.Store, pull.ServerConfig{})
	n.Inmem.Inject(addr, pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultRefuse, Status: 409, Message: "no"})
	n.Inmem.Inject(addr, pull.Fault{Request: pull.ProbeRequest, Kind: pull.FaultRefuse})
	n.Inmem.Inject(addr, pull.Fault{Request: pull.ProbeRequest, Kind: pull.FaultStall})

	rc, err := n.Transport.OpenLog(context.Background(), addr, 1, pull.Child{NodeID: "c"})
	if err != nil {
		t.Fatalf("log stream refused: %v", err)
	}
	rc.Close()
	if _, err := n.Transport.OpenSnapshot(context.Background(), addr, nil, pull.Child{NodeID: "c"}); err == nil ||
		err.Error() != "pull: upstream refused: pull: upstream answered 409: no" {
		t.Errorf("snapshot: got %v, want the injected 409", err)
	}
	if _, err := n.Transport.Probe(context.Background(), addr); err == nil || err.Error() != "status 503" {
		t.Errorf("first probe: got %v, want status 503", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := n.Transport.Probe(ctx, addr); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second probe: got %v, want a stall until the deadline", err)
	}
	st, err := n.Transport.Probe(context.Background(), addr)
	if err != nil || st.NodeID != "parent" || st.Applied != r.Applied() || st.Dataset != r.Dataset().String() {
		t.Errorf("third probe: got %+v, %v; want parent at %d", st, err, r.Applied())
	}
	n.Inmem.Unregister(addr)
	if _, err := n.Transport.Probe(context.Background(), addr); err == nil {
		t.Errorf("probe after Unregister: no error")
	}
}

func ExampleInmemTransport() {
	tr := pull.NewInmemTransport()
	// Make two faults for the next log stream to "root" and the next
	// snapshot transfer from it.
	tr.Inject("root", pull.Fault{Kind: pull.FaultCut, After: 10})
	tr.Inject("root", pull.Fault{Request: pull.SnapshotRequest, Kind: pull.FaultCorrupt, After: 1})
	_, err := tr.OpenLog(context.Background(), "root", 1, pull.Child{NodeID: "child"})
	fmt.Println(err)
	// Output: pull: connect: no in-memory node at root
}
