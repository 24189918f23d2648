package raftlog

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/pebblelog"
)

// Save persists one Ready, in one Pebble batch, fsynced when sync is true
// (pass Ready.MustSync, which raft.MustSync computes). In order:
//
//   - snap, unless raft.IsEmptySnap: it becomes the base of the log (the
//     dummy entry, FirstIndex-1) and the latest snapshot, and every entry
//     is dropped, as raft.MemoryStorage.ApplySnapshot does (raft sends a
//     snapshot only to a member whose log does not hold the snapshot's
//     index with its term, so no entry it holds may follow the snapshot).
//     A snapshot not newer than the latest gives raft.ErrSnapOutOfDate and
//     saves nothing.
//   - ents, as raft.MemoryStorage.Append takes them: those at or before the
//     base are skipped, an entry at index i replaces the one at i and drops
//     every entry after it. They must be consecutive and start at most at
//     LastIndex()+1 (after snap, when one is given).
//   - hs, unless raft.IsEmptyHardState.
//
// Save keeps ents (not a copy) in its in-memory tail: they must not be
// changed afterwards, which raft never does. A failed write to Pebble gives
// an error wrapping ErrStorageFailed, and every later write fails.
func (s *Storage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, sync bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	p, err := s.prepareSave(hs, ents, snap)
	if err != nil || p == nil {
		return err
	}
	defer p.b.Close()
	if p.rewrites {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.commit(p.b, sync); err != nil {
			return err
		}
		s.publish(p)
		return nil
	}
	if err := s.commit(p.b, sync); err != nil {
		return err
	}
	s.mu.Lock()
	s.publish(p)
	s.mu.Unlock()
	return nil
}

// pendingSave is the batch of a Save and what it changes in memory once
// committed.
type pendingSave struct {
	b    *pebble.Batch
	size int // the size the batch was allocated for: at least its length

	hs      *raftpb.HardState // nil: unchanged
	snap    *raftpb.Snapshot  // nil: none
	ents    []*raftpb.Entry   // consecutive, from start
	start   uint64
	prevCum uint64 // the size count before start
	next    span

	// rewrites: the batch deletes or replaces entries readers may read, so
	// it is committed under mu; a batch that only adds entries after the
	// last one is committed without it, and readers go on meanwhile.
	rewrites bool
}

// prepareSave checks a Save's arguments and builds its batch; nil: there
// is nothing to write. The caller holds writeMu.
func (s *Storage) prepareSave(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) (*pendingSave, error) {
	old := s.mu.span
	p := &pendingSave{next: old}

	var snapVal []byte
	if !raft.IsEmptySnap(snap) {
		m := snap.GetMetadata()
		if m.GetIndex() <= s.mu.snap.GetMetadata().GetIndex() {
			return nil, raft.ErrSnapOutOfDate
		}
		var err error
		if snapVal, err = proto.Marshal(snap); err != nil {
			return nil, fmt.Errorf("raftlog: encode snapshot %d: %w", m.GetIndex(), err)
		}
		p.snap = snap
		p.next = span{base: m.GetIndex(), baseTerm: m.GetTerm(), last: m.GetIndex()}
		p.rewrites = true
	}

	p.ents = skipCompacted(ents, p.next.base)
	if len(p.ents) > 0 {
		p.start = p.ents[0].GetIndex()
		if p.start > p.next.last+1 {
			return nil, fmt.Errorf("raftlog: entries start at %d, after the last index %d: the log would have a gap: %w", p.start, p.next.last, argent.ErrInvalid)
		}
		for k, e := range p.ents[1:] {
			if e.GetIndex() != p.start+uint64(k)+1 {
				return nil, fmt.Errorf("raftlog: entry %d follows entry %d: %w", e.GetIndex(), p.start+uint64(k), argent.ErrInvalid)
			}
		}
		switch prev := p.start - 1; prev {
		case p.next.last:
			p.prevCum = p.next.lastCum
		case p.next.base:
			p.prevCum = p.next.baseCum
		default: // inside the log, which no snapshot reset
			pos, err := s.position(prev)
			if err != nil {
				return nil, err
			}
			p.prevCum = pos.cum
		}
		p.rewrites = p.rewrites || p.start <= p.next.last
	}

	var hsVal []byte
	if !raft.IsEmptyHardState(hs) {
		var err error
		if hsVal, err = proto.Marshal(hs); err != nil {
			return nil, fmt.Errorf("raftlog: encode hard state: %w", err)
		}
		p.hs = hs
	}
	if snapVal == nil && len(p.ents) == 0 && hsVal == nil {
		return nil, nil
	}

	// The batch's buffer is allocated once, for everything, so that the
	// entries' bytes are copied once: encoded into it in place. A record
	// takes a kind byte, two uvarint lengths (at most 10 bytes each), its
	// key and its value; four range deletions at most. (Pebble sizes a new
	// batch's buffer anew from its first record, so the first record must
	// be a small one: the batch below never starts with an entry.)
	const overhead = 1 + 2*10
	s.sizes = s.sizes[:0]
	p.size = 12 // the batch header
	for _, e := range p.ents {
		sz := proto.Size(e)
		s.sizes = append(s.sizes, uint64(sz))
		p.size += 2*(overhead+indexKeyLen) + sz + positionLen
	}
	p.size += 2*overhead + len(keySnapshot) + len(snapVal) + indexKeyLen + positionLen
	p.size += overhead + len(keyHardState) + len(hsVal)
	p.size += 4 * (overhead + 2*indexKeyLen)
	b := s.db.NewBatchWithSize(p.size)

	if snapVal != nil {
		deleteRange(b, spaceEntry, old.base+1, old.last+1)
		deleteRange(b, spaceTerm, old.base, old.last+1)
		_ = b.Set(termKey(p.next.base), position{term: p.next.baseTerm}.encode(), nil)
		_ = b.Set(keySnapshot, snapVal, nil)
	}
	if len(p.ents) > 0 {
		newLast := p.start + uint64(len(p.ents)) - 1
		if newLast < p.next.last {
			deleteRange(b, spaceEntry, newLast+1, p.next.last+1)
			deleteRange(b, spaceTerm, newLast+1, p.next.last+1)
		}
		cum := p.prevCum
		for k, e := range p.ents {
			cum += s.sizes[k]
			_ = b.Set(termKey(e.GetIndex()), position{term: e.GetTerm(), cum: cum}.encode(), nil)
			if err := putEntry(b, e, int(s.sizes[k])); err != nil {
				_ = b.Close()
				return nil, err
			}
		}
		p.next.last, p.next.lastCum = newLast, cum
	}
	if hsVal != nil {
		_ = b.Set(keyHardState, hsVal, nil)
	}
	p.b = b
	return p, nil
}

// publish makes what p's batch wrote visible to readers. The caller holds
// both locks, and p's batch is committed.
func (s *Storage) publish(p *pendingSave) {
	if p.snap != nil {
		s.mu.snap = raftpb.EnsureSnapshot(proto.Clone(p.snap).(*raftpb.Snapshot))
		s.mu.tail.reset()
	}
	if len(p.ents) > 0 {
		s.mu.tail.truncate(p.start)
		cum := p.prevCum
		for k, e := range p.ents {
			cum += s.sizes[k]
			s.mu.tail.append(e, s.sizes[k], cum)
		}
		s.mu.tail.evict()
	}
	if p.hs != nil {
		s.mu.hs = proto.Clone(p.hs).(*raftpb.HardState)
	}
	s.mu.span = p.next
}

// skipCompacted drops the entries at or before base, as
// raft.MemoryStorage.Append does.
func skipCompacted(ents []*raftpb.Entry, base uint64) []*raftpb.Entry {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first > base {
		return ents
	}
	if skip := base - first + 1; skip < uint64(len(ents)) {
		return ents[skip:]
	}
	return nil
}

// putEntry writes e (of encoded size size) into b, encoding it in place in
// the batch's buffer: its Data is copied once, there.
func putEntry(b *pebble.Batch, e *raftpb.Entry, size int) error {
	i := e.GetIndex()
	op := b.SetDeferred(indexKeyLen, size)
	putIndexKey(op.Key, spaceEntry, i)
	out, err := proto.MarshalOptions{}.MarshalAppend(op.Value[:0:size], e)
	if err != nil {
		return fmt.Errorf("raftlog: encode entry %d: %w", i, err)
	}
	if len(out) != size || (size > 0 && &out[0] != &op.Value[0]) {
		return fmt.Errorf("raftlog: entry %d encoded to %d bytes, not the %d it measured (was it changed meanwhile?)", i, len(out), size)
	}
	if err := op.Finish(); err != nil {
		return fmt.Errorf("raftlog: write entry %d: %w", i, err)
	}
	return nil
}

// deleteRange deletes the keys of space for indexes [from, to) in b.
func deleteRange(b *pebble.Batch, space byte, from, to uint64) {
	if from >= to {
		return
	}
	_ = b.DeleteRange(indexKey(space, from), indexKey(space, to), nil)
}

// commit commits b, fsynced when sync is true. A failure fails the storage.
func (s *Storage) commit(b *pebble.Batch, sync bool) (err error) {
	defer pebblelog.Catch(&err, s.fail)
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.Commit(opts); err != nil {
		return s.fail(fmt.Errorf("raftlog: commit: %w", err))
	}
	return nil
}

// writable returns why the storage takes no writes, or nil. The caller
// holds writeMu.
func (s *Storage) writable() error {
	if s.mu.closed {
		return errClosed
	}
	return s.Failed()
}

// Compact drops the entries before index i: i becomes the base (the dummy
// entry, whose term Term still gives) and FirstIndex becomes i+1, as in
// raft.MemoryStorage. The caller must not compact past its applied index. It
// returns raft.ErrCompacted when i is at or before the base, and an error
// wrapping raft.ErrUnavailable when i is after the last index (where
// MemoryStorage panics). The deletion is not fsynced: a crash may bring
// the dropped entries back, which is harmless, and never drops more.
func (s *Storage) Compact(i uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	sp := s.mu.span
	if i <= sp.base {
		return raft.ErrCompacted
	}
	if i > sp.last {
		return fmt.Errorf("raftlog: compact %d: past the last index %d: %w", i, sp.last, raft.ErrUnavailable)
	}
	p, err := s.position(i)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	deleteRange(b, spaceEntry, sp.base+1, i+1)
	deleteRange(b, spaceTerm, sp.base, i)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.mu.span.base, s.mu.span.baseTerm, s.mu.span.baseCum = i, p.term, p.cum
	s.mu.tail.dropThrough(i)
	return nil
}

// CreateSnapshot records, fsynced, the metadata of a snapshot at index i
// with conf state cs (nil: the one InitialState gives) and data (small: the
// caller's description of its state, not the data set), makes it the
// latest snapshot and returns a copy of it. It drops no entry: Compact does.
// It returns raft.ErrSnapOutOfDate when i is not after the latest
// snapshot's index, raft.ErrCompacted when i is before the base, and an
// error wrapping raft.ErrUnavailable when i is after the last index (where
// raft.MemoryStorage panics).
func (s *Storage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return nil, err
	}
	if i <= s.mu.snap.GetMetadata().GetIndex() {
		return nil, raft.ErrSnapOutOfDate
	}
	sp := s.mu.span
	if i > sp.last {
		return nil, fmt.Errorf("raftlog: snapshot at %d: past the last index %d: %w", i, sp.last, raft.ErrUnavailable)
	}
	if i < sp.base {
		return nil, raft.ErrCompacted
	}
	p, err := s.position(i)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		cs = s.confState()
	}
	snap := &raftpb.Snapshot{
		Data: bytes.Clone(data),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     new(i),
			Term:      new(p.term),
			ConfState: proto.Clone(cs).(*raftpb.ConfState),
		},
	}
	v, err := proto.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("raftlog: encode snapshot %d: %w", i, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(keySnapshot, v, nil)
	if err := s.commit(b, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.mu.snap = snap
	s.mu.Unlock()
	return proto.Clone(snap).(*raftpb.Snapshot), nil
}

// SetConfState records, fsynced, the configuration the member applied at
// appliedIndex (after raft.RawNode.ApplyConfChange, or at bootstrap with
// index 0). InitialState returns it until a newer snapshot carries another.
func (s *Storage) SetConfState(cs *raftpb.ConfState, appliedIndex uint64) error {
	if cs == nil {
		return fmt.Errorf("raftlog: set conf state: nil: %w", argent.ErrInvalid)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	v, err := proto.MarshalOptions{}.MarshalAppend(encodeUint64(appliedIndex), cs)
	if err != nil {
		return fmt.Errorf("raftlog: encode conf state: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(keyConfState, v, nil)
	if err := s.commit(b, true); err != nil {
		return err
	}
	s.mu.Lock()
	s.mu.cs, s.mu.csAt = proto.Clone(cs).(*raftpb.ConfState), appliedIndex
	s.mu.Unlock()
	return nil
}

// SetMembers records, fsynced, the caller's description of the members
// (their addresses): Raft's configuration holds only their IDs.
func (s *Storage) SetMembers(v []byte) error { return s.setMeta(keyMembers, v, true) }

// Members returns what SetMembers recorded last, nil if nothing.
func (s *Storage) Members() ([]byte, error) {
	v, _, err := s.get(keyMembers)
	return v, err
}

// SetAlarms records, fsynced, the caller's description of the group's
// disk alarms: state it derives from applied entries, which the log's
// compaction may drop.
func (s *Storage) SetAlarms(v []byte) error { return s.setMeta(keyAlarms, v, true) }

// Alarms returns what SetAlarms recorded last, nil if nothing.
func (s *Storage) Alarms() ([]byte, error) {
	v, _, err := s.get(keyAlarms)
	return v, err
}

// SetPublished records i, the Raft index whose state the caller is about
// to serve, fsynced when sync is set; else the next synced write (a Save)
// makes it durable with it, as the database's log keeps the order of
// writes. After a crash the caller replays its log up to Published before
// it serves again, so that what it served never goes back.
func (s *Storage) SetPublished(i uint64, sync bool) error {
	return s.setMeta(keyPublished, encodeUint64(i), sync)
}

// setMeta writes one meta key, fsynced when sync is set.
func (s *Storage) setMeta(k, v []byte, sync bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(k, v, nil)
	return s.commit(b, sync)
}

// Published returns what SetPublished recorded last, 0 if nothing.
func (s *Storage) Published() (uint64, error) {
	v, ok, err := s.get(keyPublished)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftlog: %s has %d bytes: %w", keyPublished, len(v), argent.ErrCorruption)
	}
	return getUint64(v), nil
}
