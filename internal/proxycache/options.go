package proxycache

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Cache. Budget is required; every other zero field
// means its default.
type Options struct {
	// Budget bounds the bytes of cached entries: for each key, its key and
	// value bytes plus a fixed overhead (see entryOverhead), absent keys
	// included. It is the proxy's disk budget for cached data; Pebble's own
	// files (WAL, deleted entries not yet compacted away, manifest) come on
	// top, within the bound the package doc states. Required, > 0.
	Budget int64
	// FreeDiskFloor: when the file system holding the cache has less free
	// space than this, Admit refuses keys that are not cached yet. Updates
	// of cached keys and reads go on. Default 0: no floor.
	FreeDiskFloor int64
	// FreeSpace returns the free bytes of the file system holding the
	// cache. It is called at most once per FreeSpaceInterval, and only when
	// FreeDiskFloor > 0. Default: statfs of the cache's directory (on
	// systems without statfs the floor is not enforced).
	FreeSpace func() (uint64, error)
	// FreeSpaceInterval is how long a FreeSpace answer is reused.
	// Default: 1s.
	FreeSpaceInterval time.Duration
	// MemoryCache is the memory, in bytes, of the cache of entries kept in
	// front of Pebble for Get. Default: 16 MiB; negative: none.
	MemoryCache int64
	// BlockCacheSize is the memory of Pebble's block cache for sstable
	// blocks. Pebble also charges its memtables to that cache, so the cache
	// is made BlockCacheSize plus two memtables large. Default: 8 MiB.
	BlockCacheSize int64
	// MemTableSize is the size of Pebble's memtable. The WAL takes up to
	// four memtables on disk (see the package doc), so the default follows
	// the budget: Budget/64, at least 256 KiB, at most 2 MiB. (Smaller
	// memtables cost writes: with 1 MiB, Apply of a cached key took 25%
	// longer than with 4 MiB in BenchmarkCache_Apply; with 2 MiB, about
	// as long.)
	MemTableSize int64
	// EvictDelay is how long the background evictor waits after the first
	// eviction it is told of, so that it deletes evicted entries in batches.
	// Admit and Apply also delete every pending eviction in their own
	// batch. Default: 10ms.
	EvictDelay time.Duration
	// FS is the file system Pebble uses. Default: the OS file system. Tests
	// pass vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Logger receives Pebble's log lines. Default: discard them.
	Logger pebble.Logger
	// Registerer, when set, gets the cache's metrics (argent_proxycache_*).
	// Default: none.
	Registerer prometheus.Registerer
}

// Validate reports whether the options can open a cache.
func (o *Options) Validate() error {
	if o.Budget <= 0 {
		return errors.New("proxycache: Budget must be > 0")
	}
	if o.Budget > 1<<50 {
		return fmt.Errorf("proxycache: Budget %d is implausibly large", o.Budget)
	}
	if o.FreeDiskFloor < 0 {
		return fmt.Errorf("proxycache: FreeDiskFloor %d is negative", o.FreeDiskFloor)
	}
	if o.BlockCacheSize < 0 || o.MemTableSize < 0 {
		return errors.New("proxycache: BlockCacheSize and MemTableSize must not be negative")
	}
	return nil
}

func (o Options) withDefaults(dir string) Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.FreeSpace == nil {
		o.FreeSpace = func() (uint64, error) { return freeSpace(dir) }
	}
	if o.FreeSpaceInterval == 0 {
		o.FreeSpaceInterval = time.Second
	}
	if o.MemoryCache == 0 {
		o.MemoryCache = 16 << 20
	}
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = 8 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = min(max(o.Budget/64, 256<<10), 2<<20)
	}
	if o.EvictDelay == 0 {
		o.EvictDelay = 10 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	return o
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
