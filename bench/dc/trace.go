package main

import (
	"fmt"
	mrand "math/rand/v2"

	"github.com/argent-kv/argent/bench/internal/cachetrace"
)

// popularity is one Zipf popularity over the keys: rank r is key perm[r].
// Every proxy of a DC draws from the same popularity, as the servers of one
// data center serve the same users' requests.
type popularity struct {
	perm []int32
	z    *cachetrace.Zipf
}

// newPopularity ranks keys [0, keys) by a random permutation (seeded), so
// that hot keys are not neighbours in key order, under Zipf(theta).
func newPopularity(keys int, theta float64, seed uint64) *popularity {
	r := mrand.New(mrand.NewPCG(seed, 0x5eed))
	perm := make([]int32, keys)
	for i := range perm {
		perm[i] = int32(i)
	}
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return &popularity{perm: perm, z: cachetrace.NewZipf(keys, theta)}
}

// draw returns one key.
func (p *popularity) draw(r *mrand.Rand) int32 { return p.perm[p.z.Rank(r.Float64())] }

// Streams of the random draws: proxy p's trace uses stream traceStream+p.
const (
	traceStream = 1000
	lightStream = 0x11647
)

// makeTraces returns one trace of reads key numbers per proxy: independent
// draws (stream traceStream+p of seed) from the same popularity.
func makeTraces(pop *popularity, proxies, reads int, seed uint64) [][]int32 {
	out := make([][]int32, proxies)
	for p := range out {
		r := mrand.New(mrand.NewPCG(seed, uint64(traceStream+p)))
		t := make([]int32, reads)
		for i := range t {
			t[i] = pop.draw(r)
		}
		out[p] = t
	}
	return out
}

// distinct counts the different keys among traces.
func distinct(keys int, traces ...[]int32) int {
	seen := make([]bool, keys)
	n := 0
	for _, t := range traces {
		for _, k := range t {
			if !seen[k] {
				seen[k] = true
				n++
			}
		}
	}
	return n
}

// keyName is the name of key number i.
func keyName(i int) string { return fmt.Sprintf("k/%08d", i) }
