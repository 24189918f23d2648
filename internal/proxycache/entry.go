package proxycache

import (
	"fmt"

	"github.com/argent-kv/argent"
)

// Entry is what the cache knows about one key: its value, or that it is
// absent, together with the range of indexes over which that holds.
type Entry struct {
	// Present is false for a key known to be absent. Caching absent keys
	// saves a round trip for keys that are read but do not exist; they
	// weigh their key bytes plus a fixed overhead.
	Present bool
	// Value is the key's value when Present, with its mod index: the index
	// of the batch that last wrote the key, the put of a present key, the
	// delete of an absent one, or 0 for an absent key whose delete index is
	// not known. The bytes of a Value returned by Get may be shared with
	// the cache: callers must not modify them.
	argent.Value
	// Since is the first index from which the entry is known to hold. An
	// entry returned by Get holds at every index from Since up to an index
	// at or after the cache's applied index when Get was called, so a
	// reader serving at index S (S at most that applied index) may use it
	// only if Since <= S. Apply sets it to the writing batch's index; see
	// Admit for what it is on admission.
	Since argent.Index
}

// weight is what an entry of key weighs against the budget.
func (e *Entry) weight(key []byte) uint32 {
	return uint32(min(len(key)+len(e.Value.Value)+entryOverhead, 1<<31))
}

// normalize fills Since for an entry admitted as valid at index at and checks
// that its indexes make sense.
func (e *Entry) normalize(at argent.Index) error {
	if !e.Present && len(e.Value.Value) > 0 {
		return fmt.Errorf("%w: absent entry with a value", argent.ErrInvalid)
	}
	if e.ModIndex > at || e.Since > at {
		return fmt.Errorf("%w: entry with mod index %d, since %d is newer than its index %d", argent.ErrInvalid, e.ModIndex, e.Since, at)
	}
	if e.Present && e.ModIndex == 0 {
		return fmt.Errorf("%w: present entry without a mod index", argent.ErrInvalid)
	}
	switch {
	case e.Since == 0 && e.ModIndex == 0:
		e.Since = at // absent, delete index unknown: known to hold at at
	case e.Since < e.ModIndex:
		e.Since = e.ModIndex // it cannot hold before it was written
	}
	return nil
}
