package negfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/argent-kv/argent"
)

// FormatVersion is the version of the encoding below. Decode refuses other
// versions with ErrVersion. The hash function (bloom/v3's murmur3 and its
// choice of bit positions) is part of the format: a change to it needs a new
// version, and TestDecode_Golden fails if a dependency update changes it.
const FormatVersion byte = 1

// The encoding, all integers big endian:
//
//	magic    [4]byte  "AGNF"
//	version  byte     FormatVersion
//	index    uint64   every key present at this index was added
//	m        uint64   bits in the array
//	k        uint8    hashes per key, 1..64
//	expected uint64   keys the filter was sized for
//	fpRate   float64  target false-positive rate (IEEE 754 bits)
//	count    uint64   Add calls (see Count)
//	words    [ceil(m/64)]uint64  the bit array, bit i in word i/64, bit i%64
//	crc      uint32   CRC32C (Castagnoli) of every byte before it
//
// Every version keeps the magic and version at the front and the CRC32C at
// the end, so that a damaged version byte reads as corruption, not as an
// unknown version.
const (
	magic      = "AGNF"
	headerSize = 4 + 1 + 8 + 8 + 1 + 8 + 8 + 8
	crcSize    = 4
	// maxBits bounds m so that sizes cannot overflow; the real bound is the
	// length of the buffer, which must match m exactly.
	maxBits = 1 << 48
	maxK    = 64
	maxKeys = 1 << 48
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of Decode and UnmarshalBinary.
var (
	// ErrCorrupt is returned when an encoding is truncated, fails its
	// checksum, or holds values no encoder writes. It wraps
	// argent.ErrCorruption.
	ErrCorrupt = fmt.Errorf("negfilter: corrupt filter encoding: %w", argent.ErrCorruption)
	// ErrVersion is returned when an intact encoding has a format version
	// this build does not know (a newer replica, say).
	ErrVersion = errors.New("negfilter: unsupported filter format version")
)

// MarshalBinary encodes the filter: its parameters, index, Count and bit
// array, with a format version and a CRC32C. The encoding is consistent with
// respect to SetIndex: it never holds an index whose keys it lacks.
func (f *Filter) MarshalBinary() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	words := f.mu.bf.BitSet().Words()
	m := f.mu.bf.Cap()
	n := wordsFor(uint64(m))
	b := make([]byte, 0, headerSize+8*n+crcSize)
	b = append(b, magic...)
	b = append(b, FormatVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(f.mu.index))
	b = binary.BigEndian.AppendUint64(b, uint64(m))
	b = append(b, byte(f.mu.bf.K()))
	b = binary.BigEndian.AppendUint64(b, uint64(f.expected))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(f.fpRate))
	b = binary.BigEndian.AppendUint64(b, f.adds.Load())
	for i := range n {
		var w uint64
		if i < uint64(len(words)) {
			w = words[i]
		}
		b = binary.BigEndian.AppendUint64(b, w)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// Decode returns the filter b encodes. A truncated, damaged or malformed
// encoding gives an error wrapping ErrCorrupt (and argent.ErrCorruption);
// an intact one of another format version gives ErrVersion. It never panics
// and allocates no more than len(b) bytes.
func Decode(b []byte) (*Filter, error) {
	if len(b) < len(magic)+1+crcSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-crcSize], binary.BigEndian.Uint32(b[len(b)-crcSize:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, sum)
	}
	if string(body[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, body[:len(magic)], magic)
	}
	if v := body[len(magic)]; v != FormatVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrVersion, v, FormatVersion)
	}
	if len(body) < headerSize {
		return nil, fmt.Errorf("%w: header of %d bytes, want %d", ErrCorrupt, len(body), headerSize)
	}
	p := body[len(magic)+1:]
	index := binary.BigEndian.Uint64(p[0:])
	m := binary.BigEndian.Uint64(p[8:])
	k := uint64(p[16])
	expected := binary.BigEndian.Uint64(p[17:])
	fpRate := math.Float64frombits(binary.BigEndian.Uint64(p[25:]))
	count := binary.BigEndian.Uint64(p[33:])
	switch {
	case m == 0 || m > maxBits:
		return nil, fmt.Errorf("%w: %d bits", ErrCorrupt, m)
	case k == 0 || k > maxK:
		return nil, fmt.Errorf("%w: %d hashes", ErrCorrupt, k)
	case expected == 0 || expected > maxKeys:
		return nil, fmt.Errorf("%w: sized for %d keys", ErrCorrupt, expected)
	case !(fpRate > 0 && fpRate < 1):
		return nil, fmt.Errorf("%w: target false-positive rate %v", ErrCorrupt, fpRate)
	}
	n := wordsFor(m)
	if want := uint64(headerSize) + 8*n; uint64(len(body)) != want {
		return nil, fmt.Errorf("%w: %d bytes for %d bits, want %d", ErrCorrupt, len(body), m, want)
	}
	words := make([]uint64, n)
	for i := range words {
		words[i] = binary.BigEndian.Uint64(body[headerSize+8*i:])
	}
	if tail := m % 64; tail != 0 && words[n-1]>>tail != 0 {
		return nil, fmt.Errorf("%w: bits set past bit %d", ErrCorrupt, m)
	}
	f := &Filter{expected: uint(expected), fpRate: fpRate}
	f.mu.bf = bloom.FromWithM(words, uint(m), uint(k))
	f.mu.index = argent.Index(index)
	f.adds.Store(count)
	return f, nil
}

// UnmarshalBinary replaces f with the filter b encodes; see Decode for the
// errors. On an error f is unchanged. Call it only on a filter no other
// goroutine uses yet (it is here for encoding.BinaryUnmarshaler; Decode is
// the usual way in).
func (f *Filter) UnmarshalBinary(b []byte) error {
	g, err := Decode(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expected, f.fpRate = g.expected, g.fpRate
	f.mu.bf, f.mu.index = g.mu.bf, g.mu.index
	f.adds.Store(g.adds.Load())
	return nil
}

// wordsFor returns the 64-bit words that hold m bits.
func wordsFor(m uint64) uint64 { return (m + 63) / 64 }
