package proxycache

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Get returns key's cached entry, or false on a miss. A hit counts as an
// access for the eviction policy.
//
// The entry holds at every index from its Since up to an index at or after
// Applied() as it was when Get was called (see Entry.Since): a reader that
// serves at index S, read from Applied() (or published after Apply
// returned) before calling Get, uses the entry only if Since <= S. An entry
// whose Since is above S was written by a batch after S: the reader must
// answer from elsewhere (its sliding window, or a replica).
//
// A Pebble read error is counted and answered as a miss: the proxy then
// resolves the key elsewhere, which is always correct.
func (c *Cache) Get(key []byte) (Entry, bool) {
	if c.closed.Load() || !c.policy.access(key) {
		c.stats.misses.Add(1)
		return Entry{}, false
	}
	if c.mem != nil {
		if e, ok := c.mem.get(key); ok {
			c.stats.hits.Add(1)
			return *e, true
		}
	}
	var g uint64
	if c.mem != nil {
		g = c.mem.gen.Load()
	}
	e, ok, err := c.read(key)
	if err != nil || !ok {
		if err != nil {
			c.stats.readErrors.Add(1)
		}
		c.stats.misses.Add(1)
		return Entry{}, false // evicted meanwhile, or unreadable
	}
	if c.mem != nil {
		c.mem.fill(key, &e, g)
	}
	c.stats.hits.Add(1)
	return e, true
}

// read reads key's entry from Pebble; the result owns its value. It holds
// closeMu for reading, so that Close does not close the database under it.
func (c *Cache) read(key []byte) (Entry, bool, error) {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return Entry{}, false, nil
	}
	var buf [128]byte
	k := appendEntryKey(buf[:0], key)
	v, closer, err := c.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	defer func() { _ = closer.Close() }()
	e, err := decodeEntry(v)
	if err != nil {
		return Entry{}, false, err
	}
	if e.Present {
		e.Value.Value = append(make([]byte, 0, len(e.Value.Value)), e.Value.Value...)
	}
	return e, true, nil
}
