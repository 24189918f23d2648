package kv

import (
	"encoding/binary"

	"github.com/argent-kv/argent"
)

// On-disk layout. Every node's Pebble database holds these key spaces, each
// marked by its first byte:
//
//	m<name>                          meta: applied index, dataset ID, horizons
//	k<key>                           latest version: flags, mod index, value
//	h<len16><key><mod64>             an older version of key, written when superseded
//	g<superseded64><mod64><key>      GC queue: what to drop when the horizon passes
//	l<index64>                       log entry: cumulative log bytes, wire entry
//
// All integers are big endian so byte order is numeric order.
const (
	spaceMeta    = 'm'
	spaceLatest  = 'k'
	spaceHistory = 'h'
	spaceGC      = 'g'
	spaceLog     = 'l'
)

// Meta keys.
var (
	metaFormat    = []byte("mformat")    // uint64 StoreFormatVersion
	metaApplied   = []byte("mapplied")   // index64, time64, chain[32]
	metaDataset   = []byte("mdataset")   // [16]byte
	metaNodeID    = []byte("mnode")      // [16]byte
	metaHorizon   = []byte("mhorizon")   // index64: oldest index MVCC reads can answer
	metaHistBytes = []byte("mhistbytes") // uint64: bytes held in h
	metaLogFirst  = []byte("mlogfirst")  // index64: oldest log entry kept
	metaRestoring = []byte("mrestoring") // present while a snapshot is being loaded
)

// StoreFormatVersion is the version of the on-disk layout above. Open refuses
// a store with another version.
const StoreFormatVersion uint64 = 1

// Version flags, the first byte of a k or h value.
const (
	flagTombstone byte = 1 << 0
)

func latestKey(key []byte) []byte {
	b := make([]byte, 0, 1+len(key))
	b = append(b, spaceLatest)
	return append(b, key...)
}

func historyKey(key []byte, mod argent.Index) []byte {
	b := make([]byte, 0, 1+2+len(key)+8)
	b = append(b, spaceHistory)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return binary.BigEndian.AppendUint64(b, uint64(mod))
}

func gcKey(superseded, mod argent.Index, key []byte) []byte {
	b := make([]byte, 0, 1+16+len(key))
	b = append(b, spaceGC)
	b = binary.BigEndian.AppendUint64(b, uint64(superseded))
	b = binary.BigEndian.AppendUint64(b, uint64(mod))
	return append(b, key...)
}

func parseGCKey(k []byte) (superseded, mod argent.Index, key []byte, ok bool) {
	if len(k) < 17 || k[0] != spaceGC {
		return 0, 0, nil, false
	}
	return argent.Index(binary.BigEndian.Uint64(k[1:9])), argent.Index(binary.BigEndian.Uint64(k[9:17])), k[17:], true
}

// GC queue value: time of the superseding batch, bytes it frees, kind.
const (
	gcKindHistory   byte = 0 // drop h<key><mod>
	gcKindTombstone byte = 1 // drop k<key> if it is still a tombstone at mod
)

func gcValue(t int64, size uint64, kind byte) []byte {
	b := make([]byte, 0, 17)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	b = binary.BigEndian.AppendUint64(b, size)
	return append(b, kind)
}

func parseGCValue(v []byte) (t int64, size uint64, kind byte, ok bool) {
	if len(v) != 17 {
		return 0, 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(v[0:8])), binary.BigEndian.Uint64(v[8:16]), v[16], true
}

func logKey(i argent.Index) []byte {
	b := make([]byte, 0, 9)
	b = append(b, spaceLog)
	return binary.BigEndian.AppendUint64(b, uint64(i))
}

func parseLogKey(k []byte) (argent.Index, bool) {
	if len(k) != 9 || k[0] != spaceLog {
		return 0, false
	}
	return argent.Index(binary.BigEndian.Uint64(k[1:])), true
}

// version is a decoded k or h value.
type version struct {
	tombstone bool
	mod       argent.Index
	value     []byte
}

// encodeLatest encodes a k value: flags, mod index, value.
func encodeLatest(tombstone bool, mod argent.Index, value []byte) []byte {
	b := make([]byte, 0, 9+len(value))
	var f byte
	if tombstone {
		f |= flagTombstone
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint64(b, uint64(mod))
	return append(b, value...)
}

func decodeLatest(v []byte) (version, bool) {
	if len(v) < 9 {
		return version{}, false
	}
	return version{tombstone: v[0]&flagTombstone != 0, mod: argent.Index(binary.BigEndian.Uint64(v[1:9])), value: v[9:]}, true
}

// encodeHistory encodes an h value: flags, value (the mod index is in the key).
func encodeHistory(tombstone bool, value []byte) []byte {
	b := make([]byte, 0, 1+len(value))
	var f byte
	if tombstone {
		f |= flagTombstone
	}
	b = append(b, f)
	return append(b, value...)
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
