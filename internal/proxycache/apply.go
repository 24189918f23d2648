package proxycache

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/argent-kv/argent"
)

// Apply applies log entries, in order, to the cached keys and records the
// last entry's state as the applied state, in one Pebble batch, without
// fsync (see Sync). The first entry must have index Applied()+1 and the
// others must follow without gaps.
//
// Only cached keys change: a put of a cached key replaces its entry, a
// delete or a prefix delete turns cached keys into absent entries (they
// stay cached: a key that was read is likely read again); a put or delete
// of a key that is not cached is ignored. The same batch deletes the
// entries the policy evicted since the last write. A crash therefore leaves
// the cache at the state of one Apply (or Admit) with every entry equal to
// its value at that state's index.
//
// Call Apply for every entry of the log; the proxy's log applier does, from
// one goroutine. Get and Admit may run concurrently.
func (c *Cache) Apply(entries ...*argent.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	cur := c.State()
	for i, e := range entries {
		if want := cur.Index + argent.Index(i) + 1; e.Index != want {
			return fmt.Errorf("%w: proxycache: apply entry %d, want %d", argent.ErrInvalid, e.Index, want)
		}
	}
	// dirty holds the new entry of every cached key the entries wrote, so
	// that each key is written once, with its last value.
	dirty := make(map[string]*Entry)
	var order []string
	set := func(key []byte, e *Entry) {
		k := string(key)
		if _, ok := dirty[k]; !ok {
			order = append(order, k)
		}
		dirty[k] = e
	}
	for _, le := range entries {
		for _, op := range le.Ops {
			switch op.Type {
			case argent.OpPut:
				if c.policy.cached(op.Key) {
					set(op.Key, &Entry{Present: true, Value: argent.Value{Value: op.Value, ModIndex: le.Index}, Since: le.Index})
				}
			case argent.OpDelete:
				if c.policy.cached(op.Key) {
					set(op.Key, &Entry{Value: argent.Value{ModIndex: le.Index}, Since: le.Index})
				}
			case argent.OpDeletePrefix:
				if err := c.deletePrefixLocked(op.Key, le.Index, set); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: proxycache: entry %d has op type %d", argent.ErrInvalid, le.Index, op.Type)
			}
		}
	}
	last := entries[len(entries)-1]
	st := argent.State{Index: last.Index, Time: last.Time, Chain: last.Chain}

	b := c.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, k := range order {
		_ = b.Set(entryKey([]byte(k)), encodeEntry(dirty[k]), nil)
	}
	_ = b.Set(metaState, encodeState(st), nil)
	evicted := c.drainLocked(b)
	c.gate.wrote(b.Len())
	if err := c.commitLocked(b, fmt.Sprintf("apply up to %d", st.Index)); err != nil {
		return err
	}
	for _, k := range order {
		c.policy.reweigh([]byte(k), dirty[k].weight([]byte(k)))
	}
	if c.mem != nil {
		c.mem.invalidate(append(order, evicted...))
	}
	c.state.Store(&st)
	c.stats.applied.Add(uint64(len(entries)))
	c.stats.updated.Add(uint64(len(order)))
	c.stats.evicted.Add(uint64(len(evicted)))
	return nil
}

// deletePrefixLocked marks every cached key under prefix absent as of index.
// The cached keys are exactly the keys in Pebble (see policy), and a batch
// being built adds none, so iterating the database finds them all.
func (c *Cache) deletePrefixLocked(prefix []byte, index argent.Index, set func([]byte, *Entry)) error {
	lower, upper := prefixBounds(prefix)
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("proxycache: delete prefix %q: %w", prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		set(it.Key()[1:], &Entry{Value: argent.Value{ModIndex: index}, Since: index})
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("proxycache: delete prefix %q: %w", prefix, err)
	}
	return nil
}

// Reset empties the cache and sets its applied state to st, in one batch,
// without fsync. The proxy calls it when it cannot follow the log from its
// own index (its upstreams no longer hold it): it then starts over, empty,
// at an upstream's state. The index never goes back: st.Index must be at
// least Applied().
func (c *Cache) Reset(st argent.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writableLocked(); err != nil {
		return err
	}
	if cur := c.Applied(); st.Index < cur {
		return fmt.Errorf("%w: proxycache: reset to %d, applied %d", argent.ErrInvalid, st.Index, cur)
	}
	b := c.db.NewBatch()
	defer func() { _ = b.Close() }()
	_ = b.DeleteRange(entrySpaceStart, entrySpaceEnd, nil)
	_ = b.Set(metaState, encodeState(st), nil)
	if err := c.commitLocked(b, fmt.Sprintf("reset to %d", st.Index)); err != nil {
		return err
	}
	c.policy.reset()
	if c.mem != nil {
		c.mem.clear()
	}
	c.state.Store(&st)
	return nil
}
