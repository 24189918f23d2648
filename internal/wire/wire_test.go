package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// hashOf returns a Hash whose bytes all equal b.
func hashOf(b byte) argent.Hash {
	var h argent.Hash
	for i := range h {
		h[i] = b
	}
	return h
}

func datasetOf(b byte) argent.DatasetID {
	var d argent.DatasetID
	for i := range d {
		d[i] = b + byte(i)
	}
	return d
}

// sameOps compares ops treating nil and empty byte slices as equal: the
// decoders return empty, non-nil slices that alias their input.
func sameOps(a, b []argent.Op) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func sameEntry(a, b *argent.Entry) bool {
	return a.Index == b.Index && a.Time == b.Time && a.Chain == b.Chain && sameOps(a.Ops, b.Ops)
}

func sameBatch(a, b *argent.Batch) bool {
	if len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if !bytes.Equal(a.Conditions[i].Key, b.Conditions[i].Key) || a.Conditions[i].ModIndex != b.Conditions[i].ModIndex {
			return false
		}
	}
	return sameOps(a.Ops, b.Ops)
}

var testEntries = []struct {
	name  string
	entry argent.Entry
}{
	{name: "Zero", entry: argent.Entry{}},
	{name: "OnePut", entry: argent.Entry{Index: 1, Time: 1700000000000000000, Chain: hashOf(7),
		Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")}}}},
	{name: "EmptyValue", entry: argent.Entry{Index: 2, Time: 5,
		Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte{}}}}},
	{name: "AllOpTypes", entry: argent.Entry{Index: 300, Time: -1, Chain: hashOf(0xff), Ops: []argent.Op{
		{Type: argent.OpPut, Key: []byte("a/1"), Value: []byte("one")},
		{Type: argent.OpDelete, Key: []byte("a/2")},
		{Type: argent.OpDeletePrefix, Key: []byte("b/")},
		{Type: argent.OpDeletePrefix, Key: []byte{}},
		{Type: argent.OpPut, Key: []byte{0, 0xff, 0}, Value: []byte{0}},
	}}},
	{name: "MaxIntegers", entry: argent.Entry{Index: math.MaxUint64, Time: math.MaxInt64, Chain: hashOf(1),
		Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("x")}}}},
	{name: "MinTime", entry: argent.Entry{Index: 1 << 40, Time: math.MinInt64,
		Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("x")}}}},
	{name: "LargeValue", entry: argent.Entry{Index: 9, Time: 9,
		Ops: []argent.Op{{Type: argent.OpPut, Key: bytes.Repeat([]byte("k"), 1024), Value: bytes.Repeat([]byte("v"), 1<<20)}}}},
	{name: "ManyOps", entry: argent.Entry{Index: 10, Time: 10, Ops: func() []argent.Op {
		var ops []argent.Op
		for i := range 1000 {
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte{byte(i >> 8), byte(i)}, Value: []byte{byte(i)}})
		}
		return ops
	}()}},
}

func TestEntry_RoundTrip(t *testing.T) {
	for _, tc := range testEntries {
		t.Run(tc.name, func(t *testing.T) {
			enc := wire.AppendEntry(nil, &tc.entry)
			if enc[0] != wire.FormatVersion {
				t.Fatalf("first byte = %d, want format version %d", enc[0], wire.FormatVersion)
			}
			got, err := wire.DecodeEntry(enc)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if !sameEntry(&got, &tc.entry) {
				t.Fatalf("got %+v, want %+v", got, tc.entry)
			}
			// Appending to a non-empty buffer leaves the prefix alone.
			enc2 := wire.AppendEntry([]byte("prefix"), &tc.entry)
			if string(enc2[:6]) != "prefix" || !bytes.Equal(enc2[6:], enc) {
				t.Fatalf("AppendEntry to a non-empty buffer changed the encoding")
			}
		})
	}
}

func TestDecodeEntry_Rejects(t *testing.T) {
	valid := wire.AppendEntry(nil, &testEntries[3].entry)
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "Empty", b: nil},
		{name: "OtherVersion", b: append([]byte{wire.FormatVersion + 1}, valid[1:]...)},
		{name: "VersionZero", b: append([]byte{0}, valid[1:]...)},
		{name: "TrailingByte", b: append(append([]byte(nil), valid...), 0)},
		{name: "UnknownOpType", b: func() []byte {
			e := argent.Entry{Index: 1, Ops: []argent.Op{{Type: 9, Key: []byte("k")}}}
			return wire.AppendEntry(nil, &e)
		}()},
		{name: "OpTypeZero", b: func() []byte {
			e := argent.Entry{Index: 1, Ops: []argent.Op{{Type: 0, Key: []byte("k")}}}
			return wire.AppendEntry(nil, &e)
		}()},
		{name: "HugeOpCount", b: func() []byte {
			b := []byte{wire.FormatVersion, 1, 0}
			b = append(b, make([]byte, 32)...)
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}()},
		{name: "HugeKeyLength", b: func() []byte {
			b := []byte{wire.FormatVersion, 1, 0}
			b = append(b, make([]byte, 32)...)
			return append(b, 1, byte(argent.OpDelete), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}()},
		{name: "OverlongUvarint", b: func() []byte {
			b := []byte{wire.FormatVersion}
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}()},
	}
	for i := range len(valid) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{name: "Truncated" + strconv.Itoa(i), b: valid[:i]})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.DecodeEntry(tc.b)
			if !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("DecodeEntry(%x) error = %v, want ErrCorruption", tc.b, err)
			}
		})
	}
}

func TestBatch_RoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		batch argent.Batch
	}{
		{name: "Empty", batch: argent.Batch{}},
		{name: "OpsOnly", batch: argent.Batch{Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")},
			{Type: argent.OpDelete, Key: []byte("d")},
			{Type: argent.OpDeletePrefix, Key: []byte("p/")},
		}}},
		{name: "Conditions", batch: argent.Batch{
			Conditions: []argent.Condition{{Key: []byte("a"), ModIndex: 0}, {Key: []byte("b"), ModIndex: math.MaxUint64}},
			Ops:        []argent.Op{{Type: argent.OpPut, Key: []byte("a"), Value: nil}},
		}},
		{name: "ConditionsOnly", batch: argent.Batch{Conditions: []argent.Condition{{Key: []byte("c"), ModIndex: 3}}}},
		{name: "BinaryKeys", batch: argent.Batch{
			Conditions: []argent.Condition{{Key: []byte{0xff, 0}, ModIndex: 1 << 33}},
			Ops:        []argent.Op{{Type: argent.OpPut, Key: []byte{0}, Value: bytes.Repeat([]byte{0xab}, 70000)}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := wire.AppendBatch(nil, &tc.batch)
			got, err := wire.DecodeBatch(enc)
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if !sameBatch(&got, &tc.batch) {
				t.Fatalf("got %+v, want %+v", got, tc.batch)
			}
			for i := range len(enc) {
				if _, err := wire.DecodeBatch(enc[:i]); !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("DecodeBatch of %d of %d bytes: error = %v, want ErrCorruption", i, len(enc), err)
				}
			}
			if _, err := wire.DecodeBatch(append(enc, 0)); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("DecodeBatch with a trailing byte: error = %v, want ErrCorruption", err)
			}
		})
	}
}

func TestDecodeBatch_Rejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "Empty", b: nil},
		{name: "OtherVersion", b: []byte{2, 0, 0}},
		{name: "HugeConditionCount", b: []byte{wire.FormatVersion, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}},
		{name: "ConditionKeyPastEnd", b: []byte{wire.FormatVersion, 1, 5, 'a', 0}},
		{name: "UnknownOpType", b: []byte{wire.FormatVersion, 0, 1, 4, 1, 'k'}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.DecodeBatch(tc.b); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("DecodeBatch(%x) error = %v, want ErrCorruption", tc.b, err)
			}
		})
	}
}

// TestPayloads_RoundTrip checks the small frame payloads: each decodes to
// what was encoded, and each truncation and a trailing byte are refused.
func TestPayloads_RoundTrip(t *testing.T) {
	type codec struct {
		name   string
		enc    []byte
		decode func([]byte) (any, error)
		want   any
		// oldLen, if set, is the length of the encoding without the
		// fields a newer version added at the end: it decodes too.
		oldLen int
	}
	var codecs []codec
	for _, h := range []wire.Hello{
		{},
		{Dataset: datasetOf(1), NodeID: "node-1", Applied: 42, RootIndex: 43, RootTime: 1700000000123456789},
		{Dataset: datasetOf(9), NodeID: strings.Repeat("n", 300), Applied: math.MaxUint64, RootIndex: math.MaxUint64, RootTime: math.MinInt64},
	} {
		codecs = append(codecs, codec{name: "Hello/" + h.NodeID[:min(len(h.NodeID), 6)], enc: h.Append(nil), want: h,
			decode: func(b []byte) (any, error) { return wire.DecodeHello(b) }})
	}
	for _, h := range []wire.Heartbeat{{}, {RootIndex: 100, RootTime: 1, Applied: 99, RootSent: 1234}, {RootIndex: math.MaxUint64, RootTime: -5, Applied: math.MaxUint64}} {
		codecs = append(codecs, codec{name: "Heartbeat/" + strconv.Itoa(int(h.RootIndex%1000)), enc: h.Append(nil), want: h,
			decode: func(b []byte) (any, error) { return wire.DecodeHeartbeat(b) }})
	}
	for _, x := range []wire.TooOld{{}, {FirstIndex: 1}, {FirstIndex: math.MaxUint64}} {
		codecs = append(codecs, codec{name: "TooOld/" + strconv.Itoa(int(x.FirstIndex%1000)), enc: x.Append(nil), want: x,
			decode: func(b []byte) (any, error) { return wire.DecodeTooOld(b) }})
	}
	for _, h := range []wire.SnapshotHeader{{}, {Dataset: datasetOf(3), Index: 77, Time: 1700000000000000000, Chain: hashOf(0x5a)},
		{Dataset: datasetOf(4), Index: 78, Time: 1, Chain: hashOf(1), Source: 1 << 40}} {
		enc := h.Append(nil)
		codecs = append(codecs, codec{name: "SnapshotHeader/" + strconv.Itoa(int(h.Index)), enc: enc, want: h,
			oldLen: len(enc) - len(binary.AppendUvarint(nil, h.Source)),
			decode: func(b []byte) (any, error) { return wire.DecodeSnapshotHeader(b) }})
	}
	for _, x := range []wire.SnapshotTrailer{{}, {Records: 12345}, {Records: math.MaxUint64}} {
		codecs = append(codecs, codec{name: "SnapshotTrailer/" + strconv.Itoa(int(x.Records%1000)), enc: x.Append(nil), want: x,
			decode: func(b []byte) (any, error) { return wire.DecodeSnapshotTrailer(b) }})
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			if c.enc[0] != wire.FormatVersion {
				t.Fatalf("first byte = %d, want format version %d", c.enc[0], wire.FormatVersion)
			}
			got, err := c.decode(c.enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range len(c.enc) {
				if i == c.oldLen && i > 0 {
					if _, err := c.decode(c.enc[:i]); err != nil {
						t.Fatalf("decode of the %d bytes an older sender writes: %v", i, err)
					}
					continue
				}
				if _, err := c.decode(c.enc[:i]); !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("decode of %d of %d bytes: error = %v, want ErrCorruption", i, len(c.enc), err)
				}
			}
			if _, err := c.decode(append(append([]byte(nil), c.enc...), 0)); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("decode with a trailing byte: error = %v, want ErrCorruption", err)
			}
			bad := append([]byte{wire.FormatVersion + 1}, c.enc[1:]...)
			if _, err := c.decode(bad); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("decode of another version: error = %v, want ErrCorruption", err)
			}
		})
	}
}

func TestSnapshotChunk_RoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		records []argent.Item
	}{
		{name: "NoRecords"},
		{name: "One", records: []argent.Item{{Key: []byte("k"), Value: argent.Value{Value: []byte("v"), ModIndex: 1}}}},
		{name: "Several", records: []argent.Item{
			{Key: []byte("a"), Value: argent.Value{Value: nil, ModIndex: 3}},
			{Key: []byte("b"), Value: argent.Value{Value: bytes.Repeat([]byte("x"), 1000), ModIndex: math.MaxUint64}},
			{Key: []byte{0xff}, Value: argent.Value{Value: []byte{0}, ModIndex: 0}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := []byte{wire.FormatVersion} // what a chunk holds before its first record
			for i := range tc.records {
				enc = wire.AppendSnapshotRecord(enc, &tc.records[i])
			}
			// Appending to an empty buffer writes the version byte first.
			if len(tc.records) > 0 {
				fresh := wire.AppendSnapshotRecord(nil, &tc.records[0])
				for i := 1; i < len(tc.records); i++ {
					fresh = wire.AppendSnapshotRecord(fresh, &tc.records[i])
				}
				if !bytes.Equal(fresh, enc) {
					t.Fatalf("chunk from an empty buffer = %x, want %x", fresh, enc)
				}
			}
			var got []argent.Item
			err := wire.DecodeSnapshotChunk(enc, func(r argent.Item) error {
				got = append(got, r)
				return nil
			})
			if err != nil {
				t.Fatalf("DecodeSnapshotChunk: %v", err)
			}
			if len(got) != len(tc.records) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.records))
			}
			for i := range got {
				w := tc.records[i]
				if !bytes.Equal(got[i].Key, w.Key) || got[i].ModIndex != w.ModIndex || !bytes.Equal(got[i].Value.Value, w.Value.Value) {
					t.Fatalf("record %d = %+v, want %+v", i, got[i], w)
				}
			}
			// A chunk cut inside a record is refused. A cut between
			// records is not detectable here: the trailer's count is.
			ends := map[int]bool{1: true}
			n := 1
			for i := range tc.records {
				n = len(wire.AppendSnapshotRecord([]byte{wire.FormatVersion}, &tc.records[i])) - 1 + n
				ends[n] = true
			}
			for i := range len(enc) {
				err := wire.DecodeSnapshotChunk(enc[:i], func(argent.Item) error { return nil })
				if ends[i] {
					if err != nil {
						t.Fatalf("chunk cut at record boundary %d: %v", i, err)
					}
				} else if !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("chunk cut at %d of %d bytes: error = %v, want ErrCorruption", i, len(enc), err)
				}
			}
		})
	}
}

func TestDecodeSnapshotChunk_CallbackError(t *testing.T) {
	stop := errors.New("stop")
	var enc []byte
	for _, k := range []string{"a", "b", "c"} {
		enc = wire.AppendSnapshotRecord(enc, &argent.Item{Key: []byte(k), Value: argent.Value{ModIndex: 1}})
	}
	calls := 0
	err := wire.DecodeSnapshotChunk(enc, func(r argent.Item) error {
		calls++
		if string(r.Key) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("error = %v after %d calls, want stop after 2", err, calls)
	}
	if err := wire.DecodeSnapshotChunk([]byte{2}, func(argent.Item) error { return nil }); !errors.Is(err, argent.ErrCorruption) {
		t.Fatalf("chunk of another version: error = %v, want ErrCorruption", err)
	}
}

func TestNextChain(t *testing.T) {
	base := argent.Entry{Index: 5, Time: 1000, Ops: []argent.Op{
		{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")},
		{Type: argent.OpDelete, Key: []byte("d")},
	}}
	prev := hashOf(3)
	h := wire.NextChain(prev, &base)
	if h == (argent.Hash{}) {
		t.Fatal("NextChain returned the zero hash")
	}
	if again := wire.NextChain(prev, &base); again != h {
		t.Fatal("NextChain is not deterministic")
	}
	withChain := base
	withChain.Chain = hashOf(9)
	if got := wire.NextChain(prev, &withChain); got != h {
		t.Fatal("NextChain depends on the entry's own Chain field")
	}
	// A decoded entry (empty, non-nil slices) hashes like the original.
	dec, err := wire.DecodeEntry(wire.AppendEntry(nil, &base))
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.NextChain(prev, &dec); got != h {
		t.Fatal("NextChain of a decoded entry differs")
	}
	tests := []struct {
		name   string
		prev   argent.Hash
		modify func(e *argent.Entry)
	}{
		{name: "Prev", prev: hashOf(4)},
		{name: "Index", modify: func(e *argent.Entry) { e.Index++ }},
		{name: "Time", modify: func(e *argent.Entry) { e.Time++ }},
		{name: "OpType", modify: func(e *argent.Entry) { e.Ops[1].Type = argent.OpDeletePrefix }},
		{name: "Key", modify: func(e *argent.Entry) { e.Ops[0].Key = []byte("K") }},
		{name: "Value", modify: func(e *argent.Entry) { e.Ops[0].Value = []byte("w") }},
		{name: "KeyValueBoundary", modify: func(e *argent.Entry) { e.Ops[0].Key, e.Ops[0].Value = []byte("kv"), nil }},
		{name: "OpOrder", modify: func(e *argent.Entry) { e.Ops[0], e.Ops[1] = e.Ops[1], e.Ops[0] }},
		{name: "DropOp", modify: func(e *argent.Entry) { e.Ops = e.Ops[:1] }},
		{name: "NoOps", modify: func(e *argent.Entry) { e.Ops = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			e.Ops = append([]argent.Op(nil), base.Ops...)
			p := prev
			if tc.prev != (argent.Hash{}) {
				p = tc.prev
			}
			if tc.modify != nil {
				tc.modify(&e)
			}
			if got := wire.NextChain(p, &e); got == h {
				t.Fatalf("changing %s did not change the chain hash", tc.name)
			}
		})
	}
}

func TestChecksum(t *testing.T) {
	// The CRC32C check value from the Castagnoli paper and RFC 3720.
	if got := wire.Checksum([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("Checksum(123456789) = %08x, want e3069283", got)
	}
}

// TestNextChain_FollowsEncoding checks that the chain hash depends only on
// what AppendEntry encodes, so that a node that decodes an entry computes
// the chain its parent did. The encoding drops a value on a delete.
func TestNextChain_FollowsEncoding(t *testing.T) {
	prev := hashOf(2)
	for _, tc := range testEntries {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.entry
			e.Ops = append([]argent.Op(nil), e.Ops...)
			for i := range e.Ops {
				if e.Ops[i].Type != argent.OpPut {
					e.Ops[i].Value = []byte("ignored")
				}
			}
			dec, err := wire.DecodeEntry(wire.AppendEntry(nil, &e))
			if err != nil {
				t.Fatal(err)
			}
			if wire.NextChain(prev, &e) != wire.NextChain(prev, &dec) {
				t.Fatal("the chain hash of an entry differs from that of its decoding")
			}
		})
	}
}

// TestFormat_Golden pins the bytes of an entry, its chain hash and a frame.
// Nodes of different builds compare these: a change here is a format change
// and needs a new FormatVersion.
func TestFormat_Golden(t *testing.T) {
	e := argent.Entry{Index: 1, Time: 1_700_000_000_000_000_000, Ops: []argent.Op{
		{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")},
		{Type: argent.OpDelete, Key: []byte("d")},
		{Type: argent.OpDeletePrefix, Key: []byte("p/")},
	}}
	e.Chain = wire.NextChain(argent.Hash{}, &e)
	hb := wire.Heartbeat{RootIndex: 1, RootTime: 2, Applied: 3}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "Chain", got: e.Chain[:], want: "c6eaa39e2376fe47cfb3deeb53665987a09dfee99fabf402110cb3857f6ac351"},
		{name: "Entry", got: wire.AppendEntry(nil, &e),
			want: "01018080d0e2c6bfce972fc6eaa39e2376fe47cfb3deeb53665987a09dfee99fabf402110cb3857f6ac3510301016b01760201640302702f"},
		{name: "Frame", got: wire.AppendFrame(nil, wire.FrameHeartbeat, hb.Append(nil)), want: "000000052cfb7ec703590125d30101040300"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprintf("%x", tc.got); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
