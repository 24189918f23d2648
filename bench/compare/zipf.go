package main

import (
	"math"
	mrand "math/rand/v2"
)

// zipf draws ranks in [0, n) with P(rank k) proportional to 1/(k+1)^theta,
// for 0 < theta < 1: YCSB's "zipfian" request distribution (theta 0.99),
// which math/rand/v2's Zipf cannot give since it needs s > 1. It is the
// method of Gray et al., "Quickly generating billion-record synthetic
// databases" (SIGMOD 1994), as YCSB's ZipfianGenerator implements it: one
// O(n) sum at construction, O(1) per draw. A zipf is read-only after
// newZipf, so workers share one and each draws with its own *rand.Rand.
type zipf struct {
	n     uint64
	theta float64
	alpha float64 // 1 / (1 - theta)
	zetan float64 // sum of 1/i^theta for i in 1..n
	eta   float64
	half  float64 // 1 + 0.5^theta
}

// newZipf returns the distribution over n ranks; theta must be in (0, 1)
// and n at least 1.
func newZipf(n uint64, theta float64) *zipf {
	z := &zipf{n: n, theta: theta, alpha: 1 / (1 - theta)}
	for i := uint64(1); i <= n; i++ {
		z.zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + 1/math.Pow(2, theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z
}

// rank returns the rank for u, a uniform draw in [0, 1).
func (z *zipf) rank(u float64) uint64 {
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < z.half:
		return min(1, z.n-1)
	}
	r := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(r, z.n-1)
}

// scatterPrime spreads ranks over the key space: multiplying by a prime
// modulo n is a bijection unless the prime divides n, so hot keys are not
// neighbours in the key order (or on disk).
const scatterPrime = 2654435761

// scatter maps rank to a key number in [0, n).
func scatter(rank, n uint64) uint64 { return rank % n * scatterPrime % n }

// keyChooser picks the key numbers of one worker's requests.
type keyChooser interface {
	next(r *mrand.Rand) int
}

// uniformKeys picks every key in [0, n) with the same chance.
type uniformKeys struct{ n int }

func (u uniformKeys) next(r *mrand.Rand) int { return r.IntN(u.n) }

// zipfKeys picks keys in [0, n) by Zipf rank, the hottest scattered.
type zipfKeys struct{ z *zipf }

func (k zipfKeys) next(r *mrand.Rand) int {
	return int(scatter(k.z.rank(r.Float64()), k.z.n))
}

// latestKeys is YCSB's "latest" distribution for workload D: the key
// inserted most recently is the most likely read, and the chance falls
// with Zipf rank going back in insertion order. last returns the newest
// key number.
type latestKeys struct {
	z    *zipf
	last func() int
}

func (k latestKeys) next(r *mrand.Rand) int {
	newest := k.last()
	back := int(k.z.rank(r.Float64()))
	if back > newest {
		return back % (newest + 1)
	}
	return newest - back
}
