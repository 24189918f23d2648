package pull_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

// The fuzz targets below feed arbitrary bytes to the child's side of the
// protocol as a parent's stream, through the Transport seam, into a real
// store. Each input is checked against an independent reading of the same
// bytes (judgeLog, judgeSnapshot): the child applies exactly what passed
// the frame checksum, the decoders and the index and chain checks, never
// more, and ends with the error class that the first fault calls for.
// Their seeds (streams a Server sent, and damaged copies) run in every
// `go test`. To fuzz:
//
//	go test -run '^$' -fuzz FuzzFollowStream -fuzztime 2m ./internal/pull/
//	go test -run '^$' -fuzz FuzzFetchSnapshot -fuzztime 2m ./internal/pull/

// fuzzChild is the fuzzed child's node ID; a Hello naming it is refused.
const fuzzChild = "child"

// fuzzDeadline bounds one input. A stream of a few KiB is read in
// milliseconds: an input still running at the deadline hangs.
const fuzzDeadline = 10 * time.Second

func FuzzFollowStream(f *testing.F) {
	for _, s := range logSeeds(f) {
		f.Add(s, uint8(255))
		f.Add(s, uint8(0)) // one byte per read
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		s, fl, reg := fuzzFollower(t, bytesTransport{log: stream, chunk: int(chunk) + 1})
		err := runBounded(t, len(stream), func(ctx context.Context) error { return fl.FollowOnce(ctx, "parent") })
		v := judgeLog(stream)

		if got := classify(err); got != v.class {
			t.Fatalf("stream ended with %q (%v), want %q", got, err, v.class)
		}
		checkCorruptCount(t, reg, v.class)
		st := s.State()
		if int(st.Index) > len(v.entries) {
			t.Fatalf("applied index %d, but only %d entries passed the checks", st.Index, len(v.entries))
		}
		if v.whole && int(st.Index) != len(v.entries) {
			t.Fatalf("applied index %d, want all %d entries that passed the checks", st.Index, len(v.entries))
		}
		want := argent.State{}
		model := map[string]string{}
		for _, e := range v.entries[:st.Index] {
			want = argent.State{Index: e.Index, Time: e.Time, Chain: e.Chain}
			applyOps(model, e.Ops)
		}
		if st != want {
			t.Fatalf("store state %+v, want %+v", st, want)
		}
		checkContents(t, s, model)
	})
}

func FuzzFetchSnapshot(f *testing.F) {
	for _, s := range snapshotSeeds(f) {
		f.Add(s, uint8(255))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		s, fl, reg := fuzzFollower(t, bytesTransport{snapshot: stream, chunk: int(chunk) + 1})
		l := &storeLoader{s: s}
		err := runBounded(t, len(stream), func(ctx context.Context) error {
			defer l.abort()
			return fl.FetchSnapshot(ctx, "parent", nil, l)
		})
		v := judgeSnapshot(stream)

		if got := classify(err); got != v.class {
			t.Fatalf("snapshot ended with %q (%v), want %q", got, err, v.class)
		}
		checkCorruptCount(t, reg, v.class)
		if v.class != "ok" {
			// Whatever the load took in before the fault, nothing of it is
			// served: the store is still empty, or loading.
			if s.Applied() != 0 || (l.res != nil && !s.Restoring()) {
				t.Fatalf("after a refused snapshot the store serves index %d (restoring %v)", s.Applied(), s.Restoring())
			}
			return
		}
		h := v.header
		if st := s.State(); st != (argent.State{Index: h.Index, Time: h.Time, Chain: h.Chain}) || s.Restoring() {
			t.Fatalf("store state %+v (restoring %v), want the snapshot's %d", st, s.Restoring(), h.Index)
		}
		checkContents(t, s, v.items)
	})
}

// fuzzFollower returns a new store and the Follower of the child
// fuzzChild into it over tr, with the registry of the Follower's metrics.
func fuzzFollower(t *testing.T, tr pull.Transport) (*kv.Store, *pull.Follower, *prometheus.Registry) {
	s := pulltest.NewStore(t, kv.Options{})
	reg := prometheus.NewRegistry()
	fl := pull.NewFollower(pull.FollowerConfig{
		Target: &storeTarget{s: s}, NodeID: fuzzChild, Upstreams: []string{"parent"},
		Transport: tr, StallTimeout: fuzzDeadline, Metrics: pull.NewMetrics(reg),
	})
	return s, fl, reg
}

// runBounded runs fn with a context that ends at fuzzDeadline and returns
// its error; it fails the test if fn is still running by then, or returns
// only because the context ended.
func runBounded(t *testing.T, n int, fn func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			t.Fatalf("a stream of %d bytes ran to its deadline: %v", n, err)
		}
		return err
	case <-time.After(fuzzDeadline + 5*time.Second):
		t.Fatalf("a stream of %d bytes is still being read %v after its deadline", n, 5*time.Second)
		return nil
	}
}

// classify names how a stream ended: the reason Run counts it under, with
// "error" split into what a parent may end a stream with.
func classify(err error) string {
	if err == nil {
		return "ok"
	}
	switch r := pull.Reason(err); {
	case r != "error":
		return r
	case pull.IsTooOld(err):
		return "too-old"
	case errors.Is(err, io.EOF):
		return "end"
	case strings.HasPrefix(err.Error(), "pull: upstream error: "):
		return "upstream-error"
	}
	return "unclassified"
}

// checkCorruptCount checks that the corrupt frames counter moved for a
// corruption only, and once.
func checkCorruptCount(t *testing.T, reg *prometheus.Registry, class string) {
	t.Helper()
	want := 0.0
	if class == "corruption" {
		want = 1
	}
	if got := pulltest.Metric(t, reg, "argent_corrupt_frames_total"); got != want {
		t.Fatalf("argent_corrupt_frames_total = %v after a stream that ended with %q, want %v", got, class, want)
	}
}

// checkContents compares the keys s serves at its applied index with want.
func checkContents(t *testing.T, s *kv.Store, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	if s.Applied() > 0 {
		items, _, err := s.Scan(context.Background(), nil, nil, 1<<20, s.Applied())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range items {
			got[string(it.Key)] = string(it.Value.Value)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("store holds %q, want %q", got, want)
	}
}

// applyOps applies ops to a map of the live keys, as a store does.
func applyOps(m map[string]string, ops []argent.Op) {
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut:
			m[string(op.Key)] = string(op.Value)
		case argent.OpDelete:
			delete(m, string(op.Key))
		case argent.OpDeletePrefix:
			maps.DeleteFunc(m, func(k, _ string) bool { return strings.HasPrefix(k, string(op.Key)) })
		}
	}
}

// logVerdict is what a correct child makes of a log stream.
type logVerdict struct {
	// entries passed every check, in order: they may be applied.
	entries []argent.Entry
	// whole is false when an entry failed the index, chain or op check: the
	// uncommitted group it came in is dropped with it, so a prefix of
	// entries is applied. Otherwise all of them are.
	whole bool
	class string // how the stream ends (see classify)
}

// judgeLog reads a log stream as the protocol defines it: Hello first,
// then entries, each the next index with the chain hash that follows from
// the one before, and heartbeats; TooOld or an error frame ends it.
func judgeLog(b []byte) logVerdict {
	v := logVerdict{whole: true}
	tip := argent.State{}
	v.class = eachFrame(b, func(first bool, typ wire.FrameType, payload []byte) string {
		if first {
			h, err := wire.DecodeHello(payload)
			switch {
			case typ != wire.FrameHello || err != nil:
				return "corruption"
			case h.NodeID == fuzzChild:
				return "refused"
			}
			return ""
		}
		var err error
		switch typ {
		case wire.FrameEntry:
			var e argent.Entry
			if e, err = wire.DecodeEntry(payload); err != nil {
				break
			}
			switch {
			case e.Index != tip.Index+1:
				v.whole = false
				return "corruption"
			case wire.NextChain(tip.Chain, &e) != e.Chain:
				v.whole = false
				return "refused"
			case !knownOps(e.Ops):
				v.whole = false
				return "corruption"
			}
			tip = argent.State{Index: e.Index, Time: e.Time, Chain: e.Chain}
			v.entries = append(v.entries, e)
		case wire.FrameHeartbeat:
			_, err = wire.DecodeHeartbeat(payload)
		case wire.FrameTooOld:
			if _, err = wire.DecodeTooOld(payload); err == nil {
				return "too-old"
			}
		case wire.FrameError:
			return "upstream-error"
		default:
			err = argent.ErrCorruption
		}
		if err != nil {
			return "corruption"
		}
		return ""
	})
	return v
}

func knownOps(ops []argent.Op) bool {
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut, argent.OpDelete, argent.OpDeletePrefix:
		default:
			return false
		}
	}
	return true
}

// snapshotVerdict is what a correct child makes of a snapshot stream.
type snapshotVerdict struct {
	header wire.SnapshotHeader
	items  map[string]string // the records, when class is "ok"
	class  string
}

// judgeSnapshot reads a snapshot stream as the protocol defines it:
// SnapBegin, chunks of records with keys of at least one byte in strictly
// increasing order, each with a mod index from 1 to the snapshot's, and
// SnapEnd with their count.
// Bytes after SnapEnd are not read.
func judgeSnapshot(b []byte) snapshotVerdict {
	v := snapshotVerdict{items: map[string]string{}}
	var (
		last    []byte
		records uint64
	)
	v.class = eachFrame(b, func(first bool, typ wire.FrameType, payload []byte) string {
		var err error
		switch {
		case first:
			if typ != wire.FrameSnapBegin {
				return "corruption"
			}
			v.header, err = wire.DecodeSnapshotHeader(payload)
		case typ == wire.FrameSnapChunk:
			err = wire.DecodeSnapshotChunk(payload, func(it argent.Item) error {
				if len(it.Key) == 0 || it.ModIndex == 0 || it.ModIndex > v.header.Index || bytes.Compare(it.Key, last) <= 0 {
					return argent.ErrCorruption
				}
				last = append(last[:0], it.Key...)
				records++
				v.items[string(it.Key)] = string(it.Value.Value)
				return nil
			})
		case typ == wire.FrameSnapEnd:
			if tr, err := wire.DecodeSnapshotTrailer(payload); err == nil && tr.Records == records {
				return "ok"
			}
			return "corruption"
		default:
			return "corruption"
		}
		if err != nil {
			return "corruption"
		}
		return ""
	})
	return v
}

// eachFrame calls fn with each sound frame of the stream b in turn, the
// first one marked, until fn returns the class that ends the stream, and
// returns it; or, when b has no further sound frame, nextFrame's class.
func eachFrame(b []byte, fn func(first bool, typ wire.FrameType, payload []byte) string) string {
	for first := true; ; first = false {
		typ, payload, n, class := nextFrame(b)
		if class != "" {
			return class
		}
		b = b[n:]
		if class := fn(first, typ, payload); class != "" {
			return class
		}
	}
}

// nextFrame parses the frame at the start of b. When there is none, class
// says why: "end" (no bytes left), "cut" (b ends inside a frame whose
// header is sound) or "corruption".
func nextFrame(b []byte) (typ wire.FrameType, payload []byte, n int, class string) {
	if len(b) == 0 {
		return 0, nil, 0, "end"
	}
	typ, payload, n, err := wire.ParseFrame(b, wire.DefaultMaxFrame)
	if err == nil {
		return typ, payload, n, ""
	}
	if len(b) < wire.HeaderSize {
		return 0, nil, 0, "cut"
	}
	size := binary.BigEndian.Uint32(b[0:4])
	sound := wire.Checksum(b[0:9]) == binary.BigEndian.Uint32(b[9:13]) && size <= wire.DefaultMaxFrame
	if sound && uint64(len(b)-wire.HeaderSize) < uint64(size) {
		return 0, nil, 0, "cut"
	}
	return 0, nil, 0, "corruption"
}

// bytesTransport is a parent that answers every log request with the
// bytes log and every snapshot request with snapshot, at most chunk bytes
// a read, and then ends the stream: whatever a damaged link or a hostile
// parent could deliver.
type bytesTransport struct {
	log, snapshot []byte
	chunk         int
}

var _ pull.Transport = bytesTransport{}

func (tr bytesTransport) OpenLog(ctx context.Context, _ string, _ argent.Index, _ pull.Child) (io.ReadCloser, error) {
	return &chunkReader{ctx: ctx, b: tr.log, chunk: tr.chunk}, nil
}

func (tr bytesTransport) OpenSnapshot(ctx context.Context, _ string, _ []byte, _ pull.Child) (io.ReadCloser, error) {
	return &chunkReader{ctx: ctx, b: tr.snapshot, chunk: tr.chunk}, nil
}

func (tr bytesTransport) Probe(context.Context, string) (pull.ParentStatus, error) {
	return pull.ParentStatus{NodeID: "parent"}, nil
}

// chunkReader reads b, at most chunk bytes at a time. Like a transport's
// stream, it fails once its context ends.
type chunkReader struct {
	ctx   context.Context
	b     []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

// frame is one frame of a captured stream.
type frame struct {
	typ     wire.FrameType
	payload []byte
}

func join(fs ...frame) []byte {
	var b []byte
	for _, fr := range fs {
		b = wire.AppendFrame(b, fr.typ, fr.payload)
	}
	return b
}

// capture reads the frames a Server sends on rc until done says it has
// enough of them or the stream ends, then closes rc.
func capture(tb testing.TB, rc io.ReadCloser, done func(fs []frame) bool) []frame {
	tb.Helper()
	defer rc.Close()
	r := wire.NewReader(rc, wire.DefaultMaxFrame)
	var fs []frame
	for !done(fs) {
		typ, payload, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("capture a stream: %v", err)
		}
		fs = append(fs, frame{typ, bytes.Clone(payload)})
	}
	return fs
}

// count returns how many of fs are of type typ.
func count(fs []frame, typ wire.FrameType) int {
	n := 0
	for _, fr := range fs {
		if fr.typ == typ {
			n++
		}
	}
	return n
}

// fuzzDataset is the seeds' dataset, so that stored inputs stay of one.
var fuzzDataset = argent.DatasetID{0xa7, 0x9e, 0x47}

// logSeeds returns log streams a Server sent (batches with heartbeats, an
// idle stream, a too-old answer), streams of frames a Server never sends
// but whose checksums hold (an entry off the chain, a gap, a Hello from
// the child itself), and cut and bit-flipped copies.
func logSeeds(tb testing.TB) [][]byte {
	n := pulltest.NewNetwork(tb, "inmem")
	r := pulltest.NewRoot(tb, kv.Options{}, fuzzDataset)
	idle := n.Serve("idle", r.Store, pull.ServerConfig{})
	quiet := openLog(tb, n, idle, func(fs []frame) bool { return count(fs, wire.FrameHeartbeat) == 2 })
	r.Write(tb, "k", 4)
	addr := n.Serve("parent", r.Store, pull.ServerConfig{})
	live := openLog(tb, n, addr, func(fs []frame) bool {
		return count(fs, wire.FrameEntry) == 4 && count(fs, wire.FrameHeartbeat) >= 2
	})

	old := pulltest.NewRoot(tb, kv.Options{LogBytes: 1}, fuzzDataset)
	old.Write(tb, "gone", 3)
	pulltest.TrimAll(tb, old.Store)
	tooOld := openLog(tb, n, n.Serve("old", old.Store, pull.ServerConfig{}), func([]frame) bool { return false })

	// An entry of the next index with deletes, encoded as a Server does.
	var last argent.Entry
	for _, fr := range live {
		if fr.typ == wire.FrameEntry {
			e, err := wire.DecodeEntry(fr.payload)
			if err != nil {
				tb.Fatalf("captured entry: %v", err)
			}
			last = e
		}
	}
	dels := argent.Entry{Index: last.Index + 1, Time: last.Time + 1, Ops: []argent.Op{
		{Type: argent.OpDelete, Key: []byte("k/000")}, {Type: argent.OpDeletePrefix, Key: []byte("k/00")},
		{Type: argent.OpPut, Key: []byte("k/x"), Value: []byte("after")},
	}}
	dels.Chain = wire.NextChain(last.Chain, &dels)
	full := append(append([]frame{}, live...), frame{wire.FrameEntry, wire.AppendEntry(nil, &dels)})

	// The same entry with another value but the chain hash of the first:
	// its checksum holds, its chain does not.
	forged := dels
	forged.Ops = []argent.Op{{Type: argent.OpPut, Key: []byte("k/x"), Value: []byte("forged")}}
	offChain := append(append([]frame{}, live...), frame{wire.FrameEntry, wire.AppendEntry(nil, &forged)})

	var gap, dup []frame // the second entry left out; the first sent twice
	seen := 0
	for _, fr := range live {
		if fr.typ == wire.FrameEntry {
			seen++
			if seen == 1 {
				dup = append(dup, fr)
			}
			if seen == 2 {
				dup = append(dup, fr)
				continue
			}
		}
		gap = append(gap, fr)
		dup = append(dup, fr)
	}
	var selfHello []frame
	if h, err := wire.DecodeHello(live[0].payload); err == nil {
		h.NodeID = fuzzChild
		selfHello = append([]frame{{wire.FrameHello, h.Append(nil)}}, live[1:]...)
	}

	valid := [][]byte{join(quiet...), join(full...), join(tooOld...)}
	seeds := append([][]byte{}, valid...)
	seeds = append(seeds,
		join(offChain...), join(gap...), join(dup...), join(selfHello...),
		join(live[1:]...), // no Hello
		join(append(append([]frame{}, live...), frame{wire.FrameError, []byte("shutting down")})...),
		join(append(append([]frame{}, live[:2]...), frame{wire.FrameSnapChunk, []byte{wire.FormatVersion}})...),
		nil,
	)
	for _, b := range valid {
		seeds = append(seeds, damaged(b)...)
	}
	return seeds
}

// snapshotSeeds returns a snapshot a Server sent in several chunks, the
// same with a wrong record count, and cut and bit-flipped copies.
func snapshotSeeds(tb testing.TB) [][]byte {
	n := pulltest.NewNetwork(tb, "inmem")
	r := pulltest.NewRoot(tb, kv.Options{}, fuzzDataset)
	r.Write(tb, "s", 6)
	addr := n.Serve("parent", r.Store, pull.ServerConfig{SnapshotChunk: 24})
	rc, err := n.Transport.OpenSnapshot(context.Background(), addr, nil, pull.Child{NodeID: fuzzChild})
	if err != nil {
		tb.Fatalf("open snapshot: %v", err)
	}
	snap := capture(tb, rc, func([]frame) bool { return false })
	if len(snap) < 4 || snap[len(snap)-1].typ != wire.FrameSnapEnd {
		tb.Fatalf("captured snapshot has %d frames", len(snap))
	}
	valid := join(snap...)
	end := snap[len(snap)-1]
	miscount := append(append([]frame{}, snap[:len(snap)-1]...), frame{end.typ, (&wire.SnapshotTrailer{Records: 5}).Append(nil)})
	swapped := append([]frame{}, snap...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	seeds := [][]byte{valid, join(miscount...), join(swapped...), join(snap[:2]...), nil}
	return append(seeds, damaged(valid)...)
}

// openLog opens the log of the parent at addr from index 1 and captures
// its frames until done.
func openLog(tb testing.TB, n *pulltest.Network, addr string, done func([]frame) bool) []frame {
	tb.Helper()
	rc, err := n.Transport.OpenLog(context.Background(), addr, 1, pull.Child{NodeID: fuzzChild})
	if err != nil {
		tb.Fatalf("open log: %v", err)
	}
	return capture(tb, rc, done)
}

// damaged returns copies of a valid stream cut inside its header and
// inside and after its frames, and copies with one bit flipped in a
// header's length, type and checksum, and in a payload.
func damaged(b []byte) [][]byte {
	var out [][]byte
	for off := 0; off < len(b); {
		_, payload, n, err := wire.ParseFrame(b[off:], wire.DefaultMaxFrame)
		if err != nil {
			break
		}
		for _, cut := range []int{off + 5, off + wire.HeaderSize + len(payload)/2, off + n} {
			if cut < len(b) {
				out = append(out, bytes.Clone(b[:cut]))
			}
		}
		for _, pos := range []int{off + 3, off + 8, off + 12, off + n - 1} {
			c := bytes.Clone(b)
			c[pos] ^= 0x10
			out = append(out, c)
		}
		off += n
	}
	return out
}
