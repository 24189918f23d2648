package proxycache

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// StoredEntries returns every entry in Pebble, evicted-but-not-yet-deleted
// ones included: what a crash now could bring back.
func (c *Cache) StoredEntries() (map[string]Entry, error) {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: entrySpaceStart, UpperBound: entrySpaceEnd})
	if err != nil {
		return nil, err
	}
	defer func() { _ = it.Close() }()
	out := make(map[string]Entry)
	for ok := it.First(); ok; ok = it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			return nil, err
		}
		e.Value.Value = append([]byte(nil), e.Value.Value...)
		out[string(it.Key()[1:])] = e
	}
	return out, it.Error()
}

// CheckPolicy checks the invariant Apply relies on: the keys in Pebble are
// the keys in the policy plus the pending evictions.
func (c *Cache) CheckPolicy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.StoredEntries()
	if err != nil {
		return err
	}
	for k := range stored {
		if !c.policy.cached([]byte(k)) {
			return fmt.Errorf("key %q is in Pebble but neither in the policy nor pending", k)
		}
	}
	for k := range c.policy.otter().Keys() {
		if _, ok := stored[k]; !ok {
			return fmt.Errorf("key %q is in the policy but not in Pebble", k)
		}
	}
	return nil
}

// PolicyKeys returns the number of keys the policy holds.
func (c *Cache) PolicyKeys() int { return c.policy.otter().EstimatedSize() }

// Metrics returns Pebble's metrics.
func (c *Cache) Metrics() *pebble.Metrics { return c.db.Metrics() }

// WaitForCleaning waits until Pebble has deleted the files it no longer
// needs (it does so in the background).
func (c *Cache) WaitForCleaning() { c.db.TestOnlyWaitForCleaning() }

// SetDiskLimit sets the disk usage above which Admit refuses new keys.
func (c *Cache) SetDiskLimit(n uint64) { c.gate.limit.Store(n) }

// DiskLimit returns the disk usage above which Admit refuses new keys.
func (c *Cache) DiskLimit() uint64 { return c.gate.limit.Load() }
