package cachetrace

import (
	"fmt"
	"math"
	"sort"
)

// Zipf draws ranks in [0, n) with P(rank k) proportional to 1/(k+1)^s, by
// inverting the exact cumulative distribution (one O(n) table, a binary
// search per draw). It takes any s > 0, unlike math/rand/v2's Zipf (s > 1),
// and unlike YCSB's approximation it is exact for every n.
type Zipf struct {
	cdf []float64 // cdf[k] = P(rank <= k); cdf[n-1] = 1
}

// NewZipf returns the sampler for n ranks and exponent s. It panics unless
// n >= 1 and s > 0: callers validate their flags first.
func NewZipf(n int, s float64) *Zipf {
	if n < 1 || s <= 0 {
		panic(fmt.Sprintf("cachetrace: zipf n %d, s %v", n, s))
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
	return &Zipf{cdf: cdf}
}

// N returns the number of ranks.
func (z *Zipf) N() int { return len(z.cdf) }

// Prob returns P(rank k).
func (z *Zipf) Prob(k int) float64 {
	if k == 0 {
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

// Rank returns the rank for u, a uniform draw in [0, 1).
func (z *Zipf) Rank(u float64) int {
	return min(sort.SearchFloat64s(z.cdf, u), len(z.cdf)-1)
}
