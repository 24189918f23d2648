package negfilter

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/argent-kv/argent"
)

// DefaultFPRate is the target false-positive rate when none is given: 1%,
// so at least 99% of reads of absent keys are answered by the filter.
const DefaultFPRate = 0.01

// MinExpectedKeys is the smallest sizing ExpectedKeys returns, so that a
// nearly empty data set still gets a filter with room to grow.
const MinExpectedKeys = 1024

// RebuildFactor is how far the estimated false-positive rate may drift
// above the target before NeedsRebuild reports true.
const RebuildFactor = 2

// ExpectedKeys returns the sizing for a filter built over count present
// keys: half as many again (so keys put after the build do not push the
// false-positive rate over the target at once), at least MinExpectedKeys.
func ExpectedKeys(count uint64) uint {
	n := count + count/2
	if n < MinExpectedKeys {
		n = MinExpectedKeys
	}
	return uint(n)
}

// Filter is a Bloom filter of keys present at an index. The zero value is
// not usable; make one with New or Decode.
//
// The bit array sits behind a sync.RWMutex rather than being updated with
// atomic operations: bloom/v3's hashing and bit layout are then used as
// they are (no second implementation to keep in step), and the benchmark
// BenchmarkFilter_MayContainParallel shows a read costs well under 1 µs
// also while the applier adds keys (see docs/DECISIONS.md).
type Filter struct {
	expected uint    // sizing: keys the filter was made for
	fpRate   float64 // target false-positive rate at expected keys

	adds atomic.Uint64 // Add calls, re-adds of a key included

	mu struct {
		sync.RWMutex
		bf    *bloom.BloomFilter
		index argent.Index
	}
}

// New returns an empty filter sized so that, once expectedKeys distinct keys
// are in it, its false-positive rate is about fpRate. expectedKeys of 0 is
// taken as 1; an fpRate outside (0, 1) means DefaultFPRate. Its index is 0.
func New(expectedKeys uint, fpRate float64) *Filter {
	if expectedKeys == 0 {
		expectedKeys = 1
	}
	if !(fpRate > 0 && fpRate < 1) {
		fpRate = DefaultFPRate
	}
	f := &Filter{expected: expectedKeys, fpRate: fpRate}
	f.mu.bf = bloom.NewWithEstimates(expectedKeys, fpRate)
	return f
}

// Add puts key in the filter. Adding a key again changes nothing but Count.
func (f *Filter) Add(key []byte) {
	f.mu.Lock()
	f.mu.bf.Add(key)
	f.mu.Unlock()
	f.adds.Add(1)
}

// MayContain reports whether key may be in the filter. false is exact: the
// key was never added. true may be a false positive.
func (f *Filter) MayContain(key []byte) bool {
	f.mu.RLock()
	ok := f.mu.bf.Test(key)
	f.mu.RUnlock()
	return ok
}

// Index returns the index the filter stands for: every key present at that
// index was added.
func (f *Filter) Index() argent.Index {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.mu.index
}

// SetIndex records that every key present at index i has been added. Call it
// after the Adds of the puts up to i, never before: an encoding taken in
// between must not claim an index whose keys it lacks.
func (f *Filter) SetIndex(i argent.Index) {
	f.mu.Lock()
	f.mu.index = i
	f.mu.Unlock()
}

// Count returns the number of Add calls since the filter was made (and, for
// a decoded filter, before it was encoded). A key added twice (a put that
// overwrites a key, say) counts twice, so Count is an upper bound on the
// distinct keys in the filter; EstimatedKeys is the better measure of fill.
func (f *Filter) Count() uint64 { return f.adds.Load() }

// ExpectedKeys returns the number of keys the filter was sized for.
func (f *Filter) ExpectedKeys() uint { return f.expected }

// TargetFPRate returns the false-positive rate the filter was sized for.
func (f *Filter) TargetFPRate() float64 { return f.fpRate }

// Bits returns m, the size of the bit array.
func (f *Filter) Bits() uint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.mu.bf.Cap()
}

// Hashes returns k, the number of bits set per key.
func (f *Filter) Hashes() uint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.mu.bf.K()
}

// Stats is the fill of a filter, computed from its bit array.
type Stats struct {
	BitsSet uint // bits set to 1
	Bits    uint // m
	Hashes  uint // k
	// FillRatio is BitsSet/Bits.
	FillRatio float64
	// FPRate estimates the false-positive rate now: FillRatio^k, the
	// chance that k bits picked at random are all set.
	FPRate float64
	// Keys estimates the distinct keys added: -m/k * ln(1 - FillRatio).
	// Unlike Count it does not grow when a key is added again.
	Keys float64
}

// Stats counts the bits set and derives the estimates. It reads the whole
// bit array, O(m/64) (about 0.1 ms for a filter built over a million keys):
// call it every few thousand Adds or on a timer, not on every Add.
func (f *Filter) Stats() Stats {
	f.mu.RLock()
	set, m, k := f.mu.bf.BitSet().Count(), f.mu.bf.Cap(), f.mu.bf.K()
	f.mu.RUnlock()
	s := Stats{BitsSet: set, Bits: m, Hashes: k}
	s.FillRatio = float64(set) / float64(m)
	s.FPRate = math.Pow(s.FillRatio, float64(k))
	if s.FillRatio >= 1 {
		s.Keys = math.Inf(1)
	} else {
		s.Keys = -float64(m) / float64(k) * math.Log1p(-s.FillRatio)
	}
	return s
}

// EstimatedFPRate returns the false-positive rate estimated from the fill
// of the bit array (see Stats).
func (f *Filter) EstimatedFPRate() float64 { return f.Stats().FPRate }

// NeedsRebuild reports whether the filter has drifted from its sizing: the
// estimated false-positive rate is above RebuildFactor times the target, or
// the estimated distinct keys exceed the keys it was sized for. Keys deleted
// since the build still fill the filter, and keys put since then fill it
// more; a filter built afresh over the keys present now is smaller in error.
// It costs what Stats costs.
func (f *Filter) NeedsRebuild() bool {
	s := f.Stats()
	return s.FPRate > RebuildFactor*f.fpRate || s.Keys > float64(f.expected)
}
