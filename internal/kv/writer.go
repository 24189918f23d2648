package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// Writer applies consecutive entries in one Pebble batch. Reads through the
// Writer (ModIndex) see the entries appended so far; nothing is visible to
// Store readers until Commit. Discard or Commit must be called.
type Writer struct {
	s       *Store
	b       *pebble.Batch
	state   State // after the last appended entry
	logCum  uint64
	histAdd uint64
	entries int
	done    bool
	scratch []byte
	// target is set while a resumed snapshot load replays the log: reaching
	// it (with targetChain) ends the load and lets the store serve again.
	target      argent.Index
	targetChain argent.Hash
	// pending holds the latest version of every key this Writer wrote, for
	// its own reads and, after Commit, for the read cache.
	pending map[string]pendingVersion
}

// pendingVersion is a key's latest version in a Writer's batch; present is
// false when the key left the k key space.
type pendingVersion struct {
	v       version
	present bool
}

// NewWriter starts a Writer. It waits while another Writer, a Restore or a
// Trim is under way.
func (s *Store) NewWriter() *Writer {
	s.writeMu.Lock()
	s.mu.Lock()
	cum, st := s.mu.logCum, s.mu.committed
	target, targetChain := s.mu.restoreTarget, s.mu.restoreChain
	s.mu.Unlock()
	return &Writer{s: s, b: s.db.NewIndexedBatch(), state: st, logCum: cum, target: target, targetChain: targetChain}
}

// Next returns the index the next appended entry gets.
func (w *Writer) Next() argent.Index { return w.state.Index + 1 }

// Len returns the number of entries appended.
func (w *Writer) Len() int { return w.entries }

// ModIndex returns the mod index of key in the Writer's view (the store plus
// the entries appended so far); 0 if the key is absent.
func (w *Writer) ModIndex(key []byte) (argent.Index, error) {
	v, ok, err := w.latest(key)
	if err != nil || !ok || v.tombstone {
		return 0, err
	}
	return v.mod, nil
}

// latest returns key's latest version in the Writer's view: its own batch,
// else the read cache (which holds what Pebble holds, see latestCache),
// else Pebble.
func (w *Writer) latest(key []byte) (version, bool, error) {
	if p, ok := w.pending[string(key)]; ok {
		return p.v, p.present, nil
	}
	if w.s.cache != nil {
		if v, ok := w.s.cache.get(key); ok {
			return v, true, nil
		}
	}
	return readLatest(w.b, key)
}

// Append applies ops as the next entry, committed at time now (kept no
// earlier than the previous entry's time), and returns the entry with its
// index and chain hash.
func (w *Writer) Append(ops []argent.Op, now time.Time) (argent.Entry, error) {
	t := now.UnixNano()
	if t < w.state.Time {
		t = w.state.Time
	}
	e := argent.Entry{Index: w.state.Index + 1, Time: t, Ops: ops}
	e.Chain = wire.NextChain(w.state.Chain, &e)
	return e, w.apply(&e)
}

// AppendEntry applies an entry received from a parent. Its index must be the
// next one and its chain hash must follow from the Writer's chain; otherwise
// nothing is applied and the error wraps ErrCorruption or ErrChainMismatch.
func (w *Writer) AppendEntry(e *argent.Entry) error {
	if e.Index != w.state.Index+1 {
		return fmt.Errorf("%w: got entry %d, want %d", argent.ErrCorruption, e.Index, w.state.Index+1)
	}
	if want := wire.NextChain(w.state.Chain, e); want != e.Chain {
		return fmt.Errorf("%w: entry %d has chain %x, want %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], want[:8])
	}
	if w.target != 0 && e.Index == w.target && e.Chain != w.targetChain {
		return fmt.Errorf("%w: entry %d ends a resumed snapshot load with chain %x, the snapshot had %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], w.targetChain[:8])
	}
	return w.apply(e)
}

func (w *Writer) apply(e *argent.Entry) error {
	// Check every op before writing any, so that a refused entry leaves
	// nothing in the batch for a later Commit to write.
	for _, op := range e.Ops {
		switch op.Type {
		case argent.OpPut, argent.OpDelete, argent.OpDeletePrefix:
		default:
			return fmt.Errorf("%w: entry %d has op type %d", argent.ErrCorruption, e.Index, op.Type)
		}
	}
	for _, op := range e.Ops {
		var err error
		switch op.Type {
		case argent.OpPut:
			err = w.put(op.Key, op.Value, e)
		case argent.OpDelete:
			err = w.del(op.Key, e)
		case argent.OpDeletePrefix:
			err = w.delPrefix(op.Key, e)
		default:
			err = fmt.Errorf("%w: entry %d has op type %d", argent.ErrCorruption, e.Index, op.Type)
		}
		if err != nil {
			return err
		}
	}
	w.scratch = wire.AppendEntry(w.scratch[:0], e)
	w.logCum += uint64(len(w.scratch))
	rec := make([]byte, 0, 8+len(w.scratch))
	rec = binary.BigEndian.AppendUint64(rec, w.logCum)
	rec = append(rec, w.scratch...)
	if err := w.b.Set(logKey(e.Index), rec, nil); err != nil {
		return fmt.Errorf("kv: write log entry %d: %w", e.Index, err)
	}
	w.state = State{Index: e.Index, Time: e.Time, Chain: e.Chain}
	w.entries++
	return nil
}

// wrote records key's new latest version in the batch.
func (w *Writer) wrote(key []byte, v version, present bool) {
	if w.pending == nil {
		w.pending = make(map[string]pendingVersion)
	}
	w.pending[string(key)] = pendingVersion{v: v, present: present}
}

// supersede moves the current version of key (mod index cur.mod) into
// history, superseded by entry e. A version written by e itself (two ops on
// one key in one batch) was never visible and is simply overwritten.
func (w *Writer) supersede(key []byte, cur version, e *argent.Entry) error {
	if cur.mod == e.Index {
		return nil
	}
	size := uint64(len(key) + len(cur.value) + 32)
	if err := w.b.Set(historyKey(key, cur.mod), encodeHistory(cur.tombstone, cur.value), nil); err != nil {
		return fmt.Errorf("kv: write history of %q: %w", key, err)
	}
	if err := w.b.Set(gcKey(e.Index, cur.mod, key), gcValue(e.Time, size, gcKindHistory), nil); err != nil {
		return fmt.Errorf("kv: write gc entry of %q: %w", key, err)
	}
	w.histAdd += size
	return nil
}

// replayed reports whether cur is newer than entry e. That happens only
// while a snapshot load resumed from a newer state replays the log up to
// it: the key's record came from that state and already holds e's effect.
// Applying e again would move the newer version into history as superseded
// by e, and trimming e later would delete it while reads still need it.
func replayed(cur version, e *argent.Entry) bool { return cur.mod > e.Index }

func (w *Writer) put(key, value []byte, e *argent.Entry) error {
	cur, ok, err := w.latest(key)
	if err != nil {
		return err
	}
	if ok {
		if replayed(cur, e) {
			return nil
		}
		if err := w.supersede(key, cur, e); err != nil {
			return err
		}
	}
	if err := w.b.Set(latestKey(key), encodeLatest(false, e.Index, value), nil); err != nil {
		return fmt.Errorf("kv: write %q: %w", key, err)
	}
	// A copy: the entry's values may alias a buffer its caller reuses (a
	// stream's frame buffer) before this Writer commits.
	w.wrote(key, version{mod: e.Index, value: bytes.Clone(value)}, true)
	return nil
}

func (w *Writer) del(key []byte, e *argent.Entry) error {
	cur, ok, err := w.latest(key)
	if err != nil || !ok || cur.tombstone || replayed(cur, e) {
		return err
	}
	if err := w.supersede(key, cur, e); err != nil {
		return err
	}
	if cur.mod == e.Index {
		// Put and delete of a key absent before this entry: as if never put.
		prev, err := w.versionBefore(key, e.Index)
		if err != nil {
			return err
		}
		if prev == nil {
			if err := w.b.Delete(latestKey(key), nil); err != nil {
				return fmt.Errorf("kv: delete %q: %w", key, err)
			}
			w.wrote(key, version{}, false)
			return nil
		}
	}
	if err := w.b.Set(latestKey(key), encodeLatest(true, e.Index, nil), nil); err != nil {
		return fmt.Errorf("kv: delete %q: %w", key, err)
	}
	w.wrote(key, version{tombstone: true, mod: e.Index}, true)
	if err := w.b.Set(gcKey(e.Index, e.Index, key), gcValue(e.Time, uint64(len(key)+16), gcKindTombstone), nil); err != nil {
		return fmt.Errorf("kv: write gc entry of %q: %w", key, err)
	}
	return nil
}

// versionBefore returns the newest history version of key older than i, or
// nil when there is none.
func (w *Writer) versionBefore(key []byte, i argent.Index) (*version, error) {
	it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: historyKey(key, 0), UpperBound: historyKey(key, i)})
	if err != nil {
		return nil, fmt.Errorf("kv: history of %q: %w", key, err)
	}
	defer it.Close()
	if !it.Last() {
		return nil, it.Error()
	}
	v := it.Value()
	if len(v) < 1 {
		return nil, fmt.Errorf("kv: history version of %q is empty: %w", key, argent.ErrCorruption)
	}
	return &version{tombstone: v[0]&flagTombstone != 0}, nil
}

func (w *Writer) delPrefix(prefix []byte, e *argent.Entry) error {
	lower := latestKey(prefix)
	upper := prefixEnd(lower)
	it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("kv: delete prefix %q: %w", prefix, err)
	}
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, good := decodeLatest(it.Value())
		if !good {
			it.Close()
			return fmt.Errorf("kv: latest version of %q is malformed: %w", it.Key()[1:], argent.ErrCorruption)
		}
		if !v.tombstone {
			keys = append(keys, append([]byte(nil), it.Key()[1:]...))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("kv: delete prefix %q: %w", prefix, err)
	}
	for _, k := range keys {
		if err := w.del(k, e); err != nil {
			return err
		}
	}
	return nil
}

// Commit writes everything appended, with the applied state, in one fsynced
// Pebble batch, then publishes the new state to readers. The Writer cannot
// be used afterwards.
func (w *Writer) Commit() error {
	st, err := w.commit(pebble.Sync)
	if err != nil || st.Index == 0 {
		return err
	}
	w.s.publish(&st)
	return nil
}

// CommitNoSync writes everything appended in one Pebble batch without
// waiting for fsync and without publishing it: readers keep reading at the
// published index (newer versions are invisible to them, see Get), while the
// next Writer already builds on this one. Store.SyncAndPublish with the
// returned state makes it durable and visible. This lets a writer apply the
// next group while the previous one syncs. The Writer cannot be used
// afterwards.
func (w *Writer) CommitNoSync() (State, error) {
	return w.commit(pebble.NoSync)
}

func (w *Writer) commit(opt *pebble.WriteOptions) (State, error) {
	if w.done {
		return State{}, fmt.Errorf("kv: writer already finished")
	}
	defer w.finish()
	if w.entries == 0 {
		return State{}, nil
	}
	w.s.mu.Lock()
	hist := w.s.mu.histBytes + w.histAdd
	w.s.mu.Unlock()
	st := w.state
	if err := w.b.Set(metaApplied, encodeState(&st), nil); err != nil {
		return State{}, fmt.Errorf("kv: write applied index: %w", err)
	}
	if err := w.b.Set(metaHistBytes, putUint64(hist), nil); err != nil {
		return State{}, fmt.Errorf("kv: write history size: %w", err)
	}
	loaded := w.target != 0 && st.Index >= w.target
	if loaded {
		_ = w.b.Delete(metaRestoring, nil)
	}
	if err := w.b.Commit(opt); err != nil {
		return State{}, fmt.Errorf("kv: commit entries up to %d: %w", st.Index, err)
	}
	if w.s.cache != nil {
		// Before the new state is published: no reader at it may find a
		// replaced version in the cache.
		w.s.cache.update(w.pending)
	}
	if loaded {
		// Publish first: a reader let in must find the target state.
		w.s.mu.Lock()
		w.s.mu.restoreTarget = 0
		w.s.mu.committed = st
		w.s.mu.Unlock()
		w.s.publish(&st)
		w.s.restoring.Store(false)
	}
	w.s.mu.Lock()
	w.s.mu.histBytes += w.histAdd
	w.s.mu.logCum = w.logCum
	w.s.mu.committed = st
	w.s.mu.Unlock()
	return st, nil
}

// Discard drops everything appended. It is safe after Commit.
func (w *Writer) Discard() {
	if !w.done {
		w.finish()
	}
}

func (w *Writer) finish() {
	w.done = true
	_ = w.b.Close()
	w.s.writeMu.Unlock()
}
