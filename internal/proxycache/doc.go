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
// # Disk
//
// Budget bounds the weight of the cached entries: key and value bytes plus
// 48 bytes each, which after a full compaction is within 1% of their
// sstable bytes (incompressible values). On top of it come Pebble's WAL, up
// to four memtables (MemTableSize defaults to Budget/16, 256 KiB to 4 MiB),
// and, while it runs, deleted and overwritten entries that compactions have
// not dropped yet. Evictions delete keys all over the key space, the worst
// case for an LSM: admitting ten times the budget of distinct keys as fast
// as possible, so that compactions fall behind, the sstables average 1.4x
// to 1.6x the budget and peak at 2.3x to 3.4x; see TestCache_DiskOverhead.
// A proxy that must hold a hard disk limit sets Budget to about a third of
// it.
//
// # Memory
//
// The policy holds every cached key: about 85 bytes of heap per key plus
// the key itself (97 bytes per 12-byte key, measured). On top come the
// memory cache of hot entries (MemoryCache) and Pebble's block cache
// (BlockCacheSize plus two memtables).
//
// The package does not talk to the network, check chain hashes or keep the
// sliding window; the proxy node does. See doc comments of Get and Admit for
// the contract between them.
package proxycache
