package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pebblelog"
	"github.com/argent-kv/argent/internal/wire"
)

// Writer applies consecutive entries in one Pebble batch. Reads through the
// Writer (ModIndex) see the entries appended so far; nothing is visible to
// Store readers until Commit. Discard or Commit must be called.
//
// An entry is either appended whole (Append, AppendEntry) or built op list
// by op list: Begin, Apply as often as needed, End. The root builds a merged
// batch that way, checking each client batch's conditions against the state
// the lists before it left. After an error from Apply the Writer holds part
// of an entry and must be discarded.
type Writer struct {
	s       *Store
	b       *pebble.Batch
	state   argent.State // after the last appended entry
	logCum  uint64
	entries int
	done    bool
	// copyBelow: a superseded version with a lower mod index is copied to
	// the h space, since the log may drop its entry while reads still need
	// it (see Store.trimLog).
	copyBelow argent.Index
	// target is set while a resumed snapshot load replays the log: reaching
	// it (with targetChain) ends the load and lets the store serve again.
	target      argent.Index
	targetChain argent.Hash
	// source, if set, is written with the entries (Store.Source).
	source uint64
	// writerBuffers.pending holds the latest version of every key this
	// Writer wrote, for its own reads and, after Commit, for the read cache.

	// The open entry, between Begin and End.
	open bool
	next argent.Entry // Index and Time set by Begin; Ops grow with Apply
	*writerBuffers
}

// writerBuffers are a Writer's scratch space, kept by the Store from one
// Writer to the next (they take turns) so that a busy write path does not
// grow them anew for every group.
type writerBuffers struct {
	prevs   []byte // record trailer: one uvarint per op of the open entry
	encoded []byte // the open entry's wire encoding
	key     []byte // a k or h key being written
	value   []byte // a k or h value being written
	pending map[string]pendingVersion
}

// maxKeptBuffer bounds the scratch buffers a Store keeps between Writers.
const maxKeptBuffer = 8 << 20

// reset empties the buffers for the next Writer, dropping any that grew
// past maxKeptBuffer.
func (wb *writerBuffers) reset() {
	for _, b := range []*[]byte{&wb.prevs, &wb.encoded, &wb.key, &wb.value} {
		if cap(*b) > maxKeptBuffer {
			*b = nil
		}
		*b = (*b)[:0]
	}
	if len(wb.pending) > 1<<16 {
		wb.pending = nil
	}
	clear(wb.pending)
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
	return &Writer{s: s, b: s.db.NewIndexedBatch(), state: st, logCum: cum, target: target, targetChain: targetChain,
		copyBelow: argent.Index(s.copyBelow.Load()), writerBuffers: &s.wbufs}
}

// SetSource records pos as the source position of the entries this Writer
// commits (see Store.Source). It is written only with at least one entry.
func (w *Writer) SetSource(pos uint64) { w.source = pos }

// Next returns the index the next appended entry gets.
func (w *Writer) Next() argent.Index { return w.state.Index + 1 }

// Len returns the number of entries appended.
func (w *Writer) Len() int { return w.entries }

// Bytes returns the size of the Pebble batch built so far.
func (w *Writer) Bytes() int { return w.b.Len() }

// ModIndex returns the mod index of key in the Writer's view (the store plus
// the entries appended so far and the open entry's ops); 0 if the key is
// absent.
func (w *Writer) ModIndex(key []byte) (argent.Index, error) {
	v, ok, err := w.latest(key)
	if err != nil || !ok || v.tombstone {
		return 0, err
	}
	return v.mod, nil
}

// Check checks conditions against the Writer's view, as a batch merged
// after the ones applied so far sees it: nil if every key has the mod index
// its condition asks for, else an *argent.ConditionError for the first that
// does not.
func (w *Writer) Check(conds []argent.Condition) error {
	for _, c := range conds {
		got, err := w.ModIndex(c.Key)
		if err != nil {
			return fmt.Errorf("kv: check condition on %q: %w", c.Key, err)
		}
		if got != c.ModIndex {
			return &argent.ConditionError{Key: c.Key, Want: c.ModIndex, Got: got}
		}
	}
	return nil
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
	// Pebble as committed: every key this Writer wrote is in pending.
	return readLatest(w.s.db, key)
}

// Append applies ops as the next entry, committed at time now (kept no
// earlier than the previous entry's time), and returns the entry with its
// index and chain hash.
func (w *Writer) Append(ops []argent.Op, now time.Time) (argent.Entry, error) {
	w.Begin(now)
	if err := w.Apply(ops); err != nil {
		return argent.Entry{}, err
	}
	return w.End()
}

// Begin opens the next entry, committed at time now (kept no earlier than
// the previous entry's time).
func (w *Writer) Begin(now time.Time) {
	w.open = true
	w.next = argent.Entry{Index: w.state.Index + 1, Time: max(now.UnixNano(), w.state.Time), Ops: w.next.Ops[:0]}
	w.prevs = w.prevs[:0]
}

// Apply applies ops as part of the open entry, after the ops applied
// before. An op of unknown type (which argent.Limits.CheckBatch refuses
// long before) is refused with ErrCorruption before anything is applied.
func (w *Writer) Apply(ops []argent.Op) error {
	if !w.open {
		return fmt.Errorf("kv: Apply without Begin")
	}
	for _, op := range ops {
		switch op.Type {
		case argent.OpPut, argent.OpDelete, argent.OpDeletePrefix:
		default:
			return fmt.Errorf("%w: entry %d has op type %d", argent.ErrCorruption, w.next.Index, op.Type)
		}
	}
	for _, op := range ops {
		var (
			prev argent.Index
			err  error
		)
		switch op.Type {
		case argent.OpPut:
			prev, err = w.put(op.Key, op.Value)
		case argent.OpDelete:
			prev, err = w.del(op.Key)
		case argent.OpDeletePrefix:
			err = w.delPrefix(op.Key)
		}
		if err != nil {
			return err
		}
		w.prevs = binary.AppendUvarint(w.prevs, uint64(prev))
		w.next.Ops = append(w.next.Ops, op)
	}
	return nil
}

// End closes the open entry: it gets its chain hash and its log record.
// An entry without ops gets no index: End returns the zero Entry and the
// Writer is as before Begin.
func (w *Writer) End() (argent.Entry, error) {
	if !w.open {
		return argent.Entry{}, fmt.Errorf("kv: End without Begin")
	}
	w.open = false
	if len(w.next.Ops) == 0 {
		return argent.Entry{}, nil
	}
	e := logstore.Next(w.state, w.next.Ops, w.next.Time)
	if err := w.record(&e); err != nil {
		return argent.Entry{}, err
	}
	// The ops belong to the caller now; the next entry starts a new list.
	w.next.Ops = nil
	return e, nil
}

// AppendEntry applies an entry received from a parent. Its index must be the
// next one and its chain hash must follow from the Writer's chain; otherwise
// nothing is applied and the error wraps ErrCorruption or ErrChainMismatch.
func (w *Writer) AppendEntry(e *argent.Entry) error {
	if err := logstore.Check(w.state, e); err != nil {
		return err
	}
	if w.target != 0 && e.Index == w.target && e.Chain != w.targetChain {
		return fmt.Errorf("%w: entry %d ends a resumed snapshot load with chain %x, the snapshot had %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], w.targetChain[:8])
	}
	w.open = true
	w.next = argent.Entry{Index: e.Index, Time: e.Time, Ops: w.next.Ops[:0]}
	w.prevs = w.prevs[:0]
	err := w.Apply(e.Ops) // refuses an unknown op before applying any
	w.open = false
	w.next.Ops = w.next.Ops[:0]
	if err != nil {
		return err
	}
	return w.record(e)
}

// record writes e's log record and makes e the Writer's last entry.
func (w *Writer) record(e *argent.Entry) error {
	w.encoded = wire.AppendEntry(w.encoded[:0], e)
	w.logCum += uint64(len(w.encoded))
	if err := logstore.Put(w.b, e.Index, w.logCum, w.encoded, w.prevs); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	w.state = logstore.StateOf(e)
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

// replayed reports whether cur is newer than the open entry. That happens
// only while a snapshot load resumed from a newer state replays the log up
// to it: the key's record came from that state and already holds the
// entry's effect. Applying the entry again would put a newer version behind
// an older one.
func (w *Writer) replayed(cur version) bool { return cur.mod > w.next.Index }

// prevOf returns the prev of a version the open entry writes over cur: the
// mod index key had before the entry.
func (w *Writer) prevOf(cur version, present bool) argent.Index {
	switch {
	case !present:
		return 0
	case cur.mod == w.next.Index:
		return cur.prev // written earlier in this entry
	}
	return cur.mod
}

// supersede is called before the open entry replaces cur, key's latest
// version. A reader as of an older index finds cur again through the log
// record of the entry that wrote it, so usually nothing is written here.
// cur is copied to h when the log cannot give it back: a tombstone (no
// record holds a deleted key's prev), or a version whose entry the log may
// drop while reads still need cur (its mod index is below copyBelow). A
// version written by the open entry itself was never visible and is simply
// overwritten.
func (w *Writer) supersede(key []byte, cur version) error {
	if cur.mod == w.next.Index || (!cur.tombstone && cur.mod >= w.copyBelow) {
		return nil
	}
	if err := w.setVersion(spaceHistory, w.next.Index, key, cur); err != nil {
		return fmt.Errorf("kv: copy the version of %q at %d: %w", key, cur.mod, err)
	}
	return nil
}

func (w *Writer) put(key, value []byte) (argent.Index, error) {
	cur, ok, err := w.latest(key)
	if err != nil {
		return 0, err
	}
	if ok && w.replayed(cur) {
		return 0, nil
	}
	prev := w.prevOf(cur, ok)
	if ok {
		if err := w.supersede(key, cur); err != nil {
			return 0, err
		}
	}
	v := version{mod: w.next.Index, prev: prev, value: value}
	if err := w.setVersion(spaceLatest, 0, key, v); err != nil {
		return 0, fmt.Errorf("kv: write %q: %w", key, err)
	}
	// A copy: the entry's values may alias a buffer its caller reuses (a
	// stream's frame buffer) before this Writer commits.
	v.value = bytes.Clone(value)
	w.wrote(key, v, true)
	return prev, nil
}

func (w *Writer) del(key []byte) (argent.Index, error) {
	cur, ok, err := w.latest(key)
	if err != nil || !ok || w.replayed(cur) {
		return 0, err
	}
	prev := w.prevOf(cur, ok)
	if cur.tombstone {
		return prev, nil
	}
	if err := w.supersede(key, cur); err != nil {
		return 0, err
	}
	if prev == 0 {
		// Put and delete of a key absent before this entry: as if never put.
		if err := w.b.Delete(latestKey(key), nil); err != nil {
			return 0, fmt.Errorf("kv: delete %q: %w", key, err)
		}
		w.wrote(key, version{}, false)
		return 0, nil
	}
	v := version{tombstone: true, mod: w.next.Index, prev: prev}
	if err := w.setVersion(spaceLatest, 0, key, v); err != nil {
		return 0, fmt.Errorf("kv: delete %q: %w", key, err)
	}
	w.wrote(key, v, true)
	if err := w.b.Set(indexedKey(spaceTombstone, w.next.Index, key), nil, nil); err != nil {
		return 0, fmt.Errorf("kv: queue the tombstone of %q: %w", key, err)
	}
	return prev, nil
}

func (w *Writer) delPrefix(prefix []byte) error {
	lower := latestKey(prefix)
	upper := prefixEnd(lower)
	it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("kv: delete prefix %q: %w", prefix, err)
	}
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, good := decodeVersion(it.Value())
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
		if _, err := w.del(k); err != nil {
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
func (w *Writer) CommitNoSync() (argent.State, error) {
	return w.commit(pebble.NoSync)
}

func (w *Writer) commit(opt *pebble.WriteOptions) (_ argent.State, err error) {
	if w.done {
		return argent.State{}, fmt.Errorf("kv: writer already finished")
	}
	defer w.finish()
	if err := w.s.Failed(); err != nil {
		return argent.State{}, err
	}
	defer pebblelog.Catch(&err, w.s.fail)
	if w.open {
		return argent.State{}, fmt.Errorf("kv: commit with an entry open")
	}
	if w.entries == 0 {
		return argent.State{}, nil
	}
	st := w.state
	if err := w.b.Set(metaApplied, encodeState(&st), nil); err != nil {
		return argent.State{}, fmt.Errorf("kv: write applied index: %w", err)
	}
	if w.source != 0 {
		if err := w.b.Set(metaSource, putUint64(w.source), nil); err != nil {
			return argent.State{}, fmt.Errorf("kv: write source position: %w", err)
		}
	}
	loaded := w.target != 0 && st.Index >= w.target
	if loaded {
		_ = w.b.Delete(metaRestoring, nil)
	}
	if err := w.b.Commit(opt); err != nil {
		return argent.State{}, w.s.fail(fmt.Errorf("kv: commit entries up to %d: %w", st.Index, err))
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
	w.s.mu.logCum = w.logCum
	w.s.mu.committed = st
	w.s.mu.Unlock()
	if w.source != 0 {
		w.s.source.Store(w.source)
	}
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
	w.reset()
	w.writerBuffers = nil
	w.s.writeMu.Unlock()
}

// setVersion writes v as key's version in space (k, or h after index i).
func (w *Writer) setVersion(space byte, i argent.Index, key []byte, v version) error {
	if space == spaceLatest {
		w.key = append(append(w.key[:0], spaceLatest), key...)
	} else {
		w.key = appendIndexedKey(w.key[:0], space, i, key)
	}
	w.value = appendVersion(w.value[:0], v)
	return w.b.Set(w.key, w.value, nil)
}
