package main

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
)

// zipf draws ranks in [0, n) with P(rank k) proportional to 1/(k+1)^s, by
// inverting the exact cumulative distribution (one O(n) table, a binary
// search per draw). It takes any s > 0, unlike math/rand/v2's Zipf (s > 1),
// and unlike YCSB's approximation it is exact for every n.
type zipf struct {
	cdf []float64 // cdf[k] = P(rank <= k); cdf[n-1] = 1
}

func newZipf(n int, s float64) *zipf {
	if n < 1 || s <= 0 {
		panic(fmt.Sprintf("zipf: n %d, s %v", n, s))
	}
	cdf := make([]float64, n)
	sum := 0.0
	for k := range cdf {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	cdf[n-1] = 1
	return &zipf{cdf: cdf}
}

// prob returns P(rank k).
func (z *zipf) prob(k int) float64 {
	if k == 0 {
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

// rank returns the rank for u, a uniform draw in [0, 1).
func (z *zipf) rank(u float64) int {
	return min(sort.SearchFloat64s(z.cdf, u), len(z.cdf)-1)
}

// traceSpec describes one read trace over the key numbers [0, keys).
type traceSpec struct {
	Name  string  // "zipf" or "zipf-shift"
	Theta float64 // Zipf exponent
	Reads int     // trace length
	// Phases and Shift make the hot set move: the trace is cut into Phases
	// equal parts, and in part p rank r reads the key of rank r+p*Shift of
	// part 0 (mod keys). So at each boundary the Shift hottest keys drop to
	// the coldest ranks and every other key moves Shift ranks up. Shift 0:
	// a stationary trace.
	Phases, Shift int
	Seed          uint64
}

func (s traceSpec) describe(keys int) string {
	if s.Shift == 0 {
		return fmt.Sprintf("Zipf(%.2f) over %s keys, %s reads, stationary", s.Theta, fmtInt(keys), fmtInt(s.Reads))
	}
	return fmt.Sprintf("Zipf(%.2f) over %s keys, %s reads, the hot set shifts by %s ranks %d times (every %s reads)",
		s.Theta, fmtInt(keys), fmtInt(s.Reads), fmtInt(s.Shift), s.Phases-1, fmtInt(s.Reads/s.Phases))
}

// makeTrace draws the trace: key numbers in [0, keys). Ranks are spread
// over the keys by a random permutation (seeded), so hot keys are not
// neighbours in key order.
func makeTrace(keys int, s traceSpec) []int32 {
	r := mrand.New(mrand.NewPCG(s.Seed, 0x5eed))
	perm := make([]int32, keys)
	for i := range perm {
		perm[i] = int32(i)
	}
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	z := newZipf(keys, s.Theta)
	phases := max(s.Phases, 1)
	out := make([]int32, s.Reads)
	for i := range out {
		p := int(int64(i) * int64(phases) / int64(s.Reads))
		rank := z.rank(r.Float64())
		out[i] = perm[(rank+p*s.Shift)%keys]
	}
	return out
}

// distinct counts the different keys of a trace: its compulsory misses.
func distinct(trace []int32, keys int) int {
	seen := make([]bool, keys)
	n := 0
	for _, k := range trace {
		if !seen[k] {
			seen[k] = true
			n++
		}
	}
	return n
}

// valueSizes returns the value size of each key: all size for "fixed", or
// log-normal with median size and sigma 1 (cut to [8 B, 64 KiB]) for
// "lognormal".
func valueSizes(keys int, dist string, size int, seed uint64) ([]int32, error) {
	out := make([]int32, keys)
	switch dist {
	case "fixed":
		for i := range out {
			out[i] = int32(size)
		}
	case "lognormal":
		r := mrand.New(mrand.NewPCG(seed, 0x517e))
		mu := math.Log(float64(size))
		for i := range out {
			v := math.Round(math.Exp(mu + r.NormFloat64()))
			out[i] = int32(min(max(v, 8), 64<<10))
		}
	default:
		return nil, fmt.Errorf("value distribution %q: want fixed or lognormal", dist)
	}
	return out, nil
}

// keyName is the name of key number i, in the simulation and at the
// running proxy.
func keyName(i int) string { return fmt.Sprintf("k/%08d", i) }
