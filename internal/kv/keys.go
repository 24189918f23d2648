package kv

import (
	"encoding/binary"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
)

// On-disk layout. Every node's Pebble database holds these key spaces, each
// marked by its first byte:
//
//	m<name>                      meta: format, applied state, dataset ID, horizon
//	k<key>                       latest version: flags, mod index, prev, value
//	h<superseded64><key>         a superseded version the log cannot give back
//	t<index64><key>              tombstone queue: key deleted by entry index
//	l<index64>                   log record (package logstore)
//
// A version's prev is the mod index of the version before it (0: none).
// Older versions are not copied when they are superseded: a read as of an
// older index follows prev to the log record of the entry that wrote the
// older version, which holds its value and, in the record's trailer, its own
// prev. Only versions the log will not keep long enough (see Writer.supersede)
// and tombstones are copied to h, keyed by the index that superseded them.
// All integers are big endian so byte order is numeric order.
const (
	spaceMeta      = 'm'
	spaceLatest    = 'k'
	spaceHistory   = 'h'
	spaceTombstone = 't'
	spaceLog       = logstore.Space
)

// Meta keys.
var (
	metaFormat    = []byte("mformat")    // uint64 StoreFormatVersion
	metaApplied   = []byte("mapplied")   // index64, time64, chain[32]
	metaDataset   = []byte("mdataset")   // [16]byte
	metaNodeID    = []byte("mnode")      // [16]byte
	metaHorizon   = []byte("mhorizon")   // index64: oldest index MVCC reads can answer
	metaLogFirst  = []byte("mlogfirst")  // index64: oldest log entry kept
	metaRestoring = []byte("mrestoring") // present while a snapshot is being loaded
	metaSource    = []byte("msource")    // uint64: position in the source of the applied state
)

// StoreFormatVersion is the version of the on-disk layout above. Open refuses
// a store with another version. Version 1 copied every superseded version
// (with a GC queue entry) and had no prev in its latest versions.
const StoreFormatVersion uint64 = 2

// Version flags, the first byte of a k or h value.
const (
	flagTombstone byte = 1 << 0
)

func latestKey(key []byte) []byte {
	b := make([]byte, 0, 1+len(key))
	b = append(b, spaceLatest)
	return append(b, key...)
}

// indexedKey returns space, then i (8 bytes), then key: the h and t spaces.
func indexedKey(space byte, i argent.Index, key []byte) []byte {
	return appendIndexedKey(make([]byte, 0, 9+len(key)), space, i, key)
}

func appendIndexedKey(b []byte, space byte, i argent.Index, key []byte) []byte {
	b = append(b, space)
	b = binary.BigEndian.AppendUint64(b, uint64(i))
	return append(b, key...)
}

// indexedBound returns the first key of index i in space: everything of
// indexes below i sorts before it.
func indexedBound(space byte, i argent.Index) []byte { return indexedKey(space, i, nil) }

func parseIndexedKey(space byte, k []byte) (argent.Index, []byte, bool) {
	if len(k) < 9 || k[0] != space {
		return 0, nil, false
	}
	return argent.Index(binary.BigEndian.Uint64(k[1:9])), k[9:], true
}

func logKey(i argent.Index) []byte { return logstore.Key(i) }

// version is a decoded k or h value.
type version struct {
	tombstone bool
	mod       argent.Index
	prev      argent.Index // mod index of the version before this one; 0: none
	value     []byte
}

// encodeVersion encodes a k or h value: flags, mod index, prev, value.
func encodeVersion(v version) []byte { return appendVersion(make([]byte, 0, 17+len(v.value)), v) }

func appendVersion(b []byte, v version) []byte {
	var f byte
	if v.tombstone {
		f |= flagTombstone
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint64(b, uint64(v.mod))
	b = binary.BigEndian.AppendUint64(b, uint64(v.prev))
	return append(b, v.value...)
}

func decodeVersion(v []byte) (version, bool) {
	if len(v) < 17 {
		return version{}, false
	}
	return version{
		tombstone: v[0]&flagTombstone != 0,
		mod:       argent.Index(binary.BigEndian.Uint64(v[1:9])),
		prev:      argent.Index(binary.BigEndian.Uint64(v[9:17])),
		value:     v[17:],
	}, true
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

func putUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
