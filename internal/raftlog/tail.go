package raftlog

import (
	raftpb "go.etcd.io/raft/v3/raftpb"
)

// tail is the in-memory copy of the newest entries of the log: the entries
// Save wrote last, up to a byte budget. Raft reads back what it appended
// (to send it to followers, to apply it once committed, to match terms)
// soon after appending it, so those reads are served from here and never
// reach Pebble.
//
// It holds the very *raftpb.Entry values Save was given, as
// raft.MemoryStorage does: raft never changes an entry once it is in a
// Ready, so keeping them costs no copy. Entries returns a fresh slice of
// them, so the tail may reuse its own array.
type tail struct {
	ents []tailEntry // consecutive indexes, ending at the last index; or empty
	max  int64       // byte budget; negative: keep nothing
}

type tailEntry struct {
	e    *raftpb.Entry
	size uint64 // proto.Size(e)
	cum  uint64 // bytes of the log up to and including e
}

// first returns the index of the oldest entry held, or next when none is.
func (t *tail) first(next uint64) uint64 {
	if len(t.ents) == 0 {
		return next
	}
	return t.ents[0].e.GetIndex()
}

// at returns the entry at index i if the tail holds it.
func (t *tail) at(i uint64) (*tailEntry, bool) {
	if len(t.ents) == 0 {
		return nil, false
	}
	f := t.ents[0].e.GetIndex()
	if i < f || i-f >= uint64(len(t.ents)) {
		return nil, false
	}
	return &t.ents[i-f], true
}

// truncate drops the entries at index i and after.
func (t *tail) truncate(i uint64) {
	if len(t.ents) == 0 {
		return
	}
	n := 0
	if f := t.ents[0].e.GetIndex(); i > f {
		n = int(min(i-f, uint64(len(t.ents))))
	}
	clear(t.ents[n:])
	t.ents = t.ents[:n]
}

// dropThrough drops the entries at index i and before.
func (t *tail) dropThrough(i uint64) {
	if len(t.ents) == 0 {
		return
	}
	n := 0
	if f := t.ents[0].e.GetIndex(); i >= f {
		n = int(min(i-f+1, uint64(len(t.ents))))
	}
	t.dropFront(n)
}

func (t *tail) dropFront(n int) {
	// Clear what is dropped so that the array does not keep the entries
	// alive until append next moves it.
	clear(t.ents[:n])
	t.ents = t.ents[n:]
	if len(t.ents) == 0 {
		t.ents = nil
	}
}

// append adds e, the entry after the tail's last one; evict then brings
// the tail back within its budget.
func (t *tail) append(e *raftpb.Entry, size, cum uint64) {
	if t.max < 0 {
		return
	}
	t.ents = append(t.ents, tailEntry{e: e, size: size, cum: cum})
}

// evict drops the oldest entries while the tail is over its budget, keeping
// at least the newest one.
func (t *tail) evict() {
	n := 0
	for n < len(t.ents)-1 && int64(t.bytesFrom(n)) > t.max {
		n++
	}
	if n > 0 {
		t.dropFront(n)
	}
}

// bytesFrom returns the bytes of the entries from the n-th on.
func (t *tail) bytesFrom(n int) uint64 {
	if n >= len(t.ents) {
		return 0
	}
	return t.ents[len(t.ents)-1].cum - (t.ents[n].cum - t.ents[n].size)
}

// reset drops every entry.
func (t *tail) reset() {
	clear(t.ents)
	t.ents = nil
}
