// Package negfilter is the negative-lookup filter of a proxy: a Bloom filter
// of every key present at some index, so that a read of an absent key (about
// ten times more common than a present one in Quicksilver's traffic) is
// answered locally instead of costing a round trip to a replica.
//
// A Bloom filter has no false negatives: a key that was added is always
// reported as maybe present, so "not in the filter" proves "absent" (docs/CONTRACT.md
// section 3, promise 5). It has false positives at a rate set by its sizing;
// those reads go to a replica as any other miss.
//
// Keys are never removed: a deleted key stays in the filter and only costs a
// false positive. New keys keep filling the bit array, so the false-positive
// rate drifts up over time; NeedsRebuild says when to fetch a fresh filter
// from a replica (which builds one from a consistent view of its store).
//
//	f := negfilter.New(negfilter.ExpectedKeys(count), negfilter.DefaultFPRate)
//	for _, k := range keys {
//		f.Add(k)
//	}
//	f.SetIndex(at) // every key present at index at was added
//	if !f.MayContain(key) {
//		// key is absent at f.Index() and at every later index whose puts
//		// were added too
//	}
//	b, _ := f.MarshalBinary() // versioned and CRC32C-checked, see Decode
//
// A Filter is safe for concurrent use: MayContain from readers runs alongside
// Add from the log applier (see filter.go for why a sync.RWMutex).
package negfilter
