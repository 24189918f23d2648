package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

type testFrame struct {
	name    string
	typ     wire.FrameType
	payload []byte
}

// testFrames returns frames of every type, with empty, small and large
// payloads (larger than the Reader's 64 KiB buffer).
func testFrames() []testFrame {
	e := testEntries[3].entry
	hello := wire.Hello{Dataset: datasetOf(1), NodeID: "n1", Applied: 3, RootIndex: 4, RootTime: 5}
	hb := wire.Heartbeat{RootIndex: 10, RootTime: 11, Applied: 9}
	tooOld := wire.TooOld{FirstIndex: 100}
	sh := wire.SnapshotHeader{Dataset: datasetOf(2), Index: 8, Time: 9, Chain: hashOf(1)}
	chunk := wire.AppendSnapshotRecord(nil, &argent.Item{Key: []byte("k"), Value: argent.Value{Value: []byte("v"), ModIndex: 2}})
	st := wire.SnapshotTrailer{Records: 1}
	return []testFrame{
		{name: "Hello", typ: wire.FrameHello, payload: hello.Append(nil)},
		{name: "Entry", typ: wire.FrameEntry, payload: wire.AppendEntry(nil, &e)},
		{name: "Heartbeat", typ: wire.FrameHeartbeat, payload: hb.Append(nil)},
		{name: "TooOld", typ: wire.FrameTooOld, payload: tooOld.Append(nil)},
		{name: "Error", typ: wire.FrameError, payload: []byte("argent: something broke")},
		{name: "EmptyError", typ: wire.FrameError, payload: nil},
		{name: "SnapBegin", typ: wire.FrameSnapBegin, payload: sh.Append(nil)},
		{name: "SnapChunk", typ: wire.FrameSnapChunk, payload: chunk},
		{name: "SnapEnd", typ: wire.FrameSnapEnd, payload: st.Append(nil)},
		{name: "Large", typ: wire.FrameEntry, payload: bytes.Repeat([]byte("0123456789abcdef"), 10000)},
	}
}

func TestFrame_RoundTrip(t *testing.T) {
	frames := testFrames()
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	var appended []byte
	for _, f := range frames {
		if err := w.WriteFrame(f.typ, f.payload); err != nil {
			t.Fatalf("WriteFrame %s: %v", f.name, err)
		}
		appended = wire.AppendFrame(appended, f.typ, f.payload)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if w.Buffered() != 0 {
		t.Fatalf("Buffered after Flush = %d, want 0", w.Buffered())
	}
	if !bytes.Equal(buf.Bytes(), appended) {
		t.Fatal("Writer and AppendFrame produce different bytes")
	}

	// ReadFrame, through a reader that returns one byte at a time.
	r := wire.NewReader(iotest.OneByteReader(bytes.NewReader(buf.Bytes())), wire.DefaultMaxFrame)
	for _, f := range frames {
		typ, payload, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("ReadFrame %s: %v", f.name, err)
		}
		if typ != f.typ || !bytes.Equal(payload, f.payload) {
			t.Fatalf("ReadFrame %s = type %d, %d bytes; want type %d, %d bytes", f.name, typ, len(payload), f.typ, len(f.payload))
		}
	}
	if _, _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("ReadFrame at the end: error = %v, want io.EOF", err)
	}

	// ParseFrame, walking the same bytes.
	b := appended
	for _, f := range frames {
		typ, payload, n, err := wire.ParseFrame(b, wire.DefaultMaxFrame)
		if err != nil {
			t.Fatalf("ParseFrame %s: %v", f.name, err)
		}
		if typ != f.typ || !bytes.Equal(payload, f.payload) || n != wire.HeaderSize+len(f.payload) {
			t.Fatalf("ParseFrame %s = type %d, %d bytes, used %d", f.name, typ, len(payload), n)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left after parsing every frame", len(b))
	}
}

func TestReader_MaxFrame(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 100)
	frame := wire.AppendFrame(nil, wire.FrameEntry, payload)
	tests := []struct {
		name string
		max  int
		ok   bool
	}{
		{name: "AtLimit", max: 100, ok: true},
		{name: "OverLimit", max: 99, ok: false},
		{name: "ZeroLimit", max: 0, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := wire.NewReader(bytes.NewReader(frame), tc.max).ReadFrame()
			_, got2, _, err2 := wire.ParseFrame(frame, tc.max)
			if tc.ok {
				if err != nil || err2 != nil || !bytes.Equal(got, payload) || !bytes.Equal(got2, payload) {
					t.Fatalf("ReadFrame error = %v, ParseFrame error = %v, want both to succeed", err, err2)
				}
				return
			}
			if !errors.Is(err, argent.ErrCorruption) || !errors.Is(err2, argent.ErrCorruption) {
				t.Fatalf("ReadFrame error = %v, ParseFrame error = %v, want ErrCorruption", err, err2)
			}
		})
	}
	// An empty payload is fine even with a zero limit.
	empty := wire.AppendFrame(nil, wire.FrameError, nil)
	if _, _, err := wire.NewReader(bytes.NewReader(empty), 0).ReadFrame(); err != nil {
		t.Fatalf("empty frame with limit 0: %v", err)
	}
}

func TestReader_ReusesBuffer(t *testing.T) {
	// The payload is valid only until the next call; a smaller frame after
	// a larger one must still read back exactly.
	var b []byte
	b = wire.AppendFrame(b, wire.FrameEntry, bytes.Repeat([]byte("a"), 1000))
	b = wire.AppendFrame(b, wire.FrameEntry, []byte("bb"))
	b = wire.AppendFrame(b, wire.FrameEntry, bytes.Repeat([]byte("c"), 5000))
	r := wire.NewReader(bytes.NewReader(b), 1<<20)
	for _, want := range []string{string(bytes.Repeat([]byte("a"), 1000)), "bb", string(bytes.Repeat([]byte("c"), 5000))} {
		_, p, err := r.ReadFrame()
		if err != nil || string(p) != want {
			t.Fatalf("ReadFrame = %d bytes, %v; want %d bytes", len(p), err, len(want))
		}
	}
}

// TestReadFrame_Damage flips every bit of some valid frames and cuts them at
// every length: each damaged frame must be refused with ErrCorruption, except
// that an empty stream is a clean io.EOF for ReadFrame.
func TestReadFrame_Damage(t *testing.T) {
	for _, f := range testFrames() {
		if len(f.payload) > 4096 {
			continue // the bit-flip loop is quadratic in the frame size
		}
		t.Run(f.name, func(t *testing.T) {
			frame := wire.AppendFrame(nil, f.typ, f.payload)
			// Leave room for a flipped length bit to stay under the limit.
			const max = 1 << 16
			damaged := make([]byte, len(frame))
			for bit := range len(frame) * 8 {
				copy(damaged, frame)
				damaged[bit/8] ^= 1 << (bit % 8)
				_, _, err := wire.NewReader(bytes.NewReader(damaged), max).ReadFrame()
				if !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("ReadFrame with bit %d flipped: error = %v, want ErrCorruption", bit, err)
				}
				_, _, _, err = wire.ParseFrame(damaged, max)
				if !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("ParseFrame with bit %d flipped: error = %v, want ErrCorruption", bit, err)
				}
				// The same with a valid frame after it: the damage must not
				// make the reader skip into the next frame.
				two := wire.AppendFrame(append([]byte(nil), damaged...), f.typ, f.payload)
				_, _, err = wire.NewReader(bytes.NewReader(two), max).ReadFrame()
				if !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("ReadFrame with bit %d flipped, frame after it: error = %v, want ErrCorruption", bit, err)
				}
			}
			for n := range len(frame) {
				cut := frame[:n]
				_, _, err := wire.NewReader(bytes.NewReader(cut), max).ReadFrame()
				if n == 0 {
					if err != io.EOF {
						t.Fatalf("ReadFrame of an empty stream: error = %v, want io.EOF", err)
					}
				} else if !errors.Is(err, argent.ErrCorruption) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadFrame cut at %d of %d bytes: error = %v, want ErrCorruption and io.ErrUnexpectedEOF", n, len(frame), err)
				}
				if _, _, _, err := wire.ParseFrame(cut, max); !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("ParseFrame cut at %d of %d bytes: error = %v, want ErrCorruption", n, len(frame), err)
				}
			}
		})
	}
}

func TestReadFrame_DamageInStream(t *testing.T) {
	frames := testFrames()
	var stream []byte
	var ends []int
	for _, f := range frames {
		stream = wire.AppendFrame(stream, f.typ, f.payload)
		ends = append(ends, len(stream))
	}
	// Damage one byte inside frame 4: frames 0-3 read, then corruption.
	start := ends[3]
	stream[start+wire.HeaderSize+1] ^= 0x40
	r := wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame)
	for i := range 4 {
		if _, p, err := r.ReadFrame(); err != nil || !bytes.Equal(p, frames[i].payload) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, _, err := r.ReadFrame(); !errors.Is(err, argent.ErrCorruption) {
		t.Fatalf("damaged frame: error = %v, want ErrCorruption", err)
	}
}

func TestReader_ReadError(t *testing.T) {
	boom := errors.New("boom")
	frame := wire.AppendFrame(nil, wire.FrameEntry, []byte("payload"))
	tests := []struct {
		name string
		r    io.Reader
	}{
		{name: "InHeader", r: io.MultiReader(bytes.NewReader(frame[:4]), iotest.ErrReader(boom))},
		{name: "InPayload", r: io.MultiReader(bytes.NewReader(frame[:12]), iotest.ErrReader(boom))},
		{name: "AtStart", r: iotest.ErrReader(boom)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := wire.NewReader(tc.r, 1<<20).ReadFrame()
			if !errors.Is(err, boom) {
				t.Fatalf("error = %v, want boom", err)
			}
			if errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("error = %v: a read error is not corruption", err)
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriter_Error(t *testing.T) {
	boom := errors.New("boom")
	w := wire.NewWriter(failWriter{boom})
	if err := w.WriteFrame(wire.FrameHeartbeat, []byte("small")); err != nil {
		t.Fatalf("a buffered WriteFrame failed early: %v", err)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush error = %v, want boom", err)
	}
	// A payload larger than the buffer goes straight to the stream.
	w = wire.NewWriter(failWriter{boom})
	if err := w.WriteFrame(wire.FrameEntry, make([]byte, 200<<10)); !errors.Is(err, boom) {
		t.Fatalf("large WriteFrame error = %v, want boom", err)
	}
}

// TestReader_LargeClaimAllocatesAsBytesArrive checks that a frame header
// claiming the limit costs memory in proportion to the bytes that follow
// it, not the claim, and that large frames still read whole.
func TestReader_LargeClaimAllocatesAsBytesArrive(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+5) // over 3 MiB: several steps
	for _, tc := range []struct {
		name     string
		stream   []byte
		maxAlloc uint64
		wantErr  bool
	}{
		{"TruncatedClaim", append(claimHeader(wire.DefaultMaxFrame), make([]byte, 100)...), 4 << 20, true},
		{"Large", wire.AppendFrame(nil, wire.FrameEntry, big), 4*uint64(len(big)) + 1<<20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			typ, payload, err := wire.NewReader(bytes.NewReader(tc.stream), wire.DefaultMaxFrame).ReadFrame()
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > tc.maxAlloc {
				t.Errorf("allocated %d bytes, want at most %d", got, tc.maxAlloc)
			}
			if tc.wantErr {
				if !errors.Is(err, argent.ErrCorruption) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want a truncated frame", err)
				}
				return
			}
			if err != nil || typ != wire.FrameEntry || !bytes.Equal(payload, big) {
				t.Fatalf("read type %d, %d bytes, %v", typ, len(payload), err)
			}
		})
	}
}

// claimHeader is a valid frame header announcing n bytes of payload.
func claimHeader(n uint32) []byte {
	hdr := binary.BigEndian.AppendUint32(nil, n)
	hdr = binary.BigEndian.AppendUint32(hdr, 0) // payload checksum: never reached
	hdr = append(hdr, byte(wire.FrameEntry))
	return binary.BigEndian.AppendUint32(hdr, wire.Checksum(hdr))
}
