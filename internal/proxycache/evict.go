package proxycache

import (
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// drainLocked adds to b the deletes of the entries the policy evicted, and
// returns their keys. It must come after every other write of the batch:
// an eviction overrides them.
//
// A pending key is deleted unless otter holds it under another admission id:
// then it was admitted again after the eviction and its entry is live. When
// otter still shows the evicted admission itself, otter is between its
// OnAtomicDeletion call and the removal: the eviction is decided, delete.
func (c *Cache) drainLocked(b *pebble.Batch) []string {
	pending := c.policy.takePending()
	if len(pending) == 0 {
		return nil
	}
	keys := make([]string, 0, len(pending))
	for k, ev := range pending {
		if v, ok := c.policy.get([]byte(k)); ok && v.id != ev.id {
			continue
		}
		// The size of the deleted value steers Pebble's compactions
		// toward the space that deletes free.
		size := int64(ev.weight) - entryOverhead - int64(len(k)) + recordHeader
		_ = b.DeleteSized(entryKey([]byte(k)), uint32(max(size, recordHeader)), nil)
		keys = append(keys, k)
	}
	return keys
}

// evictNowLocked deletes the pending evictions in a batch of their own.
func (c *Cache) evictNowLocked() error {
	if c.writableLocked() != nil || c.policy.pendingLen() == 0 {
		return nil
	}
	b := c.db.NewBatch()
	defer func() { _ = b.Close() }()
	evicted := c.drainLocked(b)
	if len(evicted) == 0 {
		return nil
	}
	c.gate.wrote(b.Len())
	if err := c.commitLocked(b, "evict"); err != nil {
		return err
	}
	if c.mem != nil {
		c.mem.invalidate(evicted)
	}
	c.stats.evicted.Add(uint64(len(evicted)))
	return nil
}

// evictLoop deletes evicted entries from Pebble in the background, so that
// the disk follows the budget even when no Apply comes: it wakes when the
// policy evicts, waits EvictDelay to gather more, and deletes them in one
// batch.
func (c *Cache) evictLoop() {
	defer c.wg.Done()
	t := time.NewTimer(0)
	if !t.Stop() {
		<-t.C
	}
	for {
		select {
		case <-c.done:
			return
		case <-c.policy.kick:
		}
		t.Reset(c.opts.EvictDelay)
		select {
		case <-c.done:
			t.Stop()
			return
		case <-t.C:
		}
		c.mu.Lock()
		_ = c.evictNowLocked() // a failure is kept in c.mu.err and returned by the next write
		c.mu.Unlock()
	}
}

// EvictNow deletes the entries the policy has evicted so far, at once. The
// background evictor does this within EvictDelay; tests and shutdown paths
// call it to reach the budget now.
func (c *Cache) EvictNow() error {
	c.policy.otter().CleanUp()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	return c.evictNowLocked()
}
