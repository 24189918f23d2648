package kv

import (
	"sync/atomic"

	"github.com/maypok86/otter/v2"

	"github.com/argent-kv/argent"
)

// latestCache keeps recently read latest versions in memory, in front of
// Pebble, for the read hot path. It holds what the k key space holds (mod
// index, tombstone, value), so a read at index S uses a cached version only
// when its mod index is at or below S, exactly as it would the one on disk.
//
// Coherence: a Writer commits to Pebble, then bumps gen, then invalidates
// the keys it wrote. A reader notes gen before it reads Pebble, inserts what
// it read, and removes it again if gen moved meanwhile. Whatever the
// interleaving, a version that a commit replaced does not stay cached: either
// the reader sees gen move and removes it, or the writer's invalidation comes
// after the insert.
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
	k := string(key)
	lc.c.Set(k, v)
	if lc.gen.Load() != g {
		lc.c.Invalidate(k)
	}
}

// invalidate is called after a commit that wrote keys became visible in
// Pebble.
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

// versionAt answers a read at index at from a latest version: the value, an
// ErrNotFound, or ok=false when the version is newer than at and history
// must answer.
func versionAt(v version, at argent.Index) (Value, error, bool) {
	if v.mod > at {
		return Value{}, nil, false
	}
	if v.tombstone {
		return Value{}, argent.ErrNotFound, true
	}
	return Value{Value: v.value, ModIndex: v.mod}, nil, true
}
