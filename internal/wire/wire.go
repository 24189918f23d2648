// Package wire encodes log entries and batches, and frames them for the
// network and for disk.
//
// Every encoding starts with a format version byte (FormatVersion). A frame is
//
//	uint32 length of payload (big endian)
//	uint32 CRC32C (Castagnoli) of the type byte and the payload
//	uint8  frame type
//	uint32 CRC32C of the nine bytes above, so a damaged length is caught
//	       before the reader waits for the bytes it claims
//	payload
//
// A reader refuses a frame whose length is over its limit or whose checksum
// does not match, with an error wrapping argent.ErrCorruption.
//
//	w := wire.NewWriter(conn)
//	w.WriteFrame(wire.FrameEntry, wire.AppendEntry(nil, &e))
//	r := wire.NewReader(conn, wire.DefaultMaxFrame)
//	typ, payload, err := r.ReadFrame()
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/argent-kv/argent"
)

// FormatVersion is the version of every encoding in this package. A decoder
// refuses other versions.
const FormatVersion byte = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32C of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", argent.ErrCorruption, fmt.Sprintf(format, args...))
}

// AppendEntry appends the encoding of e to dst.
func AppendEntry(dst []byte, e *argent.Entry) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, uint64(e.Index))
	dst = binary.AppendVarint(dst, e.Time)
	dst = append(dst, e.Chain[:]...)
	return appendOps(dst, e.Ops)
}

func appendOps(dst []byte, ops []argent.Op) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, op := range ops {
		dst = append(dst, byte(op.Type))
		dst = appendBytes(dst, op.Key)
		if op.Type == argent.OpPut {
			dst = appendBytes(dst, op.Value)
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// DecodeEntry decodes an entry encoded by AppendEntry. The returned keys and
// values alias b.
func DecodeEntry(b []byte) (argent.Entry, error) {
	var e argent.Entry
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != FormatVersion {
		return e, corrupt("entry format version %d, want %d", v, FormatVersion)
	}
	e.Index = argent.Index(d.uvarint())
	e.Time = d.varint()
	copy(e.Chain[:], d.bytes(len(e.Chain)))
	e.Ops = d.ops()
	if d.err == nil && len(d.b) != 0 {
		d.err = corrupt("%d trailing bytes after entry", len(d.b))
	}
	if d.err != nil {
		return argent.Entry{}, fmt.Errorf("decode entry: %w", d.err)
	}
	return e, nil
}

// EntryHeader returns the index and commit time of an encoded entry
// without decoding its ops.
func EntryHeader(b []byte) (argent.Index, int64, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != FormatVersion {
		return 0, 0, corrupt("entry format version %d, want %d", v, FormatVersion)
	}
	i, t := argent.Index(d.uvarint()), d.varint()
	if d.err != nil {
		return 0, 0, fmt.Errorf("decode entry header: %w", d.err)
	}
	return i, t, nil
}

// EachOp calls fn with the position and value of each op of an encoded
// entry, in order, without building the op list; keys and values alias b.
// It stops early when fn returns false.
func EachOp(b []byte, fn func(i int, op argent.Op) bool) error {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != FormatVersion {
		return corrupt("entry format version %d, want %d", v, FormatVersion)
	}
	d.uvarint()
	d.varint()
	d.bytes(len(argent.Hash{}))
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		op := d.op()
		if d.err == nil && !fn(i, op) {
			return nil
		}
	}
	if d.err != nil {
		return fmt.Errorf("decode entry: %w", d.err)
	}
	return nil
}

// AppendBatch appends the encoding of a batch (conditions and ops) to dst.
func AppendBatch(dst []byte, b *argent.Batch) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, uint64(len(b.Conditions)))
	for _, c := range b.Conditions {
		dst = appendBytes(dst, c.Key)
		dst = binary.AppendUvarint(dst, uint64(c.ModIndex))
	}
	return appendOps(dst, b.Ops)
}

// DecodeBatch decodes a batch encoded by AppendBatch. Keys and values alias b.
func DecodeBatch(b []byte) (argent.Batch, error) {
	var out argent.Batch
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != FormatVersion {
		return out, corrupt("batch format version %d, want %d", v, FormatVersion)
	}
	n := d.count(2)
	if n > 0 {
		out.Conditions = make([]argent.Condition, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.lenBytes()
		out.Conditions = append(out.Conditions, argent.Condition{Key: k, ModIndex: argent.Index(d.uvarint())})
	}
	out.Ops = d.ops()
	if d.err == nil && len(d.b) != 0 {
		d.err = corrupt("%d trailing bytes after batch", len(d.b))
	}
	if d.err != nil {
		return argent.Batch{}, fmt.Errorf("decode batch: %w", d.err)
	}
	return out, nil
}

// NextChain returns the chain hash after an entry: SHA-256 over the previous
// chain hash and the entry's index, time and ops. The entry's own Chain field
// is not part of the input.
func NextChain(prev argent.Hash, e *argent.Entry) argent.Hash {
	h := sha256.New()
	var hdr [8 + 32 + 2*binary.MaxVarintLen64]byte
	b := append(hdr[:0], prev[:]...)
	b = binary.AppendUvarint(b, uint64(e.Index))
	b = binary.AppendVarint(b, e.Time)
	h.Write(b)
	var scratch [2 * binary.MaxVarintLen64]byte
	for _, op := range e.Ops {
		s := append(scratch[:0], byte(op.Type))
		s = binary.AppendUvarint(s, uint64(len(op.Key)))
		h.Write(s)
		h.Write(op.Key)
		// Like AppendEntry, ignore a value on anything but a put, so the
		// chain of an entry equals the chain of its decoding.
		v := op.Value
		if op.Type != argent.OpPut {
			v = nil
		}
		s = binary.AppendUvarint(scratch[:0], uint64(len(v)))
		h.Write(s)
		h.Write(v)
	}
	var out argent.Hash
	h.Sum(out[:0])
	return out
}

// decoder reads fields from b; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = corrupt("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = corrupt("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = corrupt("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = corrupt("length %d past end of %d bytes", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) lenBytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = corrupt("length %d past end of %d bytes", n, len(d.b))
		return nil
	}
	return d.bytes(int(n))
}

// count reads an element count and checks that the remaining bytes could hold
// that many elements of at least minSize bytes each, so a corrupt count cannot
// make the decoder allocate a huge slice.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.err = corrupt("count %d too large for %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) ops() []argent.Op {
	n := d.count(2)
	if d.err != nil {
		return nil
	}
	ops := make([]argent.Op, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ops = append(ops, d.op())
	}
	return ops
}

func (d *decoder) op() argent.Op {
	t := argent.OpType(d.byte())
	switch t {
	case argent.OpPut:
		return argent.Op{Type: t, Key: d.lenBytes(), Value: d.lenBytes()}
	case argent.OpDelete, argent.OpDeletePrefix:
		return argent.Op{Type: t, Key: d.lenBytes()}
	}
	if d.err == nil {
		d.err = corrupt("unknown op type %d", t)
	}
	return argent.Op{}
}
