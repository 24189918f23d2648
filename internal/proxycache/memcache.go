package proxycache

import (
	"sync/atomic"

	"github.com/maypok86/otter/v2"
)

// memCache keeps recently read entries in memory, in front of Pebble, so a
// hit on a hot key costs two hash lookups instead of a Pebble read and a
// copy. It holds what the e key space holds.
//
// Coherence: a writer (under Cache.mu) commits to Pebble, bumps gen, then
// removes or replaces the keys it wrote, all before it publishes the new
// applied index. A reader notes gen before it reads Pebble and inserts what
// it read only if gen has not moved, checked inside otter's Compute, under
// the key's bucket lock, which the writer's removal also takes. So either
// the insert comes first and the writer's removal follows it, or the
// writer's bump is visible to the check and the insert is dropped. Nobody
// can find a replaced entry once the writer has published.
type memCache struct {
	c   *otter.Cache[string, *Entry]
	gen atomic.Uint64
}

// maxMemValue: larger values are not kept in memory, where they would push
// out many small hot ones.
const maxMemValue = 64 << 10

func newMemCache(bytes int64) *memCache {
	if bytes <= 0 {
		return nil
	}
	return &memCache{c: otter.Must(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(bytes),
		Weigher: func(k string, e *Entry) uint32 {
			return uint32(len(k) + len(e.Value.Value) + 64)
		},
		Logger: &otter.NoopLogger{},
	})}
}

func (m *memCache) get(key []byte) (*Entry, bool) {
	return m.c.GetIfPresent(unsafeString(key))
}

// fill caches e, read from Pebble after gen was g.
func (m *memCache) fill(key []byte, e *Entry, g uint64) {
	if len(e.Value.Value) > maxMemValue {
		return
	}
	m.c.Compute(string(key), func(old *Entry, found bool) (*Entry, otter.ComputeOp) {
		if m.gen.Load() != g {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
}

// invalidate runs after a commit that changed keys became visible in Pebble
// and before the new index is published.
func (m *memCache) invalidate(keys []string) {
	m.gen.Add(1)
	for _, k := range keys {
		m.c.Invalidate(k)
	}
}

// clear drops everything.
func (m *memCache) clear() {
	m.gen.Add(1)
	m.c.InvalidateAll()
}

// put caches e for key after a writer committed it.
func (m *memCache) put(key string, e *Entry) {
	m.gen.Add(1)
	if len(e.Value.Value) > maxMemValue {
		m.c.Invalidate(key)
		return
	}
	m.c.Set(key, e)
}
