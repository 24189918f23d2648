// Package logstore is argent's log: the committed entries of a dataset in
// index order, kept in a Pebble database beside the state they built, so
// that one Pebble batch holds an entry and its effect on the state.
//
// An entry's record holds the entry exactly as it travels between nodes
// (its wire encoding, sent to children and watchers as it is) and, after it,
// the mod index each op's key had before the entry. Those let a reader walk
// a key's versions backwards through the log, so the store needs no copy of
// a superseded value while the log still holds the entry that wrote it.
//
//	b := db.NewBatch()
//	e, raw := a.Append(ops, now)            // next index, chain hash
//	logstore.Put(b, cum, raw, prevs)         // in the batch that applies it
//	logstore.Read(db, from, to, 4<<20, fn)  // stream it to a child
//
// The key space is 'l' followed by the index as 8 big-endian bytes, so byte
// order is index order.
package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// Space is the first byte of every log key.
const Space = 'l'

// Key returns the Pebble key of the entry at index i.
func Key(i argent.Index) []byte {
	b := make([]byte, 0, 9)
	b = append(b, Space)
	return binary.BigEndian.AppendUint64(b, uint64(i))
}

// ParseKey returns the index of a log key.
func ParseKey(k []byte) (argent.Index, bool) {
	if len(k) != 9 || k[0] != Space {
		return 0, false
	}
	return argent.Index(binary.BigEndian.Uint64(k[1:])), true
}

// Record is a decoded log record. Its slices alias the bytes it was
// decoded from.
type Record struct {
	// Cum is the sum of the wire sizes of every entry up to and including
	// this one since the log began (or was last wiped): the bytes of a range
	// of entries are the difference of two Cums.
	Cum uint64
	// Entry is the entry's wire encoding (wire.AppendEntry).
	Entry []byte
	// Prevs holds one uvarint per op of the entry: the mod index the op's
	// key had before this entry (0: absent, and for a delete_prefix op).
	Prevs []byte
}

// AppendRecord appends the record encoding of an entry to dst:
//
//	uint64  Cum (big endian)
//	uvarint length of Entry
//	Entry
//	Prevs
func AppendRecord(dst []byte, cum uint64, entry, prevs []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, cum)
	dst = binary.AppendUvarint(dst, uint64(len(entry)))
	dst = append(dst, entry...)
	return append(dst, prevs...)
}

// DecodeRecord splits a record into its parts without decoding the entry.
func DecodeRecord(v []byte) (Record, error) {
	if len(v) < 9 {
		return Record{}, fmt.Errorf("%w: log record of %d bytes", argent.ErrCorruption, len(v))
	}
	n, w := binary.Uvarint(v[8:])
	if w <= 0 || n > uint64(len(v)-8-w) {
		return Record{}, fmt.Errorf("%w: log record's entry length is damaged", argent.ErrCorruption)
	}
	body := v[8+w:]
	return Record{Cum: binary.BigEndian.Uint64(v[:8]), Entry: body[:n], Prevs: body[n:]}, nil
}

// Time returns the commit time of the record's entry without decoding its
// ops.
func (r Record) Time() (int64, error) {
	_, t, err := wire.EntryHeader(r.Entry)
	return t, err
}

// Put writes the record of the entry at index i into b, encoding it in
// place in the batch.
func Put(b *pebble.Batch, i argent.Index, cum uint64, entry, prevs []byte) error {
	var key [9]byte
	key[0] = Space
	binary.BigEndian.PutUint64(key[1:], uint64(i))
	n := 8 + uvarintLen(uint64(len(entry))) + len(entry) + len(prevs)
	op := b.SetDeferred(len(key), n)
	copy(op.Key, key[:])
	AppendRecord(op.Value[:0], cum, entry, prevs)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("logstore: write entry %d: %w", i, err)
	}
	return nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Get reads the record at index i from r. The record is valid until closer
// is closed. A missing record gives ErrMissing.
func Get(r pebble.Reader, i argent.Index) (Record, func(), error) {
	v, closer, err := r.Get(Key(i))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, nil, fmt.Errorf("%w: entry %d", ErrMissing, i)
	}
	if err != nil {
		return Record{}, nil, fmt.Errorf("logstore: read entry %d: %w", i, err)
	}
	rec, err := DecodeRecord(v)
	if err != nil {
		_ = closer.Close()
		return Record{}, nil, fmt.Errorf("logstore: entry %d: %w", i, err)
	}
	return rec, func() { _ = closer.Close() }, nil
}

// ErrMissing is returned by Get for an index the log does not hold.
var ErrMissing = errors.New("logstore: no such entry")

// Entry is an entry read back from the log: decoded, and its wire encoding,
// which can be sent as a frame payload as it is.
type Entry struct {
	argent.Entry
	Raw []byte
}

// Read calls fn for each entry of r from index from up to and including
// index to, in order, and stops after an entry for which fn returns false
// or once maxBytes of entries were read (at least one entry is always
// read; 0: no bound). It returns the index after the last entry passed to
// fn. Entries are valid only during fn. An index the log does not hold
// gives an error wrapping argent.ErrCompacted when it is the first one
// asked for (a trim got there first), else ErrCorruption.
func Read(r pebble.Reader, from, to argent.Index, maxBytes int, fn func(e *Entry) bool) (argent.Index, error) {
	if from > to {
		return from, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: Key(from), UpperBound: Key(to + 1)})
	if err != nil {
		return from, fmt.Errorf("logstore: read from %d: %w", from, err)
	}
	defer it.Close()
	next := from
	read := 0
	for ok := it.First(); ok; ok = it.Next() {
		i, good := ParseKey(it.Key())
		if !good {
			return next, fmt.Errorf("%w: log key %x is malformed", argent.ErrCorruption, it.Key())
		}
		if i != next {
			if next == from && i > from {
				return from, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, i, from)
			}
			return next, fmt.Errorf("%w: log has entry %d where %d was expected", argent.ErrCorruption, i, next)
		}
		v := it.Value()
		rec, err := DecodeRecord(v)
		if err != nil {
			return next, fmt.Errorf("logstore: entry %d: %w", i, err)
		}
		e, err := wire.DecodeEntry(rec.Entry)
		if err != nil {
			return next, fmt.Errorf("logstore: entry %d: %w", i, err)
		}
		if e.Index != i {
			return next, fmt.Errorf("%w: log key %d holds entry %d", argent.ErrCorruption, i, e.Index)
		}
		le := Entry{Entry: e, Raw: rec.Entry}
		if !fn(&le) {
			return next + 1, nil
		}
		next++
		read += len(v)
		if maxBytes > 0 && read >= maxBytes {
			break
		}
	}
	if err := it.Error(); err != nil {
		return next, fmt.Errorf("logstore: read from %d: %w", from, err)
	}
	if next == from {
		return from, fmt.Errorf("%w: log holds no entry %d", argent.ErrCompacted, from)
	}
	return next, nil
}

// Search returns the largest index n in [lo, hi] whose record satisfies
// before (which must hold for a prefix of the indexes and fail for the rest:
// commit times and Cums only grow), or lo-1 if none does. Every index in
// [lo, hi] must be in r. It reads O(log(hi-lo)) records.
func Search(r pebble.Reader, lo, hi argent.Index, before func(Record) (bool, error)) (argent.Index, error) {
	for lo <= hi {
		mid := lo + (hi-lo)/2
		rec, done, err := Get(r, mid)
		if err != nil {
			return 0, err
		}
		ok, err := before(rec)
		done()
		if err != nil {
			return 0, fmt.Errorf("logstore: entry %d: %w", mid, err)
		}
		if ok {
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	return lo - 1, nil
}

// Delete removes the records of indexes [from, to) in b.
func Delete(b *pebble.Batch, from, to argent.Index) error {
	if from >= to {
		return nil
	}
	if err := b.DeleteRange(Key(from), Key(to), nil); err != nil {
		return fmt.Errorf("logstore: delete entries %d..%d: %w", from, to-1, err)
	}
	return nil
}

// Next returns the entry that follows tip with ops: the next index, commit
// time now (never earlier than tip's, so times only grow along the log) and
// the chain hash from tip's.
func Next(tip argent.State, ops []argent.Op, now int64) argent.Entry {
	e := argent.Entry{Index: tip.Index + 1, Time: max(now, tip.Time), Ops: ops}
	e.Chain = wire.NextChain(tip.Chain, &e)
	return e
}

// Check returns an error unless e is the entry that may follow tip: the next
// index (else ErrCorruption) and a chain hash that follows from tip's (else
// ErrChainMismatch: the sender holds another history).
func Check(tip argent.State, e *argent.Entry) error {
	if e.Index != tip.Index+1 {
		return fmt.Errorf("%w: got entry %d, want %d", argent.ErrCorruption, e.Index, tip.Index+1)
	}
	if want := wire.NextChain(tip.Chain, e); want != e.Chain {
		return fmt.Errorf("%w: entry %d has chain %x, want %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], want[:8])
	}
	return nil
}

// StateOf returns the state after e.
func StateOf(e *argent.Entry) argent.State {
	return argent.State{Index: e.Index, Time: e.Time, Chain: e.Chain}
}
