// Package proxycache is a proxy's persistent partial cache: for a subset of
// the keys, each key's entry (its value, or that it is absent) as of the
// proxy's applied index S, kept in Pebble under a disk budget.
//
// The proxy's log applier calls Apply for every log entry, in order: cached
// keys change in place, the others are ignored, and S moves, all in one
// Pebble batch. Its miss resolver calls Admit with an entry it proved to be
// the value at S. Reads call Get. A W-TinyLFU policy (otter) tracks each
// cached key's size and accesses and picks what to evict; evicted entries
// are deleted from Pebble in batches. After a crash the cache reopens at
// one index S' with every entry equal to its value at S', and warm.
//
//	c, _ := proxycache.Open(dir, proxycache.Options{Budget: 1 << 30})
//	_ = c.Reset(upstreamState)        // a new proxy starts empty at its upstream's state
//	_ = c.Apply(&entry)               // for every log entry, in order
//	st, _ := c.Sync()                 // many Applies share one fsync; serve st.Index after it
//	if e, ok := c.Get(k); ok && e.Since <= st.Index { /* e is k's value at st.Index */ }
//	ok, _ := c.Admit(k, fetched, at)  // at: the Applied() the fetched value was proved for
//
// The package does not talk to the network, check chain hashes or keep the
// sliding window; the proxy node does. See doc comments of Get and Admit for
// the contract between them.
package proxycache
