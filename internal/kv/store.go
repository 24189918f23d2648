// Package kv is argent's versioned key-value store on Pebble.
//
// A Store holds the latest version of every key, older versions for a
// history window (so it can answer "K as of index S"), the log of the entries
// it applied (so it can feed children and watchers), and its applied index.
// A Writer applies entries; everything one Writer wrote becomes durable and
// visible at once, in one Pebble batch, so a crash leaves the store at the
// state of exactly one applied index.
//
//	s, _ := kv.Open(dir, nil)
//	w := s.NewWriter()
//	e, _ := w.Append(ops, time.Now())
//	_ = w.Commit() // fsynced, then published
//	v, err := s.Get([]byte("k"), s.Applied())
//
// Reads take the index to read at; a read at any index between the history
// horizon and the applied index is exact.
package kv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pebblelog"
)

// Options configures a Store. A nil *Options means all defaults.
type Options struct {
	// FS is the file system Pebble uses. Default: the OS file system. Tests
	// pass vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// HistoryDuration bounds how long superseded versions are kept.
	// Default: 2 hours.
	HistoryDuration time.Duration
	// HistoryBytes bounds the bytes of superseded versions. Default: 1 GiB.
	HistoryBytes int64
	// LogDuration bounds how long log entries are kept. Default: 7 days.
	LogDuration time.Duration
	// LogBytes bounds the bytes of log entries kept. Default: 4 GiB.
	LogBytes int64
	// CacheSize is Pebble's block cache size. Default: 256 MiB.
	CacheSize int64
	// MemTableSize is the size of Pebble's memtable. Default: 32 MiB.
	MemTableSize int64
	// LatestCache is the memory, in bytes, of the cache of latest versions
	// in front of Pebble for point reads. Default: 64 MiB; negative: none.
	LatestCache int64
	// BlobMinSize is the size from which Pebble keeps a value in a blob
	// file beside its sstables instead of in them, so that compactions move
	// a reference instead of rewriting the value. Default: 1 KiB;
	// negative: never.
	BlobMinSize int
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Logger receives Pebble's warnings and errors. Default: discard them.
	Logger *slog.Logger
	// OnFatal is called, once, when a write to Pebble fails (an I/O error
	// on the log or an fsync): the store then refuses every later write,
	// since Pebble cannot say what of the failed batch is on disk, and the
	// node should stop. Default: nothing.
	OnFatal func(error)
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.FS == nil {
		out.FS = vfs.Default
	}
	if out.HistoryDuration == 0 {
		out.HistoryDuration = 2 * time.Hour
	}
	if out.HistoryBytes == 0 {
		out.HistoryBytes = 1 << 30
	}
	if out.LogDuration == 0 {
		out.LogDuration = 7 * 24 * time.Hour
	}
	if out.LogBytes == 0 {
		out.LogBytes = 4 << 30
	}
	if out.LatestCache == 0 {
		out.LatestCache = 64 << 20
	}
	if out.BlobMinSize == 0 {
		out.BlobMinSize = 1 << 10
	}
	if out.MemTableSize == 0 {
		out.MemTableSize = 32 << 20
	}
	if out.CacheSize == 0 {
		out.CacheSize = 256 << 20
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.OnFatal == nil {
		out.OnFatal = func(error) {}
	}
	return out
}

// Store is a versioned key-value store. Reads are safe from any goroutine;
// Writers, Restores and Trim calls take turns.
type Store struct {
	db    *pebble.DB
	dir   string
	opts  Options
	cache *latestCache // nil: no cache

	nodeID [16]byte

	// state is the published applied state. Readers load it; only
	// Writer.Commit and Restore.Finish store it.
	state     atomic.Pointer[argent.State]
	horizon   atomic.Uint64         // reads below it answer ErrCompacted
	logFirst  atomic.Uint64         // oldest log entry kept
	copyBelow atomic.Uint64         // Writers copy superseded versions older than this (see Trim)
	restoring atomic.Bool           // a snapshot load is under way or was cut: no reads
	source    atomic.Uint64         // see Source
	closed    atomic.Bool           // Close was called: reads answer ErrClosed
	failed    atomic.Pointer[error] // the write that failed (see Options.OnFatal)

	// writeMu is held by an open Writer or Restore and by Trim, so that only
	// one of them changes the store at a time. Lock order: writeMu, then mu.
	writeMu sync.Mutex
	wbufs   writerBuffers // the open Writer's scratch space; under writeMu

	mu struct {
		sync.Mutex
		changed   chan struct{} // closed and replaced when state advances
		dataset   argent.DatasetID
		logCum    uint64       // cumulative log bytes up to the last entry
		committed argent.State // last state written to Pebble; >= the published one
		// restoreTarget and restoreChain: a resumed snapshot load must
		// replay the log up to restoreTarget (0: none) and reach this chain.
		restoreTarget argent.Index
		restoreChain  argent.Hash
		logPlan       *logPlan // a log trim waiting for the horizon
		closed        bool
	}
}

// Open opens or creates the store in dir.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		Logger:             pebblelog.Logger{L: o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       uint64(o.MemTableSize),
	}
	// Bloom filters in every table (L0's setting carries to the levels
	// below): a read of an absent key, the commonest read in Quicksilver's
	// traffic, then skips the tables that cannot hold it instead of
	// searching their index and data blocks. 10 bits per key: about 1%
	// false positives.
	popts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	if o.BlobMinSize > 0 {
		// Values of 1 KiB and more (and the log records of merged batches)
		// go to blob files: a 4 KiB overwrite then costs about 16 KiB of
		// disk writes instead of 40 (docs/DECISIONS.md, "Large values in
		// blob files").
		popts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
			return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: o.BlobMinSize,
				MaxBlobReferenceDepth: 20, RewriteMinimumAge: time.Hour, TargetGarbageRatio: 0.5}
		}
	}

	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("kv: open pebble in %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, opts: o, cache: newLatestCache(o.LatestCache)}
	s.mu.changed = make(chan struct{})
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the meta keys, creating them in a new store.
func (s *Store) load() error {
	f, ok, err := s.getMeta(metaFormat)
	if err != nil {
		return err
	}
	if !ok {
		var node [16]byte
		if _, err := rand.Read(node[:]); err != nil {
			return fmt.Errorf("kv: make node id: %w", err)
		}
		b := s.db.NewBatch()
		_ = b.Set(metaFormat, putUint64(StoreFormatVersion), nil)
		_ = b.Set(metaNodeID, node[:], nil)
		_ = b.Set(metaLogFirst, putUint64(1), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("kv: initialise store: %w", err)
		}
		f = putUint64(StoreFormatVersion)
	}
	if v, ok := getUint64(f); !ok {
		return fmt.Errorf("kv: store format version %x is damaged: %w", f, argent.ErrCorruption)
	} else if v != StoreFormatVersion {
		return fmt.Errorf("kv: %s holds a store of format version %d; this build reads version %d only: move the directory aside and let the node bootstrap from its upstream (a root: load its data again): %w",
			s.dir, v, StoreFormatVersion, argent.ErrCorruption)
	}
	st := &argent.State{}
	if v, ok, err := s.getMeta(metaApplied); err != nil {
		return err
	} else if ok {
		if st, err = decodeState(v); err != nil {
			return err
		}
	}
	s.state.Store(st)
	s.mu.committed = *st
	if v, ok, err := s.getMeta(metaNodeID); err != nil {
		return err
	} else if ok && len(v) == 16 {
		copy(s.nodeID[:], v)
	}
	if v, ok, err := s.getMeta(metaDataset); err != nil {
		return err
	} else if ok && len(v) == 16 {
		copy(s.mu.dataset[:], v)
	}
	u64 := func(k []byte, dst func(uint64)) error {
		v, ok, err := s.getMeta(k)
		if err != nil || !ok {
			return err
		}
		n, ok := getUint64(v)
		if !ok {
			return fmt.Errorf("kv: meta %s has %d bytes: %w", k, len(v), argent.ErrCorruption)
		}
		dst(n)
		return nil
	}
	if err := u64(metaHorizon, s.horizon.Store); err != nil {
		return err
	}
	if err := u64(metaLogFirst, s.logFirst.Store); err != nil {
		return err
	}
	if err := u64(metaSource, s.source.Store); err != nil {
		return err
	}
	if _, ok, err := s.getMeta(metaRestoring); err != nil {
		return err
	} else if ok {
		s.restoring.Store(true)
		if p, ok := s.RestoreProgress(); ok && p.Target != 0 {
			s.mu.restoreTarget, s.mu.restoreChain = p.Target, p.TargetChain
		}
	}
	s.copyBelow.Store(s.logFirst.Load())
	// The cumulative byte count lives in the newest log entry.
	if st.Index >= argent.Index(s.logFirst.Load()) {
		rec, done, err := logstore.Get(s.db, st.Index)
		if errors.Is(err, logstore.ErrMissing) {
			return fmt.Errorf("kv: log entry %d missing at the applied index: %w", st.Index, argent.ErrCorruption)
		}
		if err != nil {
			return fmt.Errorf("kv: %w", err)
		}
		s.mu.logCum = rec.Cum
		done()
	}
	return nil
}

func (s *Store) getMeta(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv: read %s: %w", k, err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

func encodeState(st *argent.State) []byte {
	b := make([]byte, 0, 48)
	b = binary.BigEndian.AppendUint64(b, uint64(st.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(st.Time))
	return append(b, st.Chain[:]...)
}

func decodeState(v []byte) (*argent.State, error) {
	if len(v) != 48 {
		return nil, fmt.Errorf("kv: applied state has %d bytes: %w", len(v), argent.ErrCorruption)
	}
	st := &argent.State{Index: argent.Index(binary.BigEndian.Uint64(v[0:8])), Time: int64(binary.BigEndian.Uint64(v[8:16]))}
	copy(st.Chain[:], v[16:])
	return st, nil
}

// Close closes the store. A Writer must not be open.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.closed.Store(true)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("kv: close: %w", err)
	}
	return nil
}

// State returns the published applied state: the state reads are served from.
func (s *Store) State() argent.State { return *s.state.Load() }

// Applied returns the published applied index.
func (s *Store) Applied() argent.Index { return s.state.Load().Index }

// Horizon returns the oldest index MVCC reads can answer for.
func (s *Store) Horizon() argent.Index { return argent.Index(s.horizon.Load()) }

// LogFirst returns the oldest log index the store still holds. It is
// Applied()+1 when the log is empty.
func (s *Store) LogFirst() argent.Index { return argent.Index(s.logFirst.Load()) }

// Source returns the position, in whatever the committed entries were
// applied from, of the last one committed (Writer.SetSource): a member of a
// root group keeps the Raft index there, so that after a restart it applies
// the Raft log from the entry after it. Zero if never set.
func (s *Store) Source() uint64 { return s.source.Load() }

// ResetSource forgets the source position (see Source), for a store that
// starts to be applied from a new source: a root group started on the data
// of a single root or of a member of a lost group, whose Raft log begins
// again at 1.
func (s *Store) ResetSource() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.db.Delete(metaSource, pebble.Sync); err != nil {
		return fmt.Errorf("kv: reset source position: %w", err)
	}
	s.source.Store(0)
	return nil
}

// Restoring reports whether a snapshot load is under way or was cut short.
// Such a store serves no reads until a Restore finishes.
func (s *Store) Restoring() bool { return s.restoring.Load() }

// NodeID returns the store's random ID, made when it was created.
func (s *Store) NodeID() [16]byte { return s.nodeID }

// Dataset returns the store's dataset ID; zero until one is set.
func (s *Store) Dataset() argent.DatasetID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.dataset
}

// InitDataset gives a new store a random dataset ID (a new root does this)
// and returns it. A store that already has one keeps it.
func (s *Store) InitDataset() (argent.DatasetID, error) {
	var id argent.DatasetID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("kv: make dataset id: %w", err)
	}
	got, err := s.AdoptDataset(id)
	if errors.Is(err, argent.ErrDatasetMismatch) {
		return got, nil // the store already has an ID: keep it
	}
	return got, err
}

// AdoptDataset sets the dataset ID of a store that has none (a new replica
// does this with its parent's ID). A store with another ID refuses with
// ErrDatasetMismatch. It returns the store's ID.
func (s *Store) AdoptDataset(id argent.DatasetID) (argent.DatasetID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.dataset.IsZero() {
		if s.mu.dataset != id && !id.IsZero() {
			return s.mu.dataset, fmt.Errorf("%w: store holds %s, offered %s", argent.ErrDatasetMismatch, s.mu.dataset, id)
		}
		return s.mu.dataset, nil
	}
	if err := s.db.Set(metaDataset, id[:], pebble.Sync); err != nil {
		return id, fmt.Errorf("kv: save dataset id: %w", err)
	}
	s.mu.dataset = id
	return id, nil
}

// Changed returns a channel that is closed when the published state next
// advances.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.changed
}

// publish makes st the state reads are served from and wakes waiters.
// A state older than the published one is ignored, so the published index
// never goes back, whatever order concurrent publishers run in. (A restore
// never lowers it: BeginRestore refuses a snapshot older than Applied.)
func (s *Store) publish(st *argent.State) {
	s.mu.Lock()
	if st.Index < s.state.Load().Index {
		s.mu.Unlock()
		return
	}
	s.state.Store(st)
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	s.mu.Unlock()
}

// SyncAndPublish makes everything committed so far durable (one fsync of
// Pebble's WAL) and then publishes st, the state a CommitNoSync returned.
// States must be published in order; an older one than the published state
// is ignored.
// Publish makes st, committed with CommitNoSync, visible to readers without
// syncing it, for a caller whose entries are durable elsewhere and replayed
// from there after a crash before it serves again (a root group member and
// its Raft log). Sync makes them durable here.
func (s *Store) Publish(st argent.State) error {
	if err := s.Failed(); err != nil {
		return err
	}
	s.publish(&st)
	return nil
}

// Sync makes everything committed durable.
func (s *Store) Sync() (err error) {
	if err := s.Failed(); err != nil {
		return err
	}
	defer pebblelog.Catch(&err, s.fail)
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return s.fail(fmt.Errorf("kv: sync: %w", err))
	}
	return nil
}

func (s *Store) SyncAndPublish(st argent.State) error {
	if err := s.Sync(); err != nil {
		return err
	}
	s.publish(&st)
	return nil
}

// WaitApplied blocks until the published index is at least i, ctx ends, or
// timeout passes; it returns the index reached, and an error wrapping
// argent.ErrTimeout (and, when ctx ended, ctx's error) if i was not reached.
func (s *Store) WaitApplied(ctx context.Context, timeout time.Duration, i argent.Index) (argent.Index, error) {
	if cur := s.Applied(); cur >= i {
		return cur, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		ch := s.Changed()
		if cur := s.Applied(); cur >= i {
			return cur, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return s.Applied(), fmt.Errorf("%w: at index %d after %s, want %d", argent.ErrTimeout, s.Applied(), timeout, i)
		case <-ctx.Done():
			return s.Applied(), fmt.Errorf("%w: at index %d, want %d: request ended: %w", argent.ErrTimeout, s.Applied(), i, ctx.Err())
		}
	}
}

// Metrics returns Pebble's metrics, for the node's /metrics.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// DiskUsage returns the bytes the store's files take: the sum of the sizes
// of the files in its directory. Pebble's own account
// (Metrics.DiskSpaceUsage) leaves WAL files out: on a replica after a bulk
// load it said 29.5 MiB where the directory's files took 54.7 MiB, the
// difference about the size of the WAL files.
func (s *Store) DiskUsage() uint64 {
	names, err := s.opts.FS.List(s.dir)
	if err != nil {
		return s.db.Metrics().DiskSpaceUsage()
	}
	var n uint64
	for _, name := range names {
		fi, err := s.opts.FS.Stat(s.opts.FS.PathJoin(s.dir, name))
		if err != nil || fi.IsDir() {
			continue // removed by Pebble meanwhile, or not a file
		}
		n += uint64(fi.Size())
	}
	return n
}

// HistoryBytes returns the bytes of history reads as of an older index can
// use: the wire size of the log entries after the horizon (the values of
// superseded versions are read back from them).
func (s *Store) HistoryBytes() uint64 {
	return s.logBytesFrom(max(s.Horizon()+1, s.LogFirst()))
}

// LogBytes returns the wire size of the log entries kept.
func (s *Store) LogBytes() uint64 { return s.logBytesFrom(s.LogFirst()) }

// logBytesFrom returns the wire size of the published log entries from
// index from on.
func (s *Store) logBytesFrom(from argent.Index) uint64 {
	last := s.Applied()
	if from > last {
		return 0
	}
	rec, done, err := logstore.Get(s.db, from)
	if err != nil {
		return 0
	}
	before := rec.Cum - uint64(len(rec.Entry))
	done()
	rec, done, err = logstore.Get(s.db, last)
	if err != nil {
		return 0
	}
	defer done()
	return rec.Cum - before
}

// FreeDisk returns the bytes free to the store on its file system. An
// in-memory file system without a set usage returns vfs.ErrUnsupported.
func (s *Store) FreeDisk() (uint64, error) {
	u, err := s.opts.FS.GetDiskUsage(s.dir)
	if err != nil {
		return 0, fmt.Errorf("kv: disk usage of %s: %w", s.dir, err)
	}
	return u.AvailBytes, nil
}

// ErrStorageFailed is returned by writes once a write to Pebble has failed
// (see Options.OnFatal). It wraps argent.ErrUnavailable.
var ErrStorageFailed = fmt.Errorf("kv: storage failed, the node must restart: %w", argent.ErrUnavailable)

// Failed returns the error that stopped the store's writes, or nil.
func (s *Store) Failed() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records err as the write failure that stops the store, tells
// OnFatal once, and returns it wrapping ErrStorageFailed.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrStorageFailed, err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.opts.Logger.Error("storage write failed: refusing writes; the node must restart", "err", err)
		s.opts.OnFatal(err)
	}
	return err
}
