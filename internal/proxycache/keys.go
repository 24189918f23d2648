package proxycache

import (
	"encoding/binary"
	"fmt"

	"github.com/argent-kv/argent"
)

// On-disk layout. The cache's Pebble database holds these key spaces, each
// marked by its first byte:
//
//	m<name>    meta: format version, applied state, dataset and node IDs
//	e<key>     a cached entry: flags, mod index, since index, value
//
// All integers are big endian. The applied state and the entries it
// describes are always written in one Pebble batch, so every state the
// database can be in after a crash pairs an index with entries that hold at
// it.
const (
	spaceMeta  = 'm'
	spaceEntry = 'e'
)

// Meta keys.
var (
	metaFormat  = []byte("mformat")  // uint64 FormatVersion
	metaState   = []byte("mstate")   // index64, time64, chain[32]
	metaDataset = []byte("mdataset") // [16]byte
	metaNodeID  = []byte("mnode")    // [16]byte
)

// FormatVersion is the version of the on-disk layout above. Open refuses a
// cache of another version.
const FormatVersion uint64 = 1

// Entry flags, the first byte of an e value.
const flagPresent byte = 1 << 0

// recordHeader is the size of an e value without its value bytes.
const recordHeader = 1 + 8 + 8

// entryOverhead is added to the key and value bytes of an entry when it is
// weighed against the budget. It covers what the entry costs on disk beyond
// its key and value: the record header, the key space byte, Pebble's
// internal key trailer, block and index entries and the bloom filter. It is
// an estimate; TestCache_DiskOverhead measures the real figure.
const entryOverhead = 48

// entrySpaceStart and entrySpaceEnd bound the e key space.
var (
	entrySpaceStart = []byte{spaceEntry}
	entrySpaceEnd   = []byte{spaceEntry + 1}
)

// entryKey returns the Pebble key of a cached key.
func entryKey(key []byte) []byte {
	return appendEntryKey(make([]byte, 0, 1+len(key)), key)
}

func appendEntryKey(dst, key []byte) []byte {
	dst = append(dst, spaceEntry)
	return append(dst, key...)
}

// prefixBounds returns the Pebble key range holding the cached keys that
// start with prefix.
func prefixBounds(prefix []byte) (lower, upper []byte) {
	lower = entryKey(prefix)
	if upper = prefixEnd(lower); upper == nil {
		upper = entrySpaceEnd
	}
	return lower, upper
}

// prefixEnd returns the smallest key greater than every key with prefix p, or
// nil if there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// encodeEntry encodes an e value.
func encodeEntry(e *Entry) []byte {
	b := make([]byte, 0, recordHeader+len(e.Value.Value))
	var f byte
	if e.Present {
		f |= flagPresent
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ModIndex))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Since))
	return append(b, e.Value.Value...)
}

// decodeEntry decodes an e value. The Value of the result aliases v.
func decodeEntry(v []byte) (Entry, error) {
	if len(v) < recordHeader || v[0]&^flagPresent != 0 {
		return Entry{}, fmt.Errorf("proxycache: entry of %d bytes, flags %#x: %w", len(v), firstByte(v), argent.ErrCorruption)
	}
	e := Entry{
		Present: v[0]&flagPresent != 0,
		Value:   argent.Value{ModIndex: argent.Index(binary.BigEndian.Uint64(v[1:9]))},
		Since:   argent.Index(binary.BigEndian.Uint64(v[9:17])),
	}
	if e.Present {
		e.Value.Value = v[recordHeader:]
	} else if len(v) > recordHeader {
		return Entry{}, fmt.Errorf("proxycache: absent entry carries %d value bytes: %w", len(v)-recordHeader, argent.ErrCorruption)
	}
	return e, nil
}

func firstByte(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func encodeState(st argent.State) []byte {
	b := make([]byte, 0, 48)
	b = binary.BigEndian.AppendUint64(b, uint64(st.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(st.Time))
	return append(b, st.Chain[:]...)
}

func decodeState(v []byte) (argent.State, error) {
	if len(v) != 48 {
		return argent.State{}, fmt.Errorf("proxycache: applied state has %d bytes: %w", len(v), argent.ErrCorruption)
	}
	st := argent.State{Index: argent.Index(binary.BigEndian.Uint64(v[0:8])), Time: int64(binary.BigEndian.Uint64(v[8:16]))}
	copy(st.Chain[:], v[16:])
	return st, nil
}

func putUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
