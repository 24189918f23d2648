package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/wire"
)

// readerGone is the error of a read (op of key) not started because its
// context ended with err.
func readerGone(op string, key []byte, err error) error {
	return fmt.Errorf("%w: kv: %s %q: the reader went away: %w", argent.ErrUnavailable, op, key, err)
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
// modified: it may be shared with the store's cache. A read whose ctx has
// ended is not started (a read of the local disk is too short to be worth
// stopping half-way): it fails with an error wrapping argent.ErrUnavailable
// and ctx's error, as a proxy's read that lost its reader does.
func (s *Store) Get(ctx context.Context, key []byte, at argent.Index) (argent.Value, error) {
	if err := ctx.Err(); err != nil {
		return argent.Value{}, readerGone("get", key, err)
	}
	if err := s.checkReadable(at); err != nil {
		return argent.Value{}, err
	}
	v, err := s.get(key, at)
	// Any answer, an error too, may come from history a trim dropped
	// meanwhile: then the reader learns that it read below the horizon.
	if rerr := s.recheck(at); rerr != nil {
		return argent.Value{}, rerr
	}
	return v, err
}

func (s *Store) get(key []byte, at argent.Index) (argent.Value, error) {
	var gen uint64
	if s.cache != nil {
		if v, ok := s.cache.get(key); ok {
			return s.versionAt(key, v, at)
		}
		gen = s.cache.gen.Load()
	}
	v, found, err := readLatest(s.db, key)
	if err != nil {
		return argent.Value{}, err
	}
	if !found {
		return argent.Value{}, argent.ErrNotFound
	}
	if s.cache != nil {
		s.cache.fill(key, v, gen)
	}
	return s.versionAt(key, v, at)
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
	v, ok := decodeVersion(raw)
	if !ok {
		return version{}, false, fmt.Errorf("kv: latest version of %q has %d bytes: %w", key, len(raw), argent.ErrCorruption)
	}
	v.value = append([]byte(nil), v.value...)
	return v, true, nil
}

// versionAt walks from v, a version of key, back along the prev links to
// the version visible at index at.
func (s *Store) versionAt(key []byte, v version, at argent.Index) (argent.Value, error) {
	for v.mod > at {
		if v.prev == 0 {
			return argent.Value{}, argent.ErrNotFound
		}
		older, err := s.olderVersion(key, v.mod, v.prev)
		if err != nil {
			return argent.Value{}, err
		}
		v = older
	}
	if v.tombstone {
		return argent.Value{}, argent.ErrNotFound
	}
	return argent.Value{Value: v.value, ModIndex: v.mod}, nil
}

// olderVersion returns the version of key with mod index mod, which the
// entry at index sup superseded: its copy in h if the Writer made one, else
// the last op on key in the log record of entry mod, with the prev that
// record's trailer holds for it.
func (s *Store) olderVersion(key []byte, sup, mod argent.Index) (version, error) {
	raw, closer, err := s.db.Get(indexedKey(spaceHistory, sup, key))
	switch {
	case err == nil:
		v, ok := decodeVersion(raw)
		if ok {
			v.value = append([]byte(nil), v.value...)
		}
		_ = closer.Close()
		if !ok || v.mod != mod {
			return version{}, fmt.Errorf("kv: copy of %q superseded at %d is damaged: %w", key, sup, argent.ErrCorruption)
		}
		return v, nil
	case !errors.Is(err, pebble.ErrNotFound):
		return version{}, fmt.Errorf("kv: history of %q: %w", key, err)
	}
	rec, done, err := logstore.Get(s.db, mod)
	if errors.Is(err, logstore.ErrMissing) {
		// A trim dropped it: only possible below the horizon, which the
		// reader's recheck reports.
		return version{}, fmt.Errorf("%w: the entry that wrote %q at %d is no longer kept", argent.ErrCompacted, key, mod)
	}
	if err != nil {
		return version{}, fmt.Errorf("kv: history of %q: %w", key, err)
	}
	defer done()
	return versionInRecord(rec, key, mod)
}

// versionInRecord returns the version of key that the entry of rec (at
// index mod) left: the value of its last op on key, which must be a put (a
// deleted key's version is always copied when superseded).
func versionInRecord(rec logstore.Record, key []byte, mod argent.Index) (version, error) {
	last := -1
	var put argent.Op
	err := wire.EachOp(rec.Entry, func(i int, op argent.Op) bool {
		switch op.Type {
		case argent.OpDeletePrefix:
			if bytes.HasPrefix(key, op.Key) {
				last, put = i, op
			}
		default:
			if bytes.Equal(op.Key, key) {
				last, put = i, op
			}
		}
		return true
	})
	if err != nil {
		return version{}, fmt.Errorf("kv: entry %d: %w", mod, err)
	}
	if last < 0 || put.Type != argent.OpPut {
		return version{}, fmt.Errorf("kv: entry %d does not leave a value of %q: %w", mod, key, argent.ErrCorruption)
	}
	prev, err := nthUvarint(rec.Prevs, last)
	if err != nil {
		return version{}, fmt.Errorf("kv: entry %d: %w", mod, err)
	}
	return version{mod: mod, prev: argent.Index(prev), value: append([]byte(nil), put.Value...)}, nil
}

// nthUvarint returns the n-th (from 0) uvarint of b.
func nthUvarint(b []byte, n int) (uint64, error) {
	for i := 0; ; i++ {
		v, w := binary.Uvarint(b)
		if w <= 0 {
			return 0, fmt.Errorf("%w: record trailer has no prev for op %d", argent.ErrCorruption, n)
		}
		if i == n {
			return v, nil
		}
		b = b[w:]
	}
}

// Scan returns up to limit live keys with the given prefix that sort after
// the key after (all keys if after is empty), with their values at index at.
// more reports whether further keys follow. A scan whose ctx has ended is
// not started, as a Get.
func (s *Store) Scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index) (items []argent.Item, more bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, readerGone("scan", prefix, err)
	}
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
		v, good := decodeVersion(it.Value())
		if !good {
			return nil, false, fmt.Errorf("kv: latest version of %q is malformed: %w", it.Key()[1:], argent.ErrCorruption)
		}
		key := it.Key()[1:]
		var item argent.Item
		if v.mod <= at {
			if v.tombstone {
				continue
			}
			item = argent.Item{Key: append([]byte(nil), key...), Value: argent.Value{Value: append([]byte(nil), v.value...), ModIndex: v.mod}}
		} else {
			hv, err := s.versionAt(key, v, at)
			if errors.Is(err, argent.ErrNotFound) {
				continue
			}
			if err != nil {
				if rerr := s.recheck(at); rerr != nil {
					err = rerr // a trim dropped what the read needed
				}
				return nil, false, err
			}
			item = argent.Item{Key: append([]byte(nil), key...), Value: hv}
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

// ReadLog calls fn for each log entry from index from up to the published
// applied index, in order, stopping after an entry for which fn returns
// false, or once maxBytes of entries were read (at least one entry is always
// read). It returns the index after the last entry passed to fn. An index
// below LogFirst gives ErrCompacted. Entries are valid only during fn.
func (s *Store) ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error) {
	if first := s.LogFirst(); from < first {
		return from, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, first, from)
	}
	next, err := logstore.Read(s.db, from, s.Applied(), maxBytes, fn)
	if err != nil {
		return next, fmt.Errorf("kv: %w", err)
	}
	return next, nil
}
