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
// sstable bytes (incompressible values). On top of it come Pebble's WAL (up
// to four memtables; MemTableSize defaults to Budget/64, 256 KiB to
// 2 MiB), the manifest and options (a few hundred KiB), and, until
// compactions drop them, entries that were evicted or overwritten and the
// outputs of compactions under way.
//
// The files stay within 1.3x the budget plus five memtables plus 2 MiB:
// with the default memtable, 1.3x plus 7 MiB at a 64 MiB budget, plus at
// most 12 MiB at any budget.
// TestCache_DiskOverhead admits ten times the budget's worth of distinct
// keys as fast as it can and measures the directory every 2 ms: with a
// 64 MiB budget the peak is 1.30x-1.34x the budget (WAL of 3-4 MiB
// included) and the mean 1.1x-1.2x; with 4 MiB, 1.65x-1.75x (the fixed
// part dominates). Before these measures the peak was 2.0x-2.4x at 64 MiB
// (16 MiB of WAL included) and 2.8x-3.1x at 4 MiB. The bound comes from:
//
//   - Evictions leave with the admission that caused them. Admit writes
//     the entry and deletes what the policy evicted in one batch. Most
//     evictions are candidates that lose W-TinyLFU's admission test a
//     percent of the budget after they came: their put and their delete
//     meet in one memtable, and only the small tombstone reaches an
//     sstable (a third of the data flushed before).
//   - No compaction is large next to the budget: tables of Budget/256
//     (64 KiB to 4 MiB) at every level, a base level of Budget/32, and L0
//     compacted at 8 tables (see pebbleOptions).
//   - A disk limit. While the files take more than 1.2x the budget plus
//     four memtables plus 1 MiB, counting the compactions under way at
//     their whole output and keeping room for the next compaction out of
//     L0, Admit refuses keys that are not cached (Stats.RefusedDiskLimit);
//     the proxy then serves the miss without caching it, and the next miss
//     brings the key again. Admissions thus go at the pace compactions
//     keep up with: in the test up to 3% of the offers were refused, and
//     ten budgets of 64 MiB went through in 12-34 s instead of 9-10 s.
//   - A reclaimer. When the files are over the limit and Pebble has no
//     compaction to run (deleted entries wait in the bottom level under
//     tombstones no compaction score reaches), it compacts the key space
//     in slices of Budget/16 (at least 1 MiB) down to the bottom level.
//
// Updates of cached keys (Apply, or Admit of a cached key) are never
// refused: a log that rewrites cached keys faster than compactions go can
// hold the files over the bound until they catch up.
//
// # Memory
//
// The policy holds every cached key: about 85 bytes of heap per key plus
// the key itself (97 bytes per 12-byte key, measured), and a frequency
// sketch of 8 bytes per entry the budget holds, rounded up to a power of
// two (see policy). On top come the
// memory cache of hot entries (MemoryCache) and Pebble's block cache
// (BlockCacheSize plus two memtables).
//
// The package does not talk to the network, check chain hashes or keep the
// sliding window; the proxy node does. See doc comments of Get and Admit for
// the contract between them.
package proxycache
