// Package raftlog is the durable storage of a member of argent's root Raft
// group: its Raft log, hard state, latest snapshot's metadata and applied
// configuration, in a Pebble database of its own.
//
// A Storage is the raft.Storage of the member's go.etcd.io/raft/v3 node, and
// the Ready loop persists each Ready with one Save before it sends the
// Ready's messages:
//
//	s, _ := raftlog.Open(dir, nil, logger)
//	if s.Empty() {
//		// a new member: bootstrap (rn.Bootstrap, or SetConfState) or join
//	}
//	rn, _ := raft.NewRawNode(&raft.Config{ID: id, Storage: s, ...})
//	...
//	rd := rn.Ready()
//	if err := s.Save(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
//		return err // the member stops
//	}
//	// send rd.Messages, apply rd.CommittedEntries, then:
//	rn.Advance(rd)
//
// It answers raft.Storage as raft.MemoryStorage does (the same errors, the
// dummy entry at the compaction base whose term Term still gives, the size
// limit of Entries), and keeps the newest entries in memory, so that raft's
// reads of what it just appended never reach Pebble. Save does the work of
// MemoryStorage's ApplySnapshot, Append and SetHardState in one atomic
// write. Where MemoryStorage panics (an index past the last one) it returns
// an error wrapping raft.ErrUnavailable.
//
// The log is a Pebble database apart from the member's key-value store
// because the two are written differently: every append to the log is
// fsynced, while the store applies committed entries without fsync (the log
// makes them durable). In one database each fsync of the log would also
// wait for the store's writes in the shared WAL, and the log's large,
// short-lived entries would go through the store's compactions.
package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/pebblelog"
)

// Errors. The errors raft acts on (raft.ErrCompacted, raft.ErrUnavailable,
// raft.ErrSnapOutOfDate) are returned bare, as raft.MemoryStorage returns
// them, because raft compares them with ==. Damaged data gives an error
// wrapping argent.ErrCorruption that names the index.
var (
	// ErrStorageFailed is returned by every write once a write to Pebble has
	// failed (an I/O error on its WAL or an fsync): Pebble cannot say what
	// of the failed batch is on disk, so the member must stop, and a restart
	// finds the storage at its last durable state. It wraps
	// argent.ErrUnavailable.
	ErrStorageFailed = fmt.Errorf("raftlog: storage failed, the member must restart: %w", argent.ErrUnavailable)

	errClosed = fmt.Errorf("raftlog: storage is closed: %w", argent.ErrClosed)
)

// Options configures a Storage. A nil *Options means all defaults.
type Options struct {
	// FS is the file system Pebble uses. Default: the OS file system. Tests
	// pass vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// Logger receives Pebble's warnings and errors. Default: discard them.
	Logger *slog.Logger
	// TailBytes bounds the in-memory copy of the newest entries. Default:
	// 64 MiB; negative: none (every read goes to Pebble). The newest entry
	// is kept even when it alone is larger.
	TailBytes int64
	// MemTableSize is the size of Pebble's memtable. Default: 64 MiB, so that
	// a stream of entries of a few MiB makes few flushes (Pebble keeps a
	// batch of more than half of it apart, and flushes it on its own).
	MemTableSize int64
	// CacheSize is Pebble's block cache size. Default: 16 MiB: recent entries
	// are read from the tail, older ones rarely (a follower catching up).
	CacheSize int64
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.FS == nil {
		out.FS = vfs.Default
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.TailBytes == 0 {
		out.TailBytes = 64 << 20
	}
	if out.MemTableSize == 0 {
		out.MemTableSize = 64 << 20
	}
	if out.CacheSize == 0 {
		out.CacheSize = 16 << 20
	}
	return out
}

// Storage is the Raft storage of one group member. It is safe for use by
// several goroutines: the Ready loop writes (Save, Compact, CreateSnapshot,
// SetConfState) while raft reads (Entries, Term) and others read Bytes,
// FirstIndex and LastIndex.
type Storage struct {
	db     *pebble.DB
	dir    string
	logger *slog.Logger

	failed atomic.Pointer[error] // the write that failed (see ErrStorageFailed)
	reads  atomic.Int64          // reads of entries and terms that went to Pebble

	// writeMu is held by each write (Save, Compact, CreateSnapshot,
	// SetConfState, Close), so that they take turns. Only writers change
	// the fields under mu, and they do so holding both locks, so a writer
	// may read them holding writeMu alone. Lock order: writeMu, then mu.
	writeMu sync.Mutex
	sizes   []uint64 // Save's scratch: the sizes of the entries it writes

	mu struct {
		sync.Mutex
		closed bool
		hs     *raftpb.HardState // never nil
		snap   *raftpb.Snapshot  // never nil, nor its metadata
		cs     *raftpb.ConfState // the last SetConfState; nil: none
		csAt   uint64            // the applied index SetConfState gave with cs
		span   span
		tail   tail
	}
}

// span is the extent of the log: the dummy entry at base (the snapshot or
// compaction base, FirstIndex-1), whose term and size count are kept, and the
// entries (base, last].
type span struct {
	base     uint64
	baseTerm uint64
	baseCum  uint64 // bytes of the log up to and including base
	last     uint64
	lastCum  uint64
}

var _ raft.Storage = (*Storage)(nil)

// Open opens (creating if needed) the Raft storage in dir on fs (nil: the
// OS file system), with Pebble's warnings and errors going to logger (nil:
// discarded). It is OpenWith with the other options at their defaults.
func Open(dir string, fs vfs.FS, logger *slog.Logger) (*Storage, error) {
	return OpenWith(dir, &Options{FS: fs, Logger: logger})
}

// OpenWith opens (creating if needed) the Raft storage in dir. It refuses a
// storage of another FormatVersion, and a directory that holds another
// Pebble database.
func OpenWith(dir string, opts *Options) (*Storage, error) {
	o := opts.withDefaults()
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		Logger:             pebblelog.Logger{L: o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       uint64(o.MemTableSize),
	})
	if err != nil {
		return nil, fmt.Errorf("raftlog: open pebble in %s: %w", dir, err)
	}
	s := &Storage{db: db, dir: dir, logger: o.Logger}
	s.mu.tail.max = o.TailBytes
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the state, creating it in a new storage.
func (s *Storage) load() error {
	v, ok, err := s.get(keyFormat)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.create(); err != nil {
			return err
		}
		v = encodeUint64(FormatVersion)
	}
	if len(v) != 8 {
		return fmt.Errorf("raftlog: format version %x in %s is damaged: %w", v, s.dir, argent.ErrCorruption)
	}
	if n := getUint64(v); n != FormatVersion {
		return fmt.Errorf("raftlog: %s holds a Raft log of format version %d; this build reads version %d only: %w",
			s.dir, n, FormatVersion, argent.ErrCorruption)
	}

	s.mu.hs = &raftpb.HardState{}
	if err := s.getProto(keyHardState, s.mu.hs); err != nil {
		return err
	}
	snap := &raftpb.Snapshot{}
	if err := s.getProto(keySnapshot, snap); err != nil {
		return err
	}
	s.mu.snap = raftpb.EnsureSnapshot(snap)
	if v, ok, err := s.get(keyConfState); err != nil {
		return err
	} else if ok {
		cs := &raftpb.ConfState{}
		if len(v) < 8 {
			return fmt.Errorf("raftlog: conf state of %d bytes: %w", len(v), argent.ErrCorruption)
		}
		if err := proto.Unmarshal(v[8:], cs); err != nil {
			return fmt.Errorf("raftlog: conf state does not decode: %w: %w", argent.ErrCorruption, err)
		}
		s.mu.cs, s.mu.csAt = cs, getUint64(v[:8])
	}
	sp, err := s.loadSpan()
	if err != nil {
		return err
	}
	s.mu.span = sp
	return nil
}

// create initialises a new storage: the format version and the dummy entry
// at index 0. It refuses a directory that holds another Pebble database.
func (s *Storage) create() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("raftlog: check %s is empty: %w", s.dir, err)
	}
	other := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("raftlog: check %s is empty: %w", s.dir, err)
	}
	if other {
		return fmt.Errorf("raftlog: %s holds a Pebble database that is not a Raft log (it has no %s key): %w", s.dir, keyFormat, argent.ErrInvalid)
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(keyFormat, encodeUint64(FormatVersion), nil)
	_ = b.Set(termKey(0), position{}.encode(), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftlog: initialise %s: %w", s.dir, err)
	}
	return nil
}

// loadSpan finds the bounds of the log from the first and last term record
// and checks that the entries span the same indexes.
func (s *Storage) loadSpan() (span, error) {
	var sp span
	first, last, err := s.bounds(spaceTerm)
	if err != nil {
		return sp, err
	}
	if first == nil {
		return sp, fmt.Errorf("raftlog: no term records in %s: %w", s.dir, argent.ErrCorruption)
	}
	sp.base, sp.baseTerm, sp.baseCum = first.i, first.pos.term, first.pos.cum
	sp.last, sp.lastCum = last.i, last.pos.cum
	efirst, elast, err := s.bounds(spaceEntry)
	if err != nil {
		return sp, err
	}
	switch {
	case sp.last == sp.base && efirst != nil:
		return sp, fmt.Errorf("raftlog: the log ends at its base %d but holds entry %d: %w", sp.base, efirst.i, argent.ErrCorruption)
	case sp.last > sp.base && (efirst == nil || efirst.i != sp.base+1 || elast.i != sp.last):
		got := "none"
		if efirst != nil {
			got = fmt.Sprintf("%d..%d", efirst.i, elast.i)
		}
		return sp, fmt.Errorf("raftlog: the log spans entries %d..%d but holds entries %s: %w", sp.base+1, sp.last, got, argent.ErrCorruption)
	}
	return sp, nil
}

type boundKey struct {
	i   uint64
	pos position // t records only
}

// bounds returns the first and last key of space (nil, nil: none).
func (s *Storage) bounds(space byte) (first, last *boundKey, err error) {
	lo, hi := spaceBounds(space)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, fmt.Errorf("raftlog: read the bounds of the log: %w", err)
	}
	read := func() (*boundKey, error) {
		i, ok := parseIndexKey(space, it.Key())
		if !ok {
			return nil, fmt.Errorf("raftlog: malformed key %x: %w", it.Key(), argent.ErrCorruption)
		}
		bk := &boundKey{i: i}
		if space == spaceTerm {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, fmt.Errorf("raftlog: read term record %d: %w", i, err)
			}
			if bk.pos, err = decodePosition(i, v); err != nil {
				return nil, err
			}
		}
		return bk, nil
	}
	if it.First() {
		if first, err = read(); err == nil && it.Last() {
			last, err = read()
		}
	}
	if cerr := it.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("raftlog: read the bounds of the log: %w", cerr)
	}
	if err != nil {
		return nil, nil, err
	}
	return first, last, nil
}

func (s *Storage) get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("raftlog: read %s: %w", k, err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

// getProto decodes the value of k into m; an absent k leaves m as it is.
func (s *Storage) getProto(k []byte, m proto.Message) error {
	v, ok, err := s.get(k)
	if err != nil || !ok {
		return err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("raftlog: %s does not decode: %w: %w", k, argent.ErrCorruption, err)
	}
	return nil
}

// Close closes the storage. Every later call returns an error wrapping
// argent.ErrClosed; a second Close returns nil.
func (s *Storage) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.tail.reset()
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftlog: close %s: %w", s.dir, err)
	}
	return nil
}

// Empty reports whether the storage holds no Raft state at all: no hard
// state, entry, snapshot or conf state. Such a member was never started;
// its caller bootstraps a group or joins one.
func (s *Storage) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return raft.IsEmptyHardState(s.mu.hs) && s.mu.span.base == 0 && s.mu.span.last == 0 &&
		raft.IsEmptySnap(s.mu.snap) && s.mu.cs == nil
}

// Bytes returns the bytes of the entries the log holds (the sum of their
// encoded sizes), for metrics and for deciding when to compact.
func (s *Storage) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.mu.span.lastCum - s.mu.span.baseCum)
}

// Metrics returns Pebble's metrics, for the node's /metrics; nil once the
// storage is closed.
func (s *Storage) Metrics() *pebble.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	return s.db.Metrics()
}

// InitialState returns the saved hard state (empty, not nil, when none
// was saved) and the newer of the conf state SetConfState recorded and the
// one the latest snapshot carries (by index; SetConfState's on a tie).
func (s *Storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, nil, errClosed
	}
	hs := proto.Clone(s.mu.hs).(*raftpb.HardState)
	return hs, raftpb.EnsureConfState(proto.Clone(s.confState()).(*raftpb.ConfState)), nil
}

// confState returns the newer of the conf state SetConfState recorded and
// the latest snapshot's. The caller holds mu or writeMu.
func (s *Storage) confState() *raftpb.ConfState {
	if s.mu.cs != nil && s.mu.csAt >= s.mu.snap.GetMetadata().GetIndex() {
		return s.mu.cs
	}
	return s.mu.snap.GetMetadata().GetConfState()
}

// Entries returns the entries [lo, hi), at least one and then as many as
// fit in maxSize bytes (their proto.Size), as raft.MemoryStorage does. It
// returns raft.ErrCompacted when lo is at or before the base (FirstIndex-1),
// raft.ErrUnavailable when the log holds no entries, and an error wrapping
// raft.ErrUnavailable when hi is past LastIndex()+1 (where MemoryStorage
// panics). The slice is the caller's; the entries must not be changed.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, errClosed
	}
	sp := &s.mu.span
	if lo <= sp.base {
		return nil, raft.ErrCompacted
	}
	if hi > sp.last+1 {
		return nil, fmt.Errorf("raftlog: entries [%d, %d) reach past the last index %d: %w", lo, hi, sp.last, raft.ErrUnavailable)
	}
	if sp.last == sp.base {
		return nil, raft.ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	out := make([]*raftpb.Entry, 0, min(hi-lo, 256))
	var size uint64
	cut := min(hi, s.mu.tail.first(sp.last+1))
	if lo < cut {
		var full bool
		var err error
		out, size, full, err = s.readEntries(lo, cut, maxSize, out)
		if err != nil || full {
			return out, err
		}
	}
	for i := max(lo, cut); i < hi; i++ {
		te, _ := s.mu.tail.at(i)
		if len(out) > 0 && size+te.size > maxSize {
			break
		}
		size += te.size
		out = append(out, te.e)
	}
	return out, nil
}

// readEntries appends the entries [lo, hi) read from Pebble to out (which
// is empty), stopping before the first entry that would take their size past
// maxSize (full reports that it did).
func (s *Storage) readEntries(lo, hi, maxSize uint64, out []*raftpb.Entry) (_ []*raftpb.Entry, size uint64, full bool, err error) {
	s.reads.Add(1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(lo), UpperBound: entryKey(hi)})
	if err != nil {
		return out, 0, false, fmt.Errorf("raftlog: read entries from %d: %w", lo, err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("raftlog: read entries from %d: %w", lo, cerr)
		}
	}()
	next := lo
	for ok := it.First(); ok; ok = it.Next() {
		i, good := parseIndexKey(spaceEntry, it.Key())
		if !good {
			return out, size, false, fmt.Errorf("raftlog: malformed entry key %x: %w", it.Key(), argent.ErrCorruption)
		}
		if i != next {
			return out, size, false, fmt.Errorf("raftlog: entry %d is missing (the next one held is %d): %w", next, i, argent.ErrCorruption)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return out, size, false, fmt.Errorf("raftlog: read entry %d: %w", i, err)
		}
		if len(out) > 0 && size+uint64(len(v)) > maxSize {
			return out, size, true, nil
		}
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(v, e); err != nil {
			return out, size, false, fmt.Errorf("raftlog: entry %d does not decode: %w: %w", i, argent.ErrCorruption, err)
		}
		if e.GetIndex() != i {
			return out, size, false, fmt.Errorf("raftlog: the key of entry %d holds entry %d: %w", i, e.GetIndex(), argent.ErrCorruption)
		}
		out = append(out, e)
		size += uint64(len(v))
		next++
	}
	if err := it.Error(); err != nil {
		return out, size, false, fmt.Errorf("raftlog: read entries from %d: %w", lo, err)
	}
	if next < hi {
		return out, size, false, fmt.Errorf("raftlog: entry %d is missing: %w", next, argent.ErrCorruption)
	}
	return out, size, false, nil
}

// Term returns the term of the entry at index i, which must be in
// [FirstIndex()-1, LastIndex()]: raft.ErrCompacted before, and
// raft.ErrUnavailable after.
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, errClosed
	}
	if i < s.mu.span.base {
		return 0, raft.ErrCompacted
	}
	if i > s.mu.span.last {
		return 0, raft.ErrUnavailable
	}
	p, err := s.position(i)
	return p.term, err
}

// position returns the term and size count of index i, which must be in
// [base, last]: from memory, else from its t record. The caller holds mu or
// writeMu.
func (s *Storage) position(i uint64) (position, error) {
	sp := &s.mu.span
	if i == sp.base {
		return position{term: sp.baseTerm, cum: sp.baseCum}, nil
	}
	if te, ok := s.mu.tail.at(i); ok {
		return position{term: te.e.GetTerm(), cum: te.cum}, nil
	}
	s.reads.Add(1)
	v, closer, err := s.db.Get(termKey(i))
	if errors.Is(err, pebble.ErrNotFound) {
		return position{}, fmt.Errorf("raftlog: term record %d is missing: %w", i, argent.ErrCorruption)
	}
	if err != nil {
		return position{}, fmt.Errorf("raftlog: read term record %d: %w", i, err)
	}
	defer func() { _ = closer.Close() }()
	return decodePosition(i, v)
}

// LastIndex returns the index of the last entry (the base when there are
// none).
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, errClosed
	}
	return s.mu.span.last, nil
}

// FirstIndex returns the index of the first entry Entries may give: the
// one after the base.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, errClosed
	}
	return s.mu.span.base + 1, nil
}

// Snapshot returns (a copy of) the latest snapshot: the last one Save
// applied or CreateSnapshot made; an empty one before either.
func (s *Storage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, errClosed
	}
	// Every field set, as MemoryStorage.Snapshot gives it.
	return raftpb.EnsureSnapshot(proto.Clone(s.mu.snap).(*raftpb.Snapshot)), nil
}
