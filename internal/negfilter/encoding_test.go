package negfilter_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/negfilter"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/golden-v1.bin")

// Offsets of the header fields, as encoding.go lays them out.
const (
	offVersion  = 4
	offM        = 13
	offK        = 21
	offExpected = 22
	offFPRate   = 30
	headerSize  = 46
)

// reseal recomputes the trailing CRC32C of b, so that a test can make an
// intact encoding with a bad field.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	body := b[:len(b)-4]
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestFilter_MarshalRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected uint
		keys     int
		index    uint64
	}{
		{name: "Empty", expected: 1, keys: 0, index: 0},
		{name: "Small", expected: 64, keys: 50, index: 7},
		{name: "BitsNotWordAligned", expected: 3, keys: 3, index: 1},
		{name: "Large", expected: 100_000, keys: 80_000, index: math.MaxUint64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFilter(t, tc.expected, tc.keys, tc.index)
			b := mustMarshal(t, f)
			g, err := negfilter.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if g.Index() != f.Index() || g.Count() != f.Count() || g.Bits() != f.Bits() ||
				g.Hashes() != f.Hashes() || g.ExpectedKeys() != f.ExpectedKeys() || g.TargetFPRate() != f.TargetFPRate() {
				t.Errorf("decoded (index %d, count %d, m %d, k %d, n %d, p %v), want (%d, %d, %d, %d, %d, %v)",
					g.Index(), g.Count(), g.Bits(), g.Hashes(), g.ExpectedKeys(), g.TargetFPRate(),
					f.Index(), f.Count(), f.Bits(), f.Hashes(), f.ExpectedKeys(), f.TargetFPRate())
			}
			for i := range tc.keys {
				if !g.MayContain(presentKey(i)) {
					t.Fatalf("decoded filter lacks key %d", i)
				}
			}
			for i := range 1000 {
				if f.MayContain(absentKey(i)) != g.MayContain(absentKey(i)) {
					t.Fatalf("decoded filter answers absent key %d differently", i)
				}
			}
			if again := mustMarshal(t, g); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs from the encoding")
			}
			var h negfilter.Filter
			if err := h.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if again := mustMarshal(t, &h); !bytes.Equal(again, b) {
				t.Errorf("UnmarshalBinary then MarshalBinary differs from the encoding")
			}
			g.Add(absentKey(0)) // a decoded filter keeps working
			if !g.MayContain(absentKey(0)) {
				t.Errorf("decoded filter lost an Add")
			}
		})
	}
}

// TestDecode_EveryByteCorrupted flips bits at every byte position of a small
// encoding and at a sample of positions of a large one: each is refused.
func TestDecode_EveryByteCorrupted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected uint
		stride   int
	}{
		{name: "Small", expected: 64, stride: 1},
		{name: "Large", expected: 20_000, stride: 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustMarshal(t, mustFilter(t, tc.expected, int(tc.expected), 42))
			positions := []int{}
			for i := 0; i < len(b); i += tc.stride {
				positions = append(positions, i)
			}
			for i := max(0, len(b)-headerSize); i < len(b); i++ { // the tail and its CRC in full
				positions = append(positions, i)
			}
			for i := range headerSize {
				positions = append(positions, i)
			}
			for _, pos := range positions {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					bad := bytes.Clone(b)
					bad[pos] ^= mask
					if _, err := negfilter.Decode(bad); !errors.Is(err, negfilter.ErrCorrupt) || !errors.Is(err, argent.ErrCorruption) {
						t.Fatalf("byte %d ^ %#x: Decode err = %v, want ErrCorrupt", pos, mask, err)
					}
				}
			}
		})
	}
}

func TestDecode_Truncated(t *testing.T) {
	b := mustMarshal(t, mustFilter(t, 64, 64, 42))
	for n := range len(b) {
		if _, err := negfilter.Decode(b[:n]); !errors.Is(err, negfilter.ErrCorrupt) {
			t.Fatalf("first %d of %d bytes: Decode err = %v, want ErrCorrupt", n, len(b), err)
		}
	}
	if _, err := negfilter.Decode(append(bytes.Clone(b), 0)); !errors.Is(err, negfilter.ErrCorrupt) {
		t.Errorf("a byte appended: Decode err = %v, want ErrCorrupt", err)
	}
}

// TestDecode_Malformed covers intact encodings (their CRC matches) with a
// field no encoder writes.
func TestDecode_Malformed(t *testing.T) {
	good := mustMarshal(t, mustFilter(t, 64, 10, 3))
	put64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint64(b[off:], v) }
	}
	for _, tc := range []struct {
		name   string
		edit   func([]byte) []byte
		want   error
		reseal bool
	}{
		{name: "OtherVersion", edit: func(b []byte) []byte { b[offVersion] = 2; return b }, want: negfilter.ErrVersion, reseal: true},
		{name: "VersionZero", edit: func(b []byte) []byte { b[offVersion] = 0; return b }, want: negfilter.ErrVersion, reseal: true},
		{name: "BadMagic", edit: func(b []byte) []byte { b[0] = 'X'; return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "ZeroBits", edit: func(b []byte) []byte { put64(offM, 0)(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "HugeBits", edit: func(b []byte) []byte { put64(offM, math.MaxUint64)(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "BitsDisagreeWithLength", edit: func(b []byte) []byte { put64(offM, 64*100)(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "ZeroHashes", edit: func(b []byte) []byte { b[offK] = 0; return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "TooManyHashes", edit: func(b []byte) []byte { b[offK] = 65; return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "ZeroExpected", edit: func(b []byte) []byte { put64(offExpected, 0)(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "RateNaN", edit: func(b []byte) []byte { put64(offFPRate, math.Float64bits(math.NaN()))(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "RateOne", edit: func(b []byte) []byte { put64(offFPRate, math.Float64bits(1))(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "RateZero", edit: func(b []byte) []byte { put64(offFPRate, 0)(b); return b }, want: negfilter.ErrCorrupt, reseal: true},
		{name: "BitsPastM", edit: func(b []byte) []byte {
			// m = 614 for 64 keys at 1%: the last word holds 38 bits, so
			// bits 38..63 of it must be 0.
			b[len(b)-12] |= 0x80 // the top byte of the last word
			return b
		}, want: negfilter.ErrCorrupt, reseal: true},
		{name: "Empty", edit: func([]byte) []byte { return nil }, want: negfilter.ErrCorrupt},
		{name: "OnlyMagicAndVersionSealed", edit: func(b []byte) []byte { return append(b[:5:5], 0, 0, 0, 0) }, want: negfilter.ErrCorrupt, reseal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(good))
			if tc.reseal {
				b = reseal(b)
			}
			_, err := negfilter.Decode(b)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode err = %v, want %v", err, tc.want)
			}
			if tc.want == negfilter.ErrVersion && errors.Is(err, negfilter.ErrCorrupt) {
				t.Errorf("an intact other version reads as corruption: %v", err)
			}
		})
	}
	var f negfilter.Filter
	if err := f.UnmarshalBinary(good[:10]); !errors.Is(err, negfilter.ErrCorrupt) {
		t.Errorf("UnmarshalBinary of a truncated encoding: err = %v, want ErrCorrupt", err)
	}
}

// TestDecode_Golden pins the format and the hash function: a filter of
// known keys must encode to the bytes in testdata, and those bytes must
// decode to a filter holding the keys. A failure after a dependency update
// means bloom/v3 changed its hashing, which would make filters built by
// older replicas give false negatives: bump FormatVersion instead.
func TestDecode_Golden(t *testing.T) {
	path := filepath.Join("testdata", "golden-v1.bin")
	f := negfilter.New(16, 0.01)
	keys := []string{"", "a", "config/dns/zone", "\x00\xff", "svc/42/limits"}
	for _, k := range keys {
		f.Add([]byte(k))
	}
	f.SetIndex(123456789)
	b := mustMarshal(t, f)
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (make it with -rewrite): %v", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding differs from %s:\n got %x\nwant %x", path, b, want)
	}
	g, err := negfilter.Decode(want)
	if err != nil {
		t.Fatalf("Decode golden: %v", err)
	}
	for _, k := range keys {
		if !g.MayContain([]byte(k)) {
			t.Errorf("golden filter lacks %q", k)
		}
	}
	if g.Index() != 123456789 {
		t.Errorf("golden index = %d, want 123456789", g.Index())
	}
}
