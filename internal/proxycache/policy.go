package proxycache

import (
	"math"
	"sync"
	"sync/atomic"
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
//
// # The frequency sketch
//
// W-TinyLFU admits a key when its estimated frequency beats that of the
// key it would evict. The estimates come from a count-min sketch of 4-bit
// counters, sized (a power of two of 64-bit words) for an expected entry
// count E, whose counters are all halved after every sample of 10·E
// increments. A weighted otter cache sizes it lazily: when the cache first
// holds half its maximum weight, for the entries it holds then, and anew,
// with every count back at zero, each time the entry count passes the
// table's size. A cache that fills thus ends with E at the count where the
// table last grew, between half and all of its entries: with the budgets
// of bench/proxyhit, 513 of 1,000 entries at 1% (a sample of 5,130
// increments instead of 10,000), 8,193 of 10,000 at 10%.
//
// The policy therefore sizes the sketch itself, for sketchFactor times the
// entries the budget holds, estimated from the mean weight of the first
// entries inserted:
// after sizeSample insertions, or when they weigh half the budget if that
// comes first, it replaces the otter cache by one made with that
// InitialCapacity and moves the (at most sizeSample) keys over, with
// their admission ids. Otter starts counting only at half the budget, so
// the old cache has usually counted nothing yet and no frequency is lost;
// the keys' places in otter's queues are, except their order from coldest
// to hottest. If the cache later holds more entries than estimated,
// otter's own lazy sizing grows the sketch as before. docs/PROXY.md gives
// the hit rates with and without.
//
// The replacement keeps the invariant above. It runs under Cache.mu, so
// nothing inserts, reweighs or drains meanwhile. The old cache's pending
// work is done first (CleanUp), so every eviction it decided has reached
// the pending set and the old cache is within its maximum; with no more
// writes it never evicts again, and its deletion events are ignored from
// the moment the new cache is published. Gets that find a key missing
// while it is being moved over miss, which is always correct.
type policy struct {
	c      atomic.Pointer[otter.Cache[string, policyValue]]
	budget int64

	// sized, seen and seenWeight are touched only under Cache.mu (or in
	// Open, before the Cache is shared): sized is set once the sketch has
	// been sized for the budget; until then seen counts the insertions and
	// seenWeight sums their weights.
	sized      bool
	seen       int
	seenWeight uint64

	mu struct {
		sync.Mutex
		pending map[string]policyValue // evicted key -> the evicted admission
	}
	// kick wakes the background evictor; it holds at most one token.
	kick chan struct{}
}

// sizeSample is how many insertions the mean entry weight is estimated
// from, at most, before the sketch is sized (see policy).
const sizeSample = 1024

// sketchFactor sizes the sketch for this many times the entries the
// budget holds. otter ties the aging period to the size (counts halve
// after 10 increments per entry sized for), so 2 lets a small cache judge
// keys by twice as many reads. On bench/proxyhit's Zipf(0.99) traces it
// raised the ratio to the optimum at 1% from 0.870–0.893 to 0.901–0.905
// (stationary) and from 0.848–0.864 to 0.867–0.875 (hot set moving), and
// at 10% from 0.926 to 0.932–0.933 (stationary); it cost 0.004 at 20%
// when the hot set moves (0.922 to 0.918), where slower aging learns a new
// hot set later. 4 cost 1–2 points there at 10% and 20%.
const sketchFactor = 2

// policyValue is what otter holds for a cached key.
type policyValue struct {
	id     uint64 // admission id, unique per insertion
	weight uint32
}

func newPolicy(budget int64) *policy {
	p := &policy{budget: budget, kick: make(chan struct{}, 1)}
	p.mu.pending = make(map[string]policyValue)
	p.c.Store(p.newOtter(0))
	return p
}

// newOtter returns an otter cache for the policy. entries > 0 sizes its
// frequency sketch for that many entries up front; 0 leaves it to otter.
// Its deletion events reach the pending set only while it is the policy's
// cache.
func (p *policy) newOtter(entries int) *otter.Cache[string, policyValue] {
	var self *otter.Cache[string, policyValue]
	self = otter.Must(&otter.Options[string, policyValue]{
		MaximumWeight:   uint64(p.budget),
		InitialCapacity: entries,
		Weigher:         func(_ string, v policyValue) uint32 { return v.weight },
		OnAtomicDeletion: func(e otter.DeletionEvent[string, policyValue]) {
			if p.c.Load() == self {
				p.onDeletion(e)
			}
		},
		Logger: &otter.NoopLogger{},
		// Maintenance runs on the calling goroutine. With otter's default
		// (a goroutine per drain) a key read thousands of times was
		// sometimes evicted for a key admitted once, when the reads
		// arrived before the policy had processed the key's insertion
		// (TestCache_HotKeysStay lost hot keys in about a quarter of the
		// runs). onDeletion takes only policy.mu, so running it under our
		// own locks is safe.
		Executor: func(fn func()) { fn() },
	})
	return self
}

// otter returns the policy's current otter cache.
func (p *policy) otter() *otter.Cache[string, policyValue] { return p.c.Load() }

// sizeSketch replaces the otter cache by one whose frequency sketch is
// sized for the entries the budget holds, estimated from the insertions
// seen so far, and moves the keys over (see policy). Under Cache.mu.
func (p *policy) sizeSketch() {
	p.sized = true
	mean := max(p.seenWeight/uint64(max(p.seen, 1)), 1)
	n := int(min(sketchFactor*uint64(p.budget)/mean, math.MaxInt32))
	old := p.otter()
	old.CleanUp()
	var moved []otter.Entry[string, policyValue]
	for e := range old.Coldest() { // coldest first: the hottest end up most recent
		moved = append(moved, e)
	}
	c := p.newOtter(max(n, 1))
	p.c.Store(c)
	for _, e := range moved {
		c.Set(e.Key, e.Value)
	}
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
	_, ok := p.otter().GetIfPresent(unsafeString(key))
	return ok
}

// get returns key's admission without recording an access.
func (p *policy) get(key []byte) (policyValue, bool) {
	e, ok := p.otter().GetEntryQuietly(unsafeString(key))
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

// insert records an admission of key with weight w under id. Under
// Cache.mu (or in Open).
func (p *policy) insert(key string, id uint64, w uint32) {
	p.mu.Lock()
	delete(p.mu.pending, key) // admitted again: the pending eviction is void
	p.mu.Unlock()
	if !p.sized {
		p.seen++
		p.seenWeight += uint64(w)
		if p.seen >= sizeSample || p.seenWeight >= uint64(p.budget)/2 {
			p.sizeSketch()
		}
	}
	p.otter().Set(key, policyValue{id: id, weight: w})
}

// reweigh sets the weight of key if it is still in otter (an evicted key is
// not brought back).
func (p *policy) reweigh(key []byte, w uint32) {
	p.otter().ComputeIfPresent(string(key), func(old policyValue) (policyValue, otter.ComputeOp) {
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
	p.otter().InvalidateAll()
	p.mu.Lock()
	p.mu.pending = make(map[string]policyValue)
	p.mu.Unlock()
}

// unsafeString views b as a string without copying, for lookups that do not
// keep the key.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
