package main

import (
	"fmt"
	"math"
	mrand "math/rand/v2"

	"github.com/argent-kv/argent/bench/internal/cachetrace"
)

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
	z := cachetrace.NewZipf(keys, s.Theta)
	phases := max(s.Phases, 1)
	out := make([]int32, s.Reads)
	for i := range out {
		p := int(int64(i) * int64(phases) / int64(s.Reads))
		rank := z.Rank(r.Float64())
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
