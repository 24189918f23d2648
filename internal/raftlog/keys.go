package raftlog

import (
	"encoding/binary"
	"fmt"

	"github.com/argent-kv/argent"
)

// On-disk layout. The Raft storage is a Pebble database of its own; its key
// spaces are marked by their first byte:
//
//	mraftlog        uint64 FormatVersion, written when the storage is created
//	mhardstate      raftpb.HardState
//	msnapshot       raftpb.Snapshot: metadata and the caller's small data
//	mconfstate      applied index64, then raftpb.ConfState (SetConfState)
//	mmembers        the caller's record of the members' addresses (SetMembers)
//	mpublished      index64: the Raft index up to which the caller served (SetPublished)
//	malarms         the caller's record of the group's disk alarms (SetAlarms)
//	t<index64>      term64, cum64: the term of the entry at index and the
//	                bytes of the entries up to and including it
//	e<index64>      raftpb.Entry
//
// The t records cover [base, last] and the e records (base, last], where
// base is the index of the dummy entry (the snapshot or compaction base,
// FirstIndex-1): the base keeps its term, which Term must answer, and its
// cumulative size, from which Bytes counts. So Term and Bytes never read an
// entry, and Open finds the bounds of the log from the first and last t key.
// Integers are big endian, so byte order is index order.
const (
	spaceTerm  = 't'
	spaceEntry = 'e'
)

var (
	keyFormat    = []byte("mraftlog")
	keyHardState = []byte("mhardstate")
	keySnapshot  = []byte("msnapshot")
	keyConfState = []byte("mconfstate")
	keyMembers   = []byte("mmembers")
	keyPublished = []byte("mpublished")
	keyAlarms    = []byte("malarms")
)

// FormatVersion is the version of the layout above. Open refuses a storage
// of another version.
const FormatVersion uint64 = 1

const indexKeyLen = 9

func indexKey(space byte, i uint64) []byte {
	b := make([]byte, indexKeyLen)
	putIndexKey(b, space, i)
	return b
}

func putIndexKey(dst []byte, space byte, i uint64) {
	dst[0] = space
	binary.BigEndian.PutUint64(dst[1:], i)
}

func entryKey(i uint64) []byte { return indexKey(spaceEntry, i) }
func termKey(i uint64) []byte  { return indexKey(spaceTerm, i) }

// parseIndexKey returns the index of a key of space.
func parseIndexKey(space byte, k []byte) (uint64, bool) {
	if len(k) != indexKeyLen || k[0] != space {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// spaceBounds returns the bounds of an iterator over the whole of space.
func spaceBounds(space byte) (lower, upper []byte) {
	return []byte{space}, []byte{space + 1}
}

// position is what a t record holds.
type position struct {
	term uint64
	cum  uint64 // bytes of the entries up to and including this one
}

const positionLen = 16

func (p position) encode() []byte {
	b := make([]byte, positionLen)
	binary.BigEndian.PutUint64(b, p.term)
	binary.BigEndian.PutUint64(b[8:], p.cum)
	return b
}

func decodePosition(i uint64, v []byte) (position, error) {
	if len(v) != positionLen {
		return position{}, fmt.Errorf("raftlog: term record of index %d has %d bytes, want %d: %w", i, len(v), positionLen, argent.ErrCorruption)
	}
	return position{term: binary.BigEndian.Uint64(v), cum: binary.BigEndian.Uint64(v[8:])}, nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// getUint64 decodes the first 8 bytes of v, which the caller checked it has.
func getUint64(v []byte) uint64 { return binary.BigEndian.Uint64(v) }
