package proxycache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
)

// Cache is a proxy's persistent partial cache. Get is safe from any
// goroutine and takes no lock; Apply, Admit, Reset and the background
// evictor take turns on Cache.mu.
type Cache struct {
	db     *pebble.DB
	opts   Options
	policy *policy
	mem    *memCache // nil: no memory cache
	floor  *floor
	gate   *diskGate
	stats  stats

	registered []prometheus.Collector // metrics registered with opts.Registerer

	nodeID [16]byte
	state  atomic.Pointer[argent.State] // published: set after each write is visible
	closed atomic.Bool                  // Close was called: Get misses
	// closeMu is held for reading by Gets that read Pebble and for writing
	// by Close, which must not close the database under them.
	closeMu sync.RWMutex

	done   chan struct{} // closed by Close: stops the evictor and the reclaimer
	cancel func()        // cancels the reclaimer's compaction at Close
	wg     sync.WaitGroup

	// mu serializes everything that writes to Pebble, so that the check of
	// which keys are cached, the batch, and the policy update that follows
	// it happen as one step. See policy for the lock order.
	mu struct {
		sync.Mutex
		nextID  uint64 // next admission id
		dataset argent.DatasetID
		err     error // a failed commit: the cache refuses writes
		closed  bool
	}
}

// Open opens or creates the cache in dir. Every entry found is loaded into
// the eviction policy with its size; access frequencies are not persisted,
// so after a restart the policy starts from sizes alone and learns the
// frequencies again. When the budget has shrunk since the last run, the
// policy evicts down to it and the evictor deletes the surplus.
func Open(dir string, opts Options) (*Cache, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults(dir)
	// Pebble charges its memtables (up to two: the live one and the one
	// being flushed) to the block cache, so a cache of BlockCacheSize
	// alone would hold no blocks at all with the default sizes.
	bc := pebble.NewCache(o.BlockCacheSize + 2*o.MemTableSize)
	defer bc.Unref()
	gate := newDiskGate(o)
	db, err := pebble.Open(dir, pebbleOptions(o, bc, gate))
	if err != nil {
		return nil, fmt.Errorf("proxycache: open pebble in %s: %w", dir, err)
	}
	c := &Cache{
		db:     db,
		opts:   o,
		policy: newPolicy(o.Budget),
		mem:    newMemCache(o.MemoryCache),
		gate:   gate,
		floor:  &floor{min: uint64(o.FreeDiskFloor), interval: o.FreeSpaceInterval, now: o.Now, free: o.FreeSpace},
		done:   make(chan struct{}),
	}
	if err := c.loadMeta(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := c.loadEntries(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if o.Registerer != nil {
		if err := c.register(o.Registerer); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(2)
	go c.evictLoop()
	go func() {
		defer c.wg.Done()
		c.gate.reclaimLoop(ctx, c.db, c.done)
	}()
	return c, nil
}

// loadMeta reads the meta keys, creating them in a new cache.
func (c *Cache) loadMeta() error {
	f, ok, err := c.getMeta(metaFormat)
	if err != nil {
		return err
	}
	if !ok {
		var node [16]byte
		if _, err := rand.Read(node[:]); err != nil {
			return fmt.Errorf("proxycache: make node id: %w", err)
		}
		b := c.db.NewBatch()
		_ = b.Set(metaFormat, putUint64(FormatVersion), nil)
		_ = b.Set(metaNodeID, node[:], nil)
		_ = b.Set(metaState, encodeState(argent.State{}), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("proxycache: initialise: %w", err)
		}
		f = putUint64(FormatVersion)
	}
	if len(f) != 8 || string(f) != string(putUint64(FormatVersion)) {
		return fmt.Errorf("proxycache: format version %x, this build reads %d: %w", f, FormatVersion, argent.ErrCorruption)
	}
	v, ok, err := c.getMeta(metaState)
	if err != nil {
		return err
	}
	st := argent.State{}
	if ok {
		if st, err = decodeState(v); err != nil {
			return err
		}
	}
	c.state.Store(&st)
	if v, ok, err := c.getMeta(metaNodeID); err != nil {
		return err
	} else if ok && len(v) == 16 {
		copy(c.nodeID[:], v)
	}
	if v, ok, err := c.getMeta(metaDataset); err != nil {
		return err
	} else if ok && len(v) == 16 {
		copy(c.mu.dataset[:], v)
	}
	return nil
}

// loadEntries puts every cached key into the policy. It reads the whole e
// key space, values included: Open takes about as long as reading the
// budget's worth of data.
func (c *Cache) loadEntries() error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: entrySpaceStart, UpperBound: entrySpaceEnd})
	if err != nil {
		return fmt.Errorf("proxycache: load entries: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[1:]
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("proxycache: load entry %q: %w", k, err)
		}
		e, err := decodeEntry(v)
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("proxycache: load entry %q: %w", k, err)
		}
		c.mu.nextID++
		c.policy.insert(string(k), c.mu.nextID, e.weight(k))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("proxycache: load entries: %w", err)
	}
	return nil
}

func (c *Cache) getMeta(k []byte) ([]byte, bool, error) {
	v, closer, err := c.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("proxycache: read %s: %w", k, err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

// Close stops the evictor and closes the database. Applied but unsynced
// entries are synced first. Calls after Close return ErrClosed; Get misses.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.closed.Store(true)
	c.mu.Unlock()
	close(c.done)
	c.cancel()
	c.wg.Wait()
	c.closeMu.Lock() // wait for Gets reading Pebble; later ones see closed
	defer c.closeMu.Unlock()
	if c.opts.Registerer != nil {
		c.unregister(c.opts.Registerer)
	}
	syncErr := c.db.LogData(nil, pebble.Sync)
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("proxycache: close: %w", err)
	}
	if syncErr != nil {
		return fmt.Errorf("proxycache: sync at close: %w", syncErr)
	}
	return nil
}

// State returns the applied state: the index every cached entry holds at
// (or a later one, while an Apply is under way), with its time and chain.
func (c *Cache) State() argent.State { return *c.state.Load() }

// Applied returns the applied index.
func (c *Cache) Applied() argent.Index { return c.state.Load().Index }

// NodeID returns the cache's random ID, made when it was created; the proxy
// uses it as its node ID.
func (c *Cache) NodeID() [16]byte { return c.nodeID }

// Dataset returns the cache's dataset ID; zero until one is set.
func (c *Cache) Dataset() argent.DatasetID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.dataset
}

// AdoptDataset sets the dataset ID of a cache that has none (with the
// upstream's ID, on first contact). A cache with another ID refuses with
// ErrDatasetMismatch. It returns the cache's ID.
func (c *Cache) AdoptDataset(id argent.DatasetID) (argent.DatasetID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(); err != nil {
		return c.mu.dataset, err
	}
	if !c.mu.dataset.IsZero() {
		if c.mu.dataset != id && !id.IsZero() {
			return c.mu.dataset, fmt.Errorf("%w: cache holds %s, offered %s", argent.ErrDatasetMismatch, c.mu.dataset, id)
		}
		return c.mu.dataset, nil
	}
	if err := c.db.Set(metaDataset, id[:], pebble.Sync); err != nil {
		return id, fmt.Errorf("proxycache: save dataset id: %w", err)
	}
	c.mu.dataset = id
	return id, nil
}

// writableLocked returns why the cache cannot be written, if it cannot.
func (c *Cache) writableLocked() error {
	if c.mu.closed {
		return argent.ErrClosed
	}
	return c.mu.err
}

// commitLocked commits b without syncing. A failed commit leaves the
// in-memory policy and Pebble possibly disagreeing, so the cache refuses
// every later write; the proxy must reopen it.
func (c *Cache) commitLocked(b *pebble.Batch, what string) error {
	if err := b.Commit(pebble.NoSync); err != nil {
		c.mu.err = fmt.Errorf("proxycache: %s: %w", what, err)
		return c.mu.err
	}
	return nil
}

// Sync makes everything applied and admitted so far durable (one fsync of
// Pebble's WAL) and returns the state that is now durable. Many Applies may
// share one Sync; after a crash the cache reopens at a state at or after
// the last one Sync returned.
func (c *Cache) Sync() (argent.State, error) {
	st := c.State()
	if err := c.db.LogData(nil, pebble.Sync); err != nil {
		return st, fmt.Errorf("proxycache: sync up to %d: %w", st.Index, err)
	}
	return st, nil
}

// BelowDiskFloor reports whether the disk holding the cache has less free
// space than Options.FreeDiskFloor, so that no new key is admitted (as of
// the last check; see Options.FreeSpaceInterval).
func (c *Cache) BelowDiskFloor() bool { return c.floor.low() }

// Compact flushes the memtable and compacts the whole database, so that
// deleted and overwritten entries stop taking disk space. Pebble compacts by
// itself; this is for tests and operators who want the floor now.
func (c *Cache) Compact() error {
	if err := c.db.Flush(); err != nil {
		return fmt.Errorf("proxycache: flush: %w", err)
	}
	if err := c.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("proxycache: compact: %w", err)
	}
	return nil
}

// DiskUsage returns the bytes the database takes on disk, by Pebble's
// account (sstables, WAL, manifest).
func (c *Cache) DiskUsage() uint64 { return c.db.Metrics().DiskSpaceUsage() }

// Weight returns the weight of the cached entries as the eviction policy
// counts it: at most the budget, once pending evictions are done.
func (c *Cache) Weight() uint64 { return c.policy.otter().WeightedSize() }

// Contains reports whether key is cached, without counting an access: for
// callers that are not reads (a prefetch deciding whether to offer a key).
func (c *Cache) Contains(key []byte) bool {
	_, ok := c.policy.get(key)
	return ok
}
