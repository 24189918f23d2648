package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/pebblelog"
)

// Snapshot is a consistent view of the store at one applied index, for
// sending to a child that must bootstrap.
type Snapshot struct {
	snap    *pebble.Snapshot
	State   argent.State
	Dataset argent.DatasetID
	Source  uint64 // the store's Source at State
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
	// The snapshot holds all that was committed, also by CommitNoSync:
	// make it durable, or a crash could take back a state a child loaded.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		snap.Close()
		return nil, fmt.Errorf("kv: snapshot: sync: %w", err)
	}
	st := &argent.State{}
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
	var source uint64
	if raw, closer, err := snap.Get(metaSource); err == nil {
		source, _ = getUint64(raw)
		closer.Close()
	}
	return &Snapshot{snap: snap, State: *st, Dataset: s.Dataset(), Source: source}, nil
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
		v, good := decodeVersion(it.Value())
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

// RestoreProgress is what a snapshot load has done so far. It is kept in the
// store (in the same Pebble batches as the records), so a load cut by a lost
// link or a crash resumes after LastKey instead of starting over.
type RestoreProgress struct {
	// Base is the state of the first part of the load.
	Base argent.State
	// LastKey is the last key loaded; the load resumes after it.
	LastKey []byte
	// Target is set once every key is loaded but some arrived from a newer
	// state than Base (the load resumed from a parent that had moved on):
	// the store must replay the log from Base.Index+1 up to Target before it
	// may serve, and the chain hash at Target must equal TargetChain.
	Target      argent.Index
	TargetChain argent.Hash
}

func (p *RestoreProgress) encode() []byte {
	b := make([]byte, 0, 48+8+32+len(p.LastKey))
	b = append(b, encodeState(&p.Base)...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Target))
	b = append(b, p.TargetChain[:]...)
	return append(b, p.LastKey...)
}

func decodeRestoreProgress(v []byte) (RestoreProgress, bool) {
	if len(v) < 48+8+32 {
		return RestoreProgress{}, false // a load begun by an older build: start over
	}
	st, err := decodeState(v[:48])
	if err != nil {
		return RestoreProgress{}, false
	}
	p := RestoreProgress{Base: *st, Target: argent.Index(binary.BigEndian.Uint64(v[48:56]))}
	copy(p.TargetChain[:], v[56:88])
	p.LastKey = append([]byte(nil), v[88:]...)
	return p, true
}

// RestoreProgress returns the progress of an unfinished snapshot load, if
// the store has one.
func (s *Store) RestoreProgress() (RestoreProgress, bool) {
	if !s.restoring.Load() {
		return RestoreProgress{}, false
	}
	v, ok, err := s.getMeta(metaRestoring)
	if err != nil || !ok {
		return RestoreProgress{}, false
	}
	return decodeRestoreProgress(v)
}

// Restore replaces the store's contents with a snapshot received from a
// parent. While it is open, and after a cut until a later Restore finishes
// (and, for a resumed load, until the log is replayed to its target), the
// store serves no reads (Restoring reports true), so no reader ever sees a
// half-loaded state or a state older than one it saw before.
type Restore struct {
	s       *Store
	st      argent.State // the state of the current transfer's header
	prog    RestoreProgress
	b       *pebble.Batch
	records uint64 // records of the current transfer
	source  uint64 // see SetSource
	done    bool
}

// SetSource records the snapshot's source position (the sender's Source at
// its state, see Store.Source); Finish stores it with the state.
func (r *Restore) SetSource(pos uint64) { r.source = pos }

// BeginRestore starts loading a snapshot of dataset ds at state st. It wipes
// the store's data, history and log. It waits while a Writer or Trim runs.
func (s *Store) BeginRestore(ds argent.DatasetID, st argent.State) (*Restore, error) {
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
	prog := RestoreProgress{Base: st}
	b := s.db.NewBatch()
	_ = b.Set(metaRestoring, prog.encode(), nil)
	_ = b.Set(metaLogFirst, putUint64(empty), nil)
	for _, sp := range []byte{spaceLatest, spaceHistory, spaceTombstone, spaceLog} {
		_ = b.DeleteRange([]byte{sp}, []byte{sp + 1}, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		b.Close()
		s.writeMu.Unlock()
		return nil, fmt.Errorf("kv: begin restore: %w", err)
	}
	b.Close()
	if s.cache != nil {
		s.cache.clear()
	}
	s.logFirst.Store(empty)
	s.copyBelow.Store(empty)
	s.mu.Lock()
	s.mu.logCum = 0
	s.mu.logPlan = nil
	s.mu.restoreTarget = 0
	s.mu.Unlock()
	return &Restore{s: s, st: st, prog: prog, b: s.db.NewBatch()}, nil
}

// ResumeRestore continues a cut load with a transfer of the keys after
// RestoreProgress().LastKey, taken from a state st at or after the load's
// base. It fails if there is no load to resume.
func (s *Store) ResumeRestore(ds argent.DatasetID, st argent.State) (*Restore, error) {
	if _, err := s.AdoptDataset(ds); err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	prog, ok := s.RestoreProgress()
	if !ok || prog.Target != 0 {
		s.writeMu.Unlock()
		return nil, fmt.Errorf("kv: no snapshot load to resume")
	}
	if st.Index < prog.Base.Index {
		s.writeMu.Unlock()
		return nil, fmt.Errorf("kv: resumed snapshot at %d is older than the load's base %d", st.Index, prog.Base.Index)
	}
	return &Restore{s: s, st: st, prog: prog, b: s.db.NewBatch()}, nil
}

// Add writes one record. Records must come in increasing key order, after
// the progress's LastKey. No store holds an empty key, so a record without
// one is refused: the order check could not tell it from the start.
func (r *Restore) Add(key []byte, mod argent.Index, value []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: snapshot record without a key", argent.ErrCorruption)
	}
	if mod > r.st.Index || mod == 0 {
		return fmt.Errorf("%w: record %q has mod index %d, snapshot is at %d", argent.ErrCorruption, key, mod, r.st.Index)
	}
	if len(r.prog.LastKey) > 0 && bytes.Compare(key, r.prog.LastKey) <= 0 {
		return fmt.Errorf("%w: record %q does not follow %q", argent.ErrCorruption, key, r.prog.LastKey)
	}
	if err := r.b.Set(latestKey(key), encodeVersion(version{mod: mod, value: value}), nil); err != nil {
		return fmt.Errorf("kv: restore %q: %w", key, err)
	}
	r.records++
	r.prog.LastKey = append(r.prog.LastKey[:0], key...)
	if r.b.Len() >= restoreFlush {
		return r.flush()
	}
	return nil
}

// flush writes the records held, with the progress they make.
func (r *Restore) flush() (err error) {
	defer pebblelog.Catch(&err, r.s.fail)
	_ = r.b.Set(metaRestoring, r.prog.encode(), nil)
	if err := r.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("kv: restore: %w", err)
	}
	r.b.Reset()
	return nil
}

// Records returns the number of records added in this transfer.
func (r *Restore) Records() uint64 { return r.records }

// LastKey returns the last key loaded, to resume a cut transfer after it.
func (r *Restore) LastKey() []byte { return r.prog.LastKey }

// Finish checks that want records arrived in this transfer and ends the
// load. If every record came from the base state, that state becomes the
// store's applied state (no history below it, an empty log) and is served.
// If the load resumed from a newer state, the store is left at the base
// state, still not serving, and reports the target in RestoreProgress: the
// caller replays the log up to it, and the store serves again from there.
func (r *Restore) Finish(want uint64) (err error) {
	if r.done {
		return fmt.Errorf("kv: restore already finished")
	}
	defer r.finish()
	defer pebblelog.Catch(&err, r.s.fail)
	if want != r.records {
		return fmt.Errorf("%w: snapshot trailer says %d records, got %d", argent.ErrCorruption, want, r.records)
	}
	s := r.s
	base := r.prog.Base
	resumed := r.st.Index > base.Index
	_ = r.b.Set(metaApplied, encodeState(&base), nil)
	_ = r.b.Set(metaHorizon, putUint64(uint64(r.st.Index)), nil)
	_ = r.b.Set(metaLogFirst, putUint64(uint64(base.Index)+1), nil)
	if r.source != 0 {
		_ = r.b.Set(metaSource, putUint64(r.source), nil)
	}
	if resumed {
		r.prog.Target, r.prog.TargetChain = r.st.Index, r.st.Chain
		_ = r.b.Set(metaRestoring, r.prog.encode(), nil)
	} else {
		_ = r.b.Delete(metaRestoring, nil)
	}
	if err := r.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("kv: finish restore at %d: %w", r.st.Index, err)
	}
	s.mu.Lock()
	s.mu.logCum = 0
	s.mu.logPlan = nil
	s.mu.committed = base
	if resumed {
		s.mu.restoreTarget = r.st.Index
		s.mu.restoreChain = r.st.Chain
	}
	s.mu.Unlock()
	if s.cache != nil {
		s.cache.clear()
	}
	s.horizon.Store(uint64(r.st.Index))
	s.logFirst.Store(uint64(base.Index) + 1)
	if r.source != 0 {
		s.source.Store(r.source)
	}
	// Versions loaded from the snapshot have no log entry: a Writer that
	// supersedes one copies it.
	s.copyBelow.Store(uint64(base.Index) + 1)
	s.publish(&base)
	if !resumed {
		s.restoring.Store(false)
	}
	return nil
}

// Abort stops the restore. The store stays in the restoring state (no reads)
// until a later Restore finishes; what was loaded is kept for ResumeRestore.
func (r *Restore) Abort() {
	if !r.done {
		if r.b.Count() > 0 {
			_ = r.flush()
		}
		r.finish()
	}
}

func (r *Restore) finish() {
	r.done = true
	_ = r.b.Close()
	r.s.writeMu.Unlock()
}
