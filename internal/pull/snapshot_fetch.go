package pull

import (
	"context"
	"fmt"
	"io"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// SnapshotLoader takes in one snapshot transfer that a Follower streams
// from an upstream (FetchSnapshot). The split is the protocol's: pull
// opens the stream, checks every frame (CRC, type, order, trailer), counts
// bytes and records and watches for a stall; what the records go into,
// and whether a transfer may resume a cut one, is the Target's business
// (a replica's store, see internal/replica), so that pull knows nothing of
// kv's restore.
type SnapshotLoader interface {
	// Begin is called with the transfer's header (SnapBegin), before any
	// record. Its error ends the transfer and is returned as it is: wrap
	// ErrRefused when the upstream must not be followed.
	Begin(h wire.SnapshotHeader) error
	// Add takes the next record, in key order. The record aliases the
	// frame: copy what is kept. An error wrapping argent.ErrCorruption is
	// counted as a corrupt frame.
	Add(rec argent.Item) error
	// End is called with the trailer's record count of this transfer; it
	// checks the count and ends the load. Its errors count as Add's do.
	End(records uint64) error
}

// FetchSnapshot streams a snapshot of up's live keys into l: all of them
// when after is empty, else those after that key (a cut load resuming).
// It is how a Target's Bootstrap gets a snapshot: over the Follower's
// transport, as this child, under the same stall watchdog and frame checks
// as a log stream. It returns nil once l.End accepted the transfer.
func (f *Follower) FetchSnapshot(ctx context.Context, up string, after []byte, l SnapshotLoader) error {
	stm, err := f.open(ctx, func(ctx context.Context) (io.ReadCloser, error) {
		return f.cfg.Transport.OpenSnapshot(ctx, up, after, f.child())
	})
	if err != nil {
		return err
	}
	defer stm.stop()
	rctx := stm.ctx
	r, payload, err := f.firstFrame(rctx, stm.body, wire.FrameSnapBegin)
	if err != nil {
		return err
	}
	h, err := wire.DecodeSnapshotHeader(payload)
	if err != nil {
		return f.countCorrupt(err)
	}
	if err := l.Begin(h); err != nil {
		return err
	}
	for {
		typ, payload, err := r.ReadFrame()
		if err != nil {
			return f.countCorrupt(readErr(rctx, fmt.Errorf("pull: read snapshot: %w", err)))
		}
		stm.alive()
		f.cfg.Metrics.BytesReceived.Add(float64(len(payload) + wire.HeaderSize))
		switch typ {
		case wire.FrameSnapChunk:
			n := 0 // records l took from this chunk
			if err := wire.DecodeSnapshotChunk(payload, func(rec argent.Item) error {
				if err := l.Add(rec); err != nil {
					return err
				}
				n++
				return nil
			}); err != nil {
				return f.countCorrupt(err)
			}
			f.cfg.Metrics.SnapshotRecords.Add(float64(n))
		case wire.FrameSnapEnd:
			t, err := wire.DecodeSnapshotTrailer(payload)
			if err != nil {
				return f.countCorrupt(err)
			}
			if err := l.End(t.Records); err != nil {
				return f.countCorrupt(err)
			}
			f.cfg.Metrics.SnapshotsLoaded.Inc()
			return nil
		default:
			return f.countCorrupt(fmt.Errorf("%w: unexpected frame type %d in snapshot", argent.ErrCorruption, typ))
		}
	}
}
