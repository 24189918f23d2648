package kv

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pebblelog"
)

// trimBatchLimit bounds the tombstones one Trim call drops, so that it never
// holds a huge batch in memory; the caller runs Trim again while it reports
// progress.
const trimBatchLimit = 20000

// TrimResult says what one Trim call did.
type TrimResult struct {
	Horizon    int // indexes the MVCC horizon moved past
	Tombstones int // tombstone queue entries handled (dropped, or replaced since)
	LogEntries int // log entries dropped
}

// Progress reports whether the call changed anything.
func (r TrimResult) Progress() bool { return r.Horizon != 0 || r.Tombstones != 0 || r.LogEntries != 0 }

// logPlan is a trim of the log below X that waits until no read at or
// above the horizon can need a version written by an entry below X: every
// version the log would take away was superseded at or before A (the
// committed index when the plan was made), or was copied to h because the
// Writers that superseded it saw copyBelow >= X.
type logPlan struct {
	x, a argent.Index
}

// Trim moves the MVCC horizon up to the history window (by time and by
// bytes), drops what reads at or above it no longer need (copies of
// superseded versions, tombstones), and drops log entries that fall outside
// the log window. It does a bounded amount of work; call it again while it
// reports progress. Trim waits for an open Writer; readers go on alongside
// it.
//
// The history of a key is read from the log (see Writer.supersede), so the
// horizon never goes below the log's first entry, and the log gives up an
// entry only once the versions it wrote are either copied or superseded at
// or below the horizon. To get there, a trim of the log first raises
// copyBelow (later Writers copy what the trim would take) and then waits
// for the horizon to pass the index committed at that moment. A log held
// past twice its budget (bytes or time) stops waiting: the horizon jumps
// up to that index, giving up history to keep the log within bounds.
func (s *Store) Trim() (r TrimResult, err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.Failed(); err != nil {
		return r, err
	}
	defer pebblelog.Catch(&err, s.fail)
	pub := s.Applied()
	first := s.LogFirst()
	if s.restoring.Load() || pub < first {
		return r, nil // nothing in the log, or a snapshot load under way
	}
	w, err := s.windows(first, pub)
	if err != nil {
		return r, err
	}
	horizon := min(max(s.Horizon(), w.history, w.logFirst-1), pub)
	s.mu.Lock()
	plan, committed := s.mu.logPlan, s.mu.committed.Index
	s.mu.Unlock()
	if plan == nil && w.logFirst > first {
		plan = &logPlan{x: w.logFirst, a: committed}
		s.copyBelow.Store(uint64(max(argent.Index(s.copyBelow.Load()), w.logFirst)))
	}
	trimTo := first
	if plan != nil && (horizon >= plan.a || (w.overdue && pub >= plan.a)) {
		horizon = max(horizon, plan.a)
		trimTo = min(plan.x, w.logFirst)
		plan = nil
	}
	s.mu.Lock()
	s.mu.logPlan = plan
	s.mu.Unlock()

	b := s.db.NewBatch()
	defer b.Close()
	if old := s.Horizon(); horizon > old {
		// The horizon moves up before anything is deleted, so a reader that
		// might need a dropped version sees the new horizon when it
		// rechecks.
		s.horizon.Store(uint64(horizon))
		r.Horizon = int(horizon - old)
		_ = b.Set(metaHorizon, putUint64(uint64(horizon)), nil)
		if err := b.DeleteRange(indexedBound(spaceHistory, 0), indexedBound(spaceHistory, horizon+1), nil); err != nil {
			return r, fmt.Errorf("kv: trim history: %w", err)
		}
	}
	dropped, handled, err := s.dropTombstones(b, horizon)
	if err != nil {
		return r, err
	}
	r.Tombstones = handled
	if trimTo > first {
		s.logFirst.Store(uint64(trimTo))
		if err := logstore.Delete(b, first, trimTo); err != nil {
			return r, fmt.Errorf("kv: trim log: %w", err)
		}
		_ = b.Set(metaLogFirst, putUint64(uint64(trimTo)), nil)
		r.LogEntries = int(trimTo - first)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return r, s.fail(fmt.Errorf("kv: trim: %w", err))
	}
	if s.cache != nil && len(dropped) > 0 {
		s.cache.invalidate(dropped)
	}
	return r, nil
}

// windows is where the history and log windows start now.
type windows struct {
	history  argent.Index // the horizon the history window asks for
	logFirst argent.Index // the first entry the log window keeps
	overdue  bool         // the log holds twice its budget (bytes or time)
}

// windows finds the starts of the history and log windows among the log
// entries first..pub by binary search on their commit times and sizes.
func (s *Store) windows(first, pub argent.Index) (windows, error) {
	var w windows
	now := s.opts.Now()
	rec, done, err := logstore.Get(s.db, first)
	if err != nil {
		return w, fmt.Errorf("kv: trim: %w", err)
	}
	base := rec.Cum - uint64(len(rec.Entry)) // Cum before the first entry
	done()
	rec, done, err = logstore.Get(s.db, pub)
	if err != nil {
		return w, fmt.Errorf("kv: trim: %w", err)
	}
	cum := rec.Cum
	done()
	// newest returns the newest entry of first..pub older than t, or with a
	// Cum below c when c > 0; first-1 if there is none.
	newest := func(t int64, c uint64) (argent.Index, error) {
		return logstore.Search(s.db, first, pub, func(r logstore.Record) (bool, error) {
			if c > 0 {
				return r.Cum < c, nil
			}
			rt, err := r.Time()
			return rt < t, err
		})
	}
	// keep returns the first entry to keep for the entries from it on to
	// take at most budget bytes.
	keep := func(budget int64) (argent.Index, error) {
		if budget < 0 || cum-base <= uint64(budget) {
			return first, nil
		}
		n, err := newest(0, cum-uint64(budget))
		return min(n+2, pub+1), err // n+1 is the last entry whose Cum is too low
	}
	// The horizon: the newest entry older than the history window, and
	// past the entries beyond its byte budget.
	n, err := newest(now.Add(-s.opts.HistoryDuration).UnixNano(), 0)
	if err != nil {
		return w, err
	}
	w.history = max(n, first-1)
	if n, err = keep(s.opts.HistoryBytes); err != nil {
		return w, err
	}
	w.history = max(w.history, n-1)
	// The log keeps the entries newer than its window and, within its byte
	// budget, the newest ones.
	if n, err = newest(now.Add(-s.opts.LogDuration).UnixNano(), 0); err != nil {
		return w, err
	}
	w.logFirst = n + 1
	if n, err = keep(s.opts.LogBytes); err != nil {
		return w, err
	}
	w.logFirst = max(w.logFirst, n)
	w.overdue = cum-base > 2*uint64(s.opts.LogBytes)
	if !w.overdue {
		n, err = newest(now.Add(-2*s.opts.LogDuration).UnixNano(), 0)
		w.overdue = n >= first
	}
	return w, err
}

// dropTombstones deletes, in b, the latest versions that are still the
// tombstones written at or below horizon (no read at or above it tells
// them from absent keys), and their queue entries, up to trimBatchLimit of
// them. It returns the keys dropped and the queue entries handled. The
// caller holds writeMu, so no write can slip in between the check and the
// delete.
func (s *Store) dropTombstones(b *pebble.Batch, horizon argent.Index) ([][]byte, int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: indexedBound(spaceTombstone, 0), UpperBound: indexedBound(spaceTombstone, horizon+1)})
	if err != nil {
		return nil, 0, fmt.Errorf("kv: trim tombstones: %w", err)
	}
	defer it.Close()
	var dropped [][]byte
	n := 0
	for ok := it.First(); ok && n < trimBatchLimit; ok = it.Next() {
		n++
		j, key, good := parseIndexedKey(spaceTombstone, it.Key())
		if !good {
			return nil, 0, fmt.Errorf("kv: tombstone queue key %x is malformed: %w", it.Key(), argent.ErrCorruption)
		}
		v, ok, err := readLatest(s.db, key)
		if err != nil {
			return nil, 0, fmt.Errorf("kv: trim tombstones: %w", err)
		}
		if ok && v.tombstone && v.mod == j {
			_ = b.Delete(latestKey(key), nil)
			dropped = append(dropped, append([]byte(nil), key...))
		}
		_ = b.Delete(it.Key(), nil)
	}
	if err := it.Error(); err != nil {
		return nil, 0, fmt.Errorf("kv: trim tombstones: %w", err)
	}
	return dropped, n, nil
}
