package kv

import (
	"sync/atomic"

	"github.com/maypok86/otter/v2"
)

// latestCache keeps recently read latest versions in memory, in front of
// Pebble, for the read hot path. It holds what the k key space holds (mod
// index, tombstone, value), so a read at index S uses a cached version only
// when its mod index is at or below S, exactly as it would the one on disk.
//
// Coherence: the cache never holds a version Pebble no longer holds, so
// Writers read through it too. A Writer (or a trim) commits to Pebble, then
// bumps gen, then stores or drops the keys it wrote (update, invalidate). A
// reader notes gen before it reads Pebble and inserts what it read only if
// gen has not moved, checked under the key's lock (Compute): either its
// insert comes before the bump, and the writer's store or drop replaces it,
// or it sees the bump and inserts nothing. A writer's store and drop come
// before the next Writer starts and before the new state is published.
type latestCache struct {
	c   *otter.Cache[string, version]
	gen atomic.Uint64
}

func newLatestCache(bytes int64) *latestCache {
	if bytes <= 0 {
		return nil
	}
	return &latestCache{c: otter.Must(&otter.Options[string, version]{
		MaximumWeight: uint64(bytes),
		Weigher: func(k string, v version) uint32 {
			return uint32(min(len(k)+len(v.value)+48, 1<<31))
		},
	})}
}

// get returns the cached latest version of key.
func (lc *latestCache) get(key []byte) (version, bool) {
	return lc.c.GetIfPresent(string(key))
}

// fill caches v, read from Pebble after gen was g.
func (lc *latestCache) fill(key []byte, v version, g uint64) {
	if len(v.value) > 1<<20 {
		return // large values would push out many small hot ones
	}
	lc.c.Compute(string(key), func(old version, found bool) (version, otter.ComputeOp) {
		if lc.gen.Load() != g {
			return old, otter.CancelOp
		}
		return v, otter.WriteOp
	})
}

// update is called after a Writer's commit became visible in Pebble, with
// the latest versions it wrote: it caches them (write-through, so the next
// Writer finds them) or drops those that left the k key space.
func (lc *latestCache) update(written map[string]pendingVersion) {
	lc.gen.Add(1)
	for k, p := range written {
		if !p.present || len(p.v.value) > 1<<20 {
			lc.c.Invalidate(k)
			continue
		}
		lc.c.Set(k, p.v) // the Writer's copy: nothing else holds it
	}
}

// invalidate is called after a commit that changed keys behind the Writers'
// back (a trim dropping tombstones) became visible in Pebble.
func (lc *latestCache) invalidate(keys [][]byte) {
	lc.gen.Add(1)
	for _, k := range keys {
		lc.c.Invalidate(string(k))
	}
}

// clear drops everything (a snapshot load replaced the data).
func (lc *latestCache) clear() {
	lc.gen.Add(1)
	lc.c.InvalidateAll()
}
