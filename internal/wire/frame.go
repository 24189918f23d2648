package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/argent-kv/argent"
)

// FrameType says what a frame's payload holds. The values are part of the
// wire format.
type FrameType uint8

// The frame types of the node-to-node streams.
const (
	FrameHello     FrameType = 1  // first frame of a log stream: Hello
	FrameEntry     FrameType = 2  // one committed entry: AppendEntry
	FrameHeartbeat FrameType = 3  // Heartbeat
	FrameTooOld    FrameType = 4  // TooOld: the asked index is gone, take a snapshot
	FrameError     FrameType = 5  // a UTF-8 message; the stream ends after it
	FrameSnapBegin FrameType = 10 // SnapshotHeader
	FrameSnapChunk FrameType = 11 // a chunk of snapshot records (AppendSnapshotRecord)
	FrameSnapEnd   FrameType = 12 // SnapshotTrailer

	// FrameRaftMessage is one Raft message between members of the root
	// group (internal/raftnet): a raftpb.Message in protobuf encoding.
	FrameRaftMessage FrameType = 20
)

// HeaderSize is the size of a frame header: payload length, payload
// checksum, type, header checksum.
const HeaderSize = 13

// putHeader fills hdr for a frame of type t carrying payload. The header
// has its own checksum so that a damaged length is caught before the reader
// waits for (or allocates) the bytes it claims.
func putHeader(hdr *[HeaderSize]byte, t FrameType, payload []byte) {
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	crc := crc32Update(0, []byte{byte(t)})
	crc = crc32Update(crc, payload)
	binary.BigEndian.PutUint32(hdr[4:8], crc)
	hdr[8] = byte(t)
	binary.BigEndian.PutUint32(hdr[9:13], Checksum(hdr[0:9]))
}

// checkHeader validates a header and returns the payload length.
func checkHeader(hdr []byte, max int) (int, error) {
	if got, want := Checksum(hdr[0:9]), binary.BigEndian.Uint32(hdr[9:13]); got != want {
		return 0, corrupt("frame header checksum %08x, want %08x", got, want)
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if uint64(n) > uint64(max) {
		return 0, corrupt("frame of %d bytes is over the limit of %d", n, max)
	}
	return int(n), nil
}

// checkPayload validates a payload against its header.
func checkPayload(hdr, payload []byte) error {
	crc := crc32Update(0, hdr[8:9])
	crc = crc32Update(crc, payload)
	if want := binary.BigEndian.Uint32(hdr[4:8]); crc != want {
		return corrupt("frame checksum %08x, want %08x", crc, want)
	}
	return nil
}

// DefaultMaxFrame bounds a frame's payload: one 64 MiB batch plus room for
// its encoding overhead.
const DefaultMaxFrame = 80 << 20

// AppendFrame appends a frame with the given type and payload to dst.
func AppendFrame(dst []byte, t FrameType, payload []byte) []byte {
	var hdr [HeaderSize]byte
	putHeader(&hdr, t, payload)
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// Writer writes frames to a buffered stream. Call Flush to send them.
type Writer struct {
	w   *bufio.Writer
	hdr [HeaderSize]byte
}

// NewWriter returns a Writer that buffers frames for w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// WriteFrame buffers one frame.
func (w *Writer) WriteFrame(t FrameType, payload []byte) error {
	putHeader(&w.hdr, t, payload)
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := w.w.Write(payload); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// Flush sends buffered frames.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("flush frames: %w", err)
	}
	return nil
}

// Buffered returns the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return w.w.Buffered() }

// Reader reads frames from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader that refuses payloads larger than max bytes.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadFrame reads the next frame. The payload is valid until the next call.
// A bad length or checksum gives an error wrapping argent.ErrCorruption; a
// stream that ends inside a frame gives one wrapping io.ErrUnexpectedEOF and
// argent.ErrCorruption; a clean end between frames gives io.EOF.
func (r *Reader) ReadFrame() (FrameType, []byte, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated frame header: %w", argent.ErrCorruption, err)
		}
		return 0, nil, err
	}
	n, err := checkHeader(hdr[:], r.max)
	if err != nil {
		return 0, nil, err
	}
	payload, err := r.readPayload(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated frame: %w", argent.ErrCorruption, io.ErrUnexpectedEOF)
		}
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	if err := checkPayload(hdr[:], payload); err != nil {
		return 0, nil, err
	}
	return FrameType(hdr[8]), payload, nil
}

// growStep is how much of a large payload's buffer ReadFrame allocates
// ahead of the bytes that arrived.
const growStep = 1 << 20

// readPayload reads n bytes into r.buf. A buffer for a large payload grows
// as its bytes arrive, so that a header claiming the limit, from a peer
// that then sends nothing, costs little memory rather than the whole limit.
func (r *Reader) readPayload(n int) ([]byte, error) {
	if cap(r.buf) >= n || n <= growStep {
		if cap(r.buf) < n {
			r.buf = make([]byte, n)
		}
		_, err := io.ReadFull(r.r, r.buf[:n])
		return r.buf[:n], err
	}
	buf := r.buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(growStep, len(buf))))
		}
		m, err := io.ReadFull(r.r, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			r.buf = buf[:0]
			return nil, err
		}
	}
	r.buf = buf
	return buf, nil
}

// ParseFrame decodes one frame from the start of b, returning its type, its
// payload (aliasing b) and the number of bytes it used.
func ParseFrame(b []byte, max int) (FrameType, []byte, int, error) {
	if len(b) < HeaderSize {
		return 0, nil, 0, corrupt("truncated frame header")
	}
	n, err := checkHeader(b[:HeaderSize], max)
	if err != nil {
		return 0, nil, 0, err
	}
	if len(b)-HeaderSize < n {
		return 0, nil, 0, corrupt("truncated frame")
	}
	payload := b[HeaderSize : HeaderSize+n]
	if err := checkPayload(b[:HeaderSize], payload); err != nil {
		return 0, nil, 0, err
	}
	return FrameType(b[8]), payload, HeaderSize + n, nil
}

// Hello opens a log stream from parent to child.
type Hello struct {
	Dataset argent.DatasetID
	NodeID  string // the parent's node ID
	// Applied is the parent's applied index when the stream starts.
	Applied argent.Index
	// RootIndex and RootTime are the newest root index and its commit time
	// (Unix ns) the parent knows of.
	RootIndex argent.Index
	RootTime  int64
	// RootSent is the root's wall clock (Unix ns) when it last vouched for
	// RootIndex; see Heartbeat.
	RootSent int64
}

// Append appends the encoding of h to dst.
func (h *Hello) Append(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	dst = append(dst, h.Dataset[:]...)
	dst = appendBytes(dst, []byte(h.NodeID))
	dst = binary.AppendUvarint(dst, uint64(h.Applied))
	dst = binary.AppendUvarint(dst, uint64(h.RootIndex))
	dst = binary.AppendVarint(dst, h.RootTime)
	return binary.AppendVarint(dst, h.RootSent)
}

// DecodeHello decodes a Hello.
func DecodeHello(b []byte) (Hello, error) {
	var h Hello
	d := decoder{b: b}
	d.version("hello")
	copy(h.Dataset[:], d.bytes(len(h.Dataset)))
	h.NodeID = string(d.lenBytes())
	h.Applied = argent.Index(d.uvarint())
	h.RootIndex = argent.Index(d.uvarint())
	h.RootTime = d.varint()
	h.RootSent = d.varint()
	return h, d.finish("hello")
}

// Heartbeat tells a child that its parent is alive and how far the root is.
type Heartbeat struct {
	RootIndex argent.Index
	RootTime  int64 // commit time of RootIndex at the root, Unix ns
	Applied   argent.Index
	// RootSent is the root's wall clock (Unix ns) when it sent the heartbeat
	// this one descends from: the root sets it, replicas pass it on. A child
	// compares it with its own clock to see how stale its view of the root
	// is, even when a slow path delays entries and heartbeats alike.
	RootSent int64
}

// Append appends the encoding of h to dst.
func (h *Heartbeat) Append(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, uint64(h.RootIndex))
	dst = binary.AppendVarint(dst, h.RootTime)
	dst = binary.AppendUvarint(dst, uint64(h.Applied))
	return binary.AppendVarint(dst, h.RootSent)
}

// DecodeHeartbeat decodes a Heartbeat.
func DecodeHeartbeat(b []byte) (Heartbeat, error) {
	var h Heartbeat
	d := decoder{b: b}
	d.version("heartbeat")
	h.RootIndex = argent.Index(d.uvarint())
	h.RootTime = d.varint()
	h.Applied = argent.Index(d.uvarint())
	h.RootSent = d.varint()
	return h, d.finish("heartbeat")
}

// TooOld tells a child that the parent's log starts after the index the child
// asked for: the child must bootstrap from a snapshot.
type TooOld struct {
	FirstIndex argent.Index // the oldest index the parent can still send
}

// Append appends the encoding of t to dst.
func (t *TooOld) Append(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	return binary.AppendUvarint(dst, uint64(t.FirstIndex))
}

// DecodeTooOld decodes a TooOld.
func DecodeTooOld(b []byte) (TooOld, error) {
	var t TooOld
	d := decoder{b: b}
	d.version("too-old")
	t.FirstIndex = argent.Index(d.uvarint())
	return t, d.finish("too-old")
}

// SnapshotHeader starts a snapshot: the state of Dataset at Index.
type SnapshotHeader struct {
	Dataset argent.DatasetID
	Index   argent.Index
	Time    int64 // commit time of Index, Unix ns
	Chain   argent.Hash
	// Source is the sender's kv.Store.Source at Index: on a root group
	// member, the Raft index the state was applied from; else 0. It is
	// the last field, and a header from a sender that did not write it
	// decodes with 0.
	Source uint64
}

// Append appends the encoding of h to dst.
func (h *SnapshotHeader) Append(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	dst = append(dst, h.Dataset[:]...)
	dst = binary.AppendUvarint(dst, uint64(h.Index))
	dst = binary.AppendVarint(dst, h.Time)
	dst = append(dst, h.Chain[:]...)
	return binary.AppendUvarint(dst, h.Source)
}

// DecodeSnapshotHeader decodes a SnapshotHeader.
func DecodeSnapshotHeader(b []byte) (SnapshotHeader, error) {
	var h SnapshotHeader
	d := decoder{b: b}
	d.version("snapshot header")
	copy(h.Dataset[:], d.bytes(len(h.Dataset)))
	h.Index = argent.Index(d.uvarint())
	h.Time = d.varint()
	copy(h.Chain[:], d.bytes(len(h.Chain)))
	if d.err == nil && len(d.b) > 0 {
		h.Source = d.uvarint()
	}
	return h, d.finish("snapshot header")
}

// AppendSnapshotRecord appends the record of one live key of a snapshot,
// it, to a chunk payload: key, mod index, value. A chunk payload is
// FormatVersion followed by records.
func AppendSnapshotRecord(dst []byte, it *argent.Item) []byte {
	if len(dst) == 0 {
		dst = append(dst, FormatVersion)
	}
	dst = appendBytes(dst, it.Key)
	dst = binary.AppendUvarint(dst, uint64(it.ModIndex))
	return appendBytes(dst, it.Value.Value)
}

// DecodeSnapshotChunk calls fn for each record of a chunk payload, a live
// key with its value and mod index. Records alias b.
func DecodeSnapshotChunk(b []byte, fn func(it argent.Item) error) error {
	d := decoder{b: b}
	d.version("snapshot chunk")
	for d.err == nil && len(d.b) > 0 {
		var r argent.Item
		r.Key = d.lenBytes()
		r.ModIndex = argent.Index(d.uvarint())
		r.Value.Value = d.lenBytes()
		if d.err != nil {
			break
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if d.err != nil {
		return fmt.Errorf("decode snapshot chunk: %w", d.err)
	}
	return nil
}

// SnapshotTrailer ends a snapshot with the number of records sent, so a
// receiver can tell a complete snapshot from a cut one.
type SnapshotTrailer struct {
	Records uint64
}

// Append appends the encoding of t to dst.
func (t *SnapshotTrailer) Append(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	return binary.AppendUvarint(dst, t.Records)
}

// DecodeSnapshotTrailer decodes a SnapshotTrailer.
func DecodeSnapshotTrailer(b []byte) (SnapshotTrailer, error) {
	var t SnapshotTrailer
	d := decoder{b: b}
	d.version("snapshot trailer")
	t.Records = d.uvarint()
	return t, d.finish("snapshot trailer")
}

func (d *decoder) version(what string) {
	if v := d.byte(); d.err == nil && v != FormatVersion {
		d.err = corrupt("%s format version %d, want %d", what, v, FormatVersion)
	}
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = corrupt("%d trailing bytes after %s", len(d.b), what)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

func crc32Update(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }

// Buffered returns the number of bytes already read from the stream and
// waiting to be decoded: a follower uses it to tell whether more entries are
// at hand before it commits what it has.
func (r *Reader) Buffered() int { return r.r.Buffered() }
