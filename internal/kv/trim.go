package kv

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// trimBatchLimit bounds the work of one Trim call so that it never holds a
// huge batch in memory; the caller runs Trim again while it reports progress.
const trimBatchLimit = 20000

// TrimResult says what one Trim call dropped.
type TrimResult struct {
	Versions   int // superseded versions and tombstones dropped
	LogEntries int // log entries dropped
}

// Trim drops superseded versions and log entries that fall outside the
// history and log windows (by time and by bytes). It does a bounded amount of
// work; call it again while it drops something. Trim waits for an open
// Writer; readers go on alongside it.
func (s *Store) Trim() (TrimResult, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var r TrimResult
	n, err := s.trimHistory()
	r.Versions = n
	if err != nil {
		return r, err
	}
	r.LogEntries, err = s.trimLog()
	return r, err
}

// trimHistory drops GC-queue entries in whole groups of one superseding
// index, oldest first, while they are older than the history window or the
// history is over its byte budget. The horizon moves up before anything is
// deleted, so a reader that might need a dropped version sees the new horizon
// when it rechecks.
func (s *Store) trimHistory() (int, error) {
	cutoff := s.opts.Now().Add(-s.opts.HistoryDuration).UnixNano()
	published := s.Applied()
	s.mu.Lock()
	hist := s.mu.histBytes
	s.mu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceGC}, UpperBound: []byte{spaceGC + 1}})
	if err != nil {
		return 0, fmt.Errorf("kv: trim history: %w", err)
	}
	defer it.Close()
	type drop struct {
		key  []byte
		mod  argent.Index
		kind byte
	}
	var (
		drops    []drop
		gcKeys   [][]byte
		freed    uint64
		horizon  argent.Index
		groupEnd argent.Index // superseding index of the group being collected
	)
	for ok := it.First(); ok; ok = it.Next() {
		sup, mod, key, good := parseGCKey(it.Key())
		t, size, kind, good2 := parseGCValue(it.Value())
		if !good || !good2 {
			return 0, fmt.Errorf("kv: gc entry %x is malformed: %w", it.Key(), argent.ErrCorruption)
		}
		if sup > published {
			// Never move the horizon past what readers may read at.
			break
		}
		if sup != groupEnd {
			// A new group starts: stop here if the last one was enough.
			if len(drops) >= trimBatchLimit {
				break
			}
			if t >= cutoff && hist-freed <= uint64(s.opts.HistoryBytes) {
				break
			}
			groupEnd = sup
		}
		drops = append(drops, drop{key: append([]byte(nil), key...), mod: mod, kind: kind})
		gcKeys = append(gcKeys, append([]byte(nil), it.Key()...))
		if kind == gcKindHistory {
			// Only superseded versions count in histBytes (Writer.supersede);
			// counting tombstones too made hist-freed wrap below zero and
			// drop groups that were still inside both windows.
			freed += size
		}
		horizon = sup
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("kv: trim history: %w", err)
	}
	if len(drops) == 0 {
		return 0, nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var dropped [][]byte // tombstones gone from the k key space
	for i, d := range drops {
		switch d.kind {
		case gcKindHistory:
			_ = b.Delete(historyKey(d.key, d.mod), nil)
		case gcKindTombstone:
			// Drop the tombstone only if no later write replaced it.
			gone, err := s.dropTombstone(b, d.key, d.mod)
			if err != nil {
				return 0, err
			}
			if gone {
				dropped = append(dropped, d.key)
			}
		}
		_ = b.Delete(gcKeys[i], nil)
	}
	if horizon > argent.Index(s.horizon.Load()) {
		s.horizon.Store(uint64(horizon))
	}
	// Persist the horizon in force, not the dropped groups' one: after a
	// resumed snapshot load, replayed entries leave groups below it.
	_ = b.Set(metaHorizon, putUint64(s.horizon.Load()), nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.histBytes -= min(freed, s.mu.histBytes)
	_ = b.Set(metaHistBytes, putUint64(s.mu.histBytes), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("kv: trim history: %w", err)
	}
	if s.cache != nil && len(dropped) > 0 {
		s.cache.invalidate(dropped)
	}
	return len(drops), nil
}

// dropTombstone deletes key's latest version if it is still the tombstone
// written at mod, and reports whether it did. The caller holds writeMu, so
// no write can slip in between the check and the delete.
func (s *Store) dropTombstone(b *pebble.Batch, key []byte, mod argent.Index) (bool, error) {
	v, ok, err := readLatest(s.db, key)
	if err != nil {
		return false, fmt.Errorf("kv: trim tombstone: %w", err)
	}
	if !ok || !v.tombstone || v.mod != mod {
		return false, nil
	}
	_ = b.Delete(latestKey(key), nil)
	return true, nil
}

// trimLog drops the oldest log entries while they are older than the log
// window or the log is over its byte budget.
func (s *Store) trimLog() (int, error) {
	cutoff := s.opts.Now().Add(-s.opts.LogDuration).UnixNano()
	first := s.LogFirst()
	last := s.Applied()
	if first > last {
		return 0, nil
	}
	s.mu.Lock()
	cum := s.mu.logCum
	s.mu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(first), UpperBound: logKey(last + 1)})
	if err != nil {
		return 0, fmt.Errorf("kv: trim log: %w", err)
	}
	defer it.Close()
	newFirst := first
	for ok := it.First(); ok && int(newFirst-first) < trimBatchLimit; ok = it.Next() {
		raw := it.Value()
		if len(raw) < 8 {
			return 0, fmt.Errorf("kv: log entry %x is malformed: %w", it.Key(), argent.ErrCorruption)
		}
		// Bytes held from this entry on: cum minus the bytes before it.
		held := cum - binary.BigEndian.Uint64(raw[:8]) + uint64(len(raw)-8)
		e, err := wire.DecodeEntry(raw[8:])
		if err != nil {
			return 0, fmt.Errorf("kv: trim log: %w", err)
		}
		if e.Time >= cutoff && held <= uint64(s.opts.LogBytes) {
			break
		}
		newFirst = e.Index + 1
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("kv: trim log: %w", err)
	}
	if newFirst == first {
		return 0, nil
	}
	s.logFirst.Store(uint64(newFirst))
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(logKey(first), logKey(newFirst), nil)
	_ = b.Set(metaLogFirst, putUint64(uint64(newFirst)), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("kv: trim log: %w", err)
	}
	return int(newFirst - first), nil
}
