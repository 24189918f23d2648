package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// Value is a key's value at some index.
type Value struct {
	Value    []byte
	ModIndex argent.Index // index of the batch that wrote this value
}

// Item is a key and its value, as returned by Scan.
type Item struct {
	Key []byte
	Value
}

// checkReadable returns an error unless reads at index at can be answered.
func (s *Store) checkReadable(at argent.Index) error {
	if s.closed.Load() {
		return argent.ErrClosed
	}
	if s.restoring.Load() {
		return fmt.Errorf("%w: loading a snapshot", argent.ErrUnavailable)
	}
	if cur := s.Applied(); at > cur {
		return fmt.Errorf("%w: read at %d, applied %d", argent.ErrFuture, at, cur)
	}
	if h := s.Horizon(); at < h {
		return fmt.Errorf("%w: read at %d, history starts at %d", argent.ErrCompacted, at, h)
	}
	return nil
}

// recheck is called after a read at index at: if the history horizon moved
// past at while the read ran, versions it needed may have been dropped; if a
// restore began, the data may have been wiped under the read.
func (s *Store) recheck(at argent.Index) error {
	if s.restoring.Load() {
		return fmt.Errorf("%w: loading a snapshot", argent.ErrUnavailable)
	}
	if h := s.Horizon(); at < h {
		return fmt.Errorf("%w: read at %d, history starts at %d", argent.ErrCompacted, at, h)
	}
	return nil
}

// Get returns key's value at index at, which must lie between Horizon() and
// Applied(). An absent key gives ErrNotFound. The returned value must not be
// modified: it may be shared with the store's cache.
func (s *Store) Get(key []byte, at argent.Index) (Value, error) {
	if err := s.checkReadable(at); err != nil {
		return Value{}, err
	}
	v, err := s.get(key, at)
	if err == nil || errors.Is(err, argent.ErrNotFound) {
		if rerr := s.recheck(at); rerr != nil {
			return Value{}, rerr
		}
	}
	return v, err
}

func (s *Store) get(key []byte, at argent.Index) (Value, error) {
	var gen uint64
	if s.cache != nil {
		if v, ok := s.cache.get(key); ok {
			if out, err, ok := versionAt(v, at); ok {
				return out, err
			}
			return s.getHistory(key, at)
		}
		gen = s.cache.gen.Load()
	}
	v, found, err := readLatest(s.db, key)
	if err != nil {
		return Value{}, err
	}
	if !found {
		return Value{}, argent.ErrNotFound
	}
	if s.cache != nil {
		s.cache.fill(key, v, gen)
	}
	if out, err, ok := versionAt(v, at); ok {
		return out, err
	}
	return s.getHistory(key, at)
}

// readLatest reads key's latest version (the k key space) from r, the store
// or a Writer's batch, copying the value out of Pebble's buffer.
func readLatest(r pebble.Reader, key []byte) (version, bool, error) {
	raw, closer, err := r.Get(latestKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return version{}, false, nil
	}
	if err != nil {
		return version{}, false, fmt.Errorf("kv: read %q: %w", key, err)
	}
	defer closer.Close()
	v, ok := decodeLatest(raw)
	if !ok {
		return version{}, false, fmt.Errorf("kv: latest version of %q has %d bytes: %w", key, len(raw), argent.ErrCorruption)
	}
	v.value = append([]byte(nil), v.value...)
	return v, true, nil
}

// getHistory finds the newest version of key with a mod index at or below at.
func (s *Store) getHistory(key []byte, at argent.Index) (Value, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: historyKey(key, 0), UpperBound: historyKey(key, at+1)})
	if err != nil {
		return Value{}, fmt.Errorf("kv: history of %q: %w", key, err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return Value{}, fmt.Errorf("kv: history of %q: %w", key, err)
		}
		return Value{}, argent.ErrNotFound
	}
	k, raw := it.Key(), it.Value()
	if len(raw) < 1 || len(k) < 8 {
		return Value{}, fmt.Errorf("kv: history version of %q is malformed: %w", key, argent.ErrCorruption)
	}
	if raw[0]&flagTombstone != 0 {
		return Value{}, argent.ErrNotFound
	}
	return Value{Value: append([]byte(nil), raw[1:]...), ModIndex: argent.Index(binary.BigEndian.Uint64(k[len(k)-8:]))}, nil
}

// Scan returns up to limit live keys with the given prefix that sort after
// the key after (all keys if after is empty), with their values at index at.
// more reports whether further keys follow.
func (s *Store) Scan(prefix, after []byte, limit int, at argent.Index) (items []Item, more bool, err error) {
	if err := s.checkReadable(at); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("%w: scan limit %d", argent.ErrInvalid, limit)
	}
	lower := latestKey(prefix)
	upper := prefixEnd(lower)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, fmt.Errorf("kv: scan %q: %w", prefix, err)
	}
	defer it.Close()
	var ok bool
	if len(after) > 0 && bytes.Compare(after, prefix) >= 0 {
		ok = it.SeekGE(append(latestKey(after), 0))
	} else {
		ok = it.First()
	}
	for ; ok; ok = it.Next() {
		v, good := decodeLatest(it.Value())
		if !good {
			return nil, false, fmt.Errorf("kv: latest version of %q is malformed: %w", it.Key()[1:], argent.ErrCorruption)
		}
		key := it.Key()[1:]
		var item Item
		if v.mod <= at {
			if v.tombstone {
				continue
			}
			item = Item{Key: append([]byte(nil), key...), Value: Value{Value: append([]byte(nil), v.value...), ModIndex: v.mod}}
		} else {
			hv, err := s.getHistory(key, at)
			if errors.Is(err, argent.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			item = Item{Key: append([]byte(nil), key...), Value: hv}
		}
		if len(items) == limit {
			more = true
			break
		}
		items = append(items, item)
	}
	if err := it.Error(); err != nil {
		return nil, false, fmt.Errorf("kv: scan %q: %w", prefix, err)
	}
	if err := s.recheck(at); err != nil {
		return nil, false, err
	}
	return items, more, nil
}

// LogEntry is one log entry read back from the store: the decoded entry and
// its wire encoding, which can be sent as a frame payload as it is.
type LogEntry struct {
	argent.Entry
	Raw []byte
}

// ReadLog calls fn for each log entry from index from up to the published
// applied index, in order, stopping after an entry for which fn returns false, or once maxBytes
// of entries were read (at least one entry is always read). It returns the
// index after the last entry passed to fn. An index below LogFirst gives
// ErrCompacted. Entries are valid only during fn.
func (s *Store) ReadLog(from argent.Index, maxBytes int, fn func(e *LogEntry) bool) (argent.Index, error) {
	if from < s.LogFirst() {
		return from, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, s.LogFirst(), from)
	}
	last := s.Applied()
	if from > last {
		return from, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(from), UpperBound: logKey(last + 1)})
	if err != nil {
		return from, fmt.Errorf("kv: read log from %d: %w", from, err)
	}
	defer it.Close()
	next := from
	read := 0
	for ok := it.First(); ok; ok = it.Next() {
		i, good := parseLogKey(it.Key())
		raw := it.Value()
		if !good || len(raw) < 8 {
			return next, fmt.Errorf("kv: log key %x is malformed: %w", it.Key(), argent.ErrCorruption)
		}
		if i != next {
			// A trim raced with this read and removed the entries asked for.
			if next == from && i > from {
				return from, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, i, from)
			}
			return next, fmt.Errorf("kv: log has entry %d where %d was expected: %w", i, next, argent.ErrCorruption)
		}
		e, err := wire.DecodeEntry(raw[8:])
		if err != nil {
			return next, fmt.Errorf("kv: log entry %d: %w", i, err)
		}
		le := LogEntry{Entry: e, Raw: raw[8:]}
		if !fn(&le) {
			return next + 1, nil
		}
		next++
		read += len(raw)
		if maxBytes > 0 && read >= maxBytes {
			break
		}
	}
	if err := it.Error(); err != nil {
		return next, fmt.Errorf("kv: read log from %d: %w", from, err)
	}
	if next == from && from < s.LogFirst() {
		// Trimmed between the first check and the iterator.
		return from, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, s.LogFirst(), from)
	}
	return next, nil
}
