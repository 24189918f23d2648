package kv

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
)

// Snapshot is a consistent view of the store at one applied index, for
// sending to a child that must bootstrap.
type Snapshot struct {
	snap    *pebble.Snapshot
	State   State
	Dataset argent.DatasetID
}

// NewSnapshot returns a view of the store at its current applied index.
// Close it when done: it pins old data on disk.
func (s *Store) NewSnapshot() (*Snapshot, error) {
	if s.restoring.Load() {
		return nil, fmt.Errorf("%w: loading a snapshot", argent.ErrUnavailable)
	}
	snap := s.db.NewSnapshot()
	// A restore may have begun since the check above: ask the snapshot
	// itself, which either predates the wipe or holds the restoring mark.
	if _, closer, err := snap.Get(metaRestoring); err == nil {
		closer.Close()
		snap.Close()
		return nil, fmt.Errorf("%w: loading a snapshot", argent.ErrUnavailable)
	}
	st := &State{}
	raw, closer, err := snap.Get(metaApplied)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		snap.Close()
		return nil, fmt.Errorf("kv: snapshot: %w", err)
	default:
		st, err = decodeState(raw)
		closer.Close()
		if err != nil {
			snap.Close()
			return nil, err
		}
	}
	return &Snapshot{snap: snap, State: *st, Dataset: s.Dataset()}, nil
}

// Records calls fn for each live key after the key after (from the first
// key when after is empty), in key order. Arguments are valid only during
// fn. Starting after the last key a receiver holds resumes a cut transfer.
func (sn *Snapshot) Records(after []byte, fn func(key []byte, mod argent.Index, value []byte) error) error {
	it, err := sn.snap.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceLatest}, UpperBound: []byte{spaceLatest + 1}})
	if err != nil {
		return fmt.Errorf("kv: snapshot records: %w", err)
	}
	defer it.Close()
	var ok bool
	if len(after) > 0 {
		ok = it.SeekGE(append(latestKey(after), 0))
	} else {
		ok = it.First()
	}
	for ; ok; ok = it.Next() {
		v, good := decodeLatest(it.Value())
		if !good {
			return fmt.Errorf("kv: latest version of %q is malformed: %w", it.Key()[1:], argent.ErrCorruption)
		}
		if v.tombstone {
			continue
		}
		if err := fn(it.Key()[1:], v.mod, v.value); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("kv: snapshot records: %w", err)
	}
	return nil
}

// Close releases the snapshot.
func (sn *Snapshot) Close() error { return sn.snap.Close() }

// restoreFlush is the batch size at which a Restore writes what it holds.
const restoreFlush = 4 << 20

// Restore replaces the store's contents with a snapshot received from a
// parent. While it is open, and after a crash until a later Restore
// finishes, the store serves no reads (Restoring reports true), so no reader
// ever sees a half-loaded state or a state older than one it saw before.
type Restore struct {
	s       *Store
	st      State
	b       *pebble.Batch
	records uint64
	last    []byte
	done    bool
}

// BeginRestore starts loading a snapshot of dataset ds at state st. It wipes
// the store's data, history and log. It waits while a Writer or Trim runs.
func (s *Store) BeginRestore(ds argent.DatasetID, st State) (*Restore, error) {
	if _, err := s.AdoptDataset(ds); err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	if cur := s.Applied(); st.Index < cur {
		s.writeMu.Unlock()
		return nil, fmt.Errorf("kv: snapshot at %d is older than the applied index %d", st.Index, cur)
	}
	s.restoring.Store(true)
	// The log is wiped below, so it is empty: LogFirst is Applied()+1. Open
	// otherwise looks for the entry at the applied index after a cut
	// restore and refuses the store as corrupt.
	empty := uint64(s.Applied()) + 1
	b := s.db.NewBatch()
	_ = b.Set(metaRestoring, []byte{1}, nil)
	_ = b.Set(metaLogFirst, putUint64(empty), nil)
	for _, sp := range []byte{spaceLatest, spaceHistory, spaceGC, spaceLog} {
		_ = b.DeleteRange([]byte{sp}, []byte{sp + 1}, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		b.Close()
		s.writeMu.Unlock()
		return nil, fmt.Errorf("kv: begin restore: %w", err)
	}
	b.Close()
	s.logFirst.Store(empty)
	s.mu.Lock()
	s.mu.logCum = 0
	s.mu.Unlock()
	return &Restore{s: s, st: st, b: s.db.NewBatch()}, nil
}

// Add writes one record. Records must come in increasing key order.
func (r *Restore) Add(key []byte, mod argent.Index, value []byte) error {
	if mod > r.st.Index || mod == 0 {
		return fmt.Errorf("%w: record %q has mod index %d, snapshot is at %d", argent.ErrCorruption, key, mod, r.st.Index)
	}
	if err := r.b.Set(latestKey(key), encodeLatest(false, mod, value), nil); err != nil {
		return fmt.Errorf("kv: restore %q: %w", key, err)
	}
	r.records++
	r.last = append(r.last[:0], key...)
	if r.b.Len() >= restoreFlush {
		if err := r.b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("kv: restore: %w", err)
		}
		r.b.Reset()
	}
	return nil
}

// Records returns the number of records added.
func (r *Restore) Records() uint64 { return r.records }

// LastKey returns the last key added, to resume a cut transfer after it.
func (r *Restore) LastKey() []byte { return r.last }

// Finish checks that want records arrived, makes the snapshot's state the
// store's applied state (with no history below it and an empty log), syncs,
// and publishes it.
func (r *Restore) Finish(want uint64) error {
	if r.done {
		return fmt.Errorf("kv: restore already finished")
	}
	defer r.finish()
	if want != r.records {
		return fmt.Errorf("%w: snapshot trailer says %d records, got %d", argent.ErrCorruption, want, r.records)
	}
	s := r.s
	_ = r.b.Set(metaApplied, encodeState(&r.st), nil)
	_ = r.b.Set(metaHorizon, putUint64(uint64(r.st.Index)), nil)
	_ = r.b.Set(metaLogFirst, putUint64(uint64(r.st.Index)+1), nil)
	_ = r.b.Set(metaHistBytes, putUint64(0), nil)
	_ = r.b.Delete(metaRestoring, nil)
	if err := r.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("kv: finish restore at %d: %w", r.st.Index, err)
	}
	s.mu.Lock()
	s.mu.histBytes = 0
	s.mu.logCum = 0
	s.mu.committed = r.st
	s.mu.Unlock()
	s.horizon.Store(uint64(r.st.Index))
	s.logFirst.Store(uint64(r.st.Index) + 1)
	st := r.st
	s.publish(&st)
	s.restoring.Store(false)
	return nil
}

// Abort stops the restore. The store stays in the restoring state (no reads)
// until a later Restore finishes.
func (r *Restore) Abort() {
	if !r.done {
		r.finish()
	}
}

func (r *Restore) finish() {
	r.done = true
	_ = r.b.Close()
	r.s.writeMu.Unlock()
}
