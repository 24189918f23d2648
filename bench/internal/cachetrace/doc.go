// Package cachetrace holds what the cache benchmarks under bench/ share:
// an exact Zipf sampler to draw read traces, the offline optimum a cache's
// hit rate is compared with (Belady's MIN with bypass), and the per-entry
// overhead proxycache adds when it weighs an entry, so that a budget given
// as a fraction of the data set means the same in every benchmark.
//
//	z := cachetrace.NewZipf(keys, 0.99)
//	rank := z.Rank(r.Float64())
//	best := cachetrace.Belady(trace, weights, budget, len(trace)/2)
package cachetrace
