package proxycache

import (
	"sync"
	"unsafe"

	"github.com/maypok86/otter/v2"
)

// policy decides which keys stay cached: a W-TinyLFU cache (otter) of key ->
// weight, bounded by the budget. It holds no values; the entries live in
// Pebble. Gets record accesses in it; Admit inserts; Apply updates weights.
//
// When otter evicts a key (or refuses a new one at admission), the key's
// entry is still in Pebble: it goes to the pending set until a Pebble batch
// deletes it (see Cache.drainLocked). So, between Cache.mu critical
// sections, the keys in Pebble are exactly the keys in otter plus the
// pending ones. That is what lets Apply decide whether a key is cached
// without reading Pebble: a key in neither is not cached, and a key in
// either must be updated, or a crash could bring back its old value at a
// newer index.
//
// The pending set is filled from OnAtomicDeletion, which otter calls under
// the key's bucket lock before the removal is visible, so a key that a
// reader finds missing from otter is already pending. Each admission gets an
// id, so an eviction of a key that was admitted again since is told from
// one still to be applied.
//
// Lock order: Cache.mu, then otter's internal locks, then policy.mu (a leaf:
// held only to touch the pending set, never while calling otter).
type policy struct {
	c *otter.Cache[string, policyValue]

	mu struct {
		sync.Mutex
		pending map[string]policyValue // evicted key -> the evicted admission
	}
	// kick wakes the background evictor; it holds at most one token.
	kick chan struct{}
}

// policyValue is what otter holds for a cached key.
type policyValue struct {
	id     uint64 // admission id, unique per insertion
	weight uint32
}

func newPolicy(budget int64) *policy {
	p := &policy{kick: make(chan struct{}, 1)}
	p.mu.pending = make(map[string]policyValue)
	p.c = otter.Must(&otter.Options[string, policyValue]{
		MaximumWeight:    uint64(budget),
		Weigher:          func(_ string, v policyValue) uint32 { return v.weight },
		OnAtomicDeletion: p.onDeletion,
		Logger:           &otter.NoopLogger{},
		// Maintenance runs on the calling goroutine. With otter's default
		// (a goroutine per drain) a key read thousands of times was
		// sometimes evicted for a key admitted once, when the reads
		// arrived before the policy had processed the key's insertion
		// (TestCache_HotKeysStay lost hot keys in about a quarter of the
		// runs). onDeletion takes only policy.mu, so running it under our
		// own locks is safe.
		Executor: func(fn func()) { fn() },
	})
	return p
}

// onDeletion runs under otter's bucket lock: it may only touch the pending
// set and the kick channel.
func (p *policy) onDeletion(e otter.DeletionEvent[string, policyValue]) {
	if !e.WasEvicted() {
		return // our own replacement or invalidation: Pebble already agrees
	}
	p.mu.Lock()
	p.mu.pending[e.Key] = e.Value
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// access looks key up for a read, recording the access. It does not keep
// key.
func (p *policy) access(key []byte) bool {
	_, ok := p.c.GetIfPresent(unsafeString(key))
	return ok
}

// get returns key's admission without recording an access.
func (p *policy) get(key []byte) (policyValue, bool) {
	e, ok := p.c.GetEntryQuietly(unsafeString(key))
	return e.Value, ok
}

// cached reports whether key's entry is in Pebble: it is in otter or
// pending eviction. Only meaningful under Cache.mu (nothing else adds to
// Pebble or drains the pending set).
func (p *policy) cached(key []byte) bool {
	if _, ok := p.get(key); ok {
		return true
	}
	p.mu.Lock()
	_, ok := p.mu.pending[unsafeString(key)]
	p.mu.Unlock()
	return ok
}

// insert records an admission of key with weight w under id.
func (p *policy) insert(key string, id uint64, w uint32) {
	p.mu.Lock()
	delete(p.mu.pending, key) // admitted again: the pending eviction is void
	p.mu.Unlock()
	p.c.Set(key, policyValue{id: id, weight: w})
}

// reweigh sets the weight of key if it is still in otter (an evicted key is
// not brought back).
func (p *policy) reweigh(key []byte, w uint32) {
	p.c.ComputeIfPresent(string(key), func(old policyValue) (policyValue, otter.ComputeOp) {
		if old.weight == w {
			return old, otter.CancelOp
		}
		return policyValue{id: old.id, weight: w}, otter.WriteOp
	})
}

// takePending returns the pending evictions and empties the set.
func (p *policy) takePending() map[string]policyValue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mu.pending) == 0 {
		return nil
	}
	out := p.mu.pending
	p.mu.pending = make(map[string]policyValue)
	return out
}

// pendingLen returns the number of evictions not yet applied to Pebble.
func (p *policy) pendingLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.pending)
}

// reset forgets every key (the cache was emptied).
func (p *policy) reset() {
	p.c.InvalidateAll()
	p.mu.Lock()
	p.mu.pending = make(map[string]policyValue)
	p.mu.Unlock()
}

// unsafeString views b as a string without copying, for lookups that do not
// keep the key.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
