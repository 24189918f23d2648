package proxycache

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
)

// Admit inserts the result of a miss: e is key's entry as of index at. It
// returns true if the entry was stored, false if it was refused:
//
//   - at is not the cache's applied index. The caller read Applied(),
//     proved that e is the value at that index (the value fetched as of S1
//     enters at S2 only if the proxy's sliding window shows no write of the
//     key in (S1, S2], docs/CONTRACT.md promise 5), and an Apply moved the index
//     meanwhile. Apply and Admit exclude each other, so the check and the
//     insert are one step: a stale value never enters. The caller may still
//     serve e at the index it proved it for, and admit it later.
//   - the key is not cached and free disk space is below FreeDiskFloor.
//   - the key is not cached and the cache's files take more than their
//     limit, because compactions have not yet dropped what evictions
//     deleted (see the package doc, section Disk). The next miss of the
//     key brings it again.
//
// Contract: e must be key's value at index at: Present with its Value and
// ModIndex, or absent. e.Since may say from which index the caller knows e
// holds (at least ModIndex); left zero, it is ModIndex, or at for an absent
// entry whose delete index is not known (ModIndex 0). A key already cached
// is overwritten (two misses of one key may both admit it).
//
// Admission is not retention: the policy may refuse a new key whose
// estimated frequency is lower than that of the entry it would evict. Its
// entry is then deleted again, by the batch of the Admit or Apply during
// which the policy decided, or by the background evictor. Every Admit
// counts as an access.
func (c *Cache) Admit(key []byte, e Entry, at argent.Index) (bool, error) {
	if len(key) == 0 {
		return false, fmt.Errorf("%w: proxycache: admit of an empty key", argent.ErrInvalid)
	}
	if err := e.normalize(at); err != nil {
		return false, fmt.Errorf("proxycache: admit %q: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(); err != nil {
		return false, err
	}
	if cur := c.Applied(); at != cur {
		c.stats.refusedStale.Add(1)
		return false, nil
	}
	if !c.policy.cached(key) {
		if c.floor.low() {
			c.stats.refusedDisk.Add(1)
			return false, nil
		}
		if c.gate.over(c.db) {
			c.stats.refusedLimit.Add(1)
			return false, nil
		}
	}
	k := string(key)
	if e.Present {
		e.Value.Value = append([]byte(nil), e.Value.Value...) // the memory cache keeps it
	}
	// The policy decides first, so that the batch that writes the entry
	// also deletes what this admission evicted. Most evictions are
	// candidates that lost their admission test on leaving the policy's
	// window, admitted a percent of the budget earlier: their put and
	// their delete then meet in one memtable, whose flush writes the
	// small tombstone but not the value. Readers that find key in the
	// policy before the commit read Pebble's old entry, which is key's
	// value at the applied index too, or miss.
	c.mu.nextID++
	c.policy.insert(k, c.mu.nextID, e.weight(key))
	b := c.db.NewBatch()
	defer func() { _ = b.Close() }()
	_ = b.Set(entryKey(key), encodeEntry(&e), nil)
	evicted := c.drainLocked(b)
	c.gate.wrote(b.Len())
	if err := b.Commit(pebble.NoSync); err != nil {
		c.mu.err = fmt.Errorf("proxycache: admit %q: %w", key, err) // see commitLocked
		return false, c.mu.err
	}
	if c.mem != nil {
		if len(evicted) > 0 {
			c.mem.invalidate(evicted)
		}
		if !slices.Contains(evicted, k) { // else the policy refused key at once
			c.mem.put(k, &e)
		}
	}
	c.stats.evicted.Add(uint64(len(evicted)))
	c.stats.admitted.Add(1)
	return true, nil
}
