package cachetrace_test

import (
	"math"
	mrand "math/rand/v2"
	"testing"

	"github.com/argent-kv/argent/bench/internal/cachetrace"
)

// unit returns n weights of 1.
func unit(n int) []int64 {
	w := make([]int64, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// tr turns "ABAC" into key numbers 0, 1, 0, 2.
func tr(s string) []int32 {
	out := make([]int32, len(s))
	for i, c := range s {
		out[i] = int32(c - 'A')
	}
	return out
}

func TestBelady_HandMade(t *testing.T) {
	for _, tt := range []struct {
		name   string
		trace  string
		keys   int
		budget int64
		want   int
	}{
		// One slot: caching B would cost A's hit; bypass keeps it.
		{"bypass", "ABA", 2, 1, 1},
		{"nothing fits", "AAAA", 1, 0, 0},
		{"all fit", "ABCABC", 3, 3, 3},
		// C is never read again: not cached, A and B both hit.
		{"never again", "ABCAB", 3, 2, 2},
		// At C (next read at 4), A is next read at 5 and B at 3: evict A
		// for C; then B, C, C and B hit, and A misses.
		{"furthest", "ABCBCACB", 3, 2, 4},
		// The textbook string (3 frames): demand paging MIN faults 9
		// times (11 hits); with bypass it does better.
		{"textbook", "HABCADAECDADCBCABHAB", 8, 3, 12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			trace := tr(tt.trace)
			got := cachetrace.Belady(trace, unit(tt.keys), tt.budget, len(trace))
			if got.All != tt.want || got.Late != 0 {
				t.Errorf("Belady(%s, %d) = %+v, want %d hits", tt.trace, tt.budget, got, tt.want)
			}
			if bf := cachetrace.BruteForce(trace, unit(tt.keys), tt.budget); bf != tt.want {
				t.Errorf("BruteForce(%s, %d) = %d, want %d", tt.trace, tt.budget, bf, tt.want)
			}
		})
	}
}

func TestBelady_Late(t *testing.T) {
	// "AABB" with room for one: hits at 1 and 3; from 2 on only the one at 3.
	got := cachetrace.Belady(tr("AABB"), unit(2), 1, 2)
	if got != (cachetrace.Hits{All: 2, Late: 1}) {
		t.Errorf("Belady = %+v, want 2 hits, 1 late", got)
	}
	if all, late := got.Rates(4, 2); all != 0.5 || late != 0.5 {
		t.Errorf("Rates = %v, %v, want 0.5, 0.5", all, late)
	}
}

func TestBelady_Weights(t *testing.T) {
	// A weighs 2, B and C 1, budget 2. "ABCBCA": caching A (next at 5)
	// would take the whole budget and cost B's and C's hits; B and C
	// fit together and hit twice.
	w := []int64{2, 1, 1}
	if got := cachetrace.Belady(tr("ABCBCA"), w, 2, 6); got.All != 2 {
		t.Errorf("Belady = %+v, want 2 hits", got)
	}
	// Making room for B (weight 2) takes evicting both A and C, both read
	// after B, so the heuristic does (the bypass check looks past the
	// first victim) and gets B's one hit, where keeping A and C gets two:
	// with unequal weights it is not the optimum.
	w = []int64{1, 2, 1}
	if got := cachetrace.Belady(tr("ACBBAC"), w, 2, 6); got.All != 1 {
		t.Errorf("Belady = %+v, want 1 hit (B)", got)
	}
	if got := cachetrace.BruteForce(tr("ACBBAC"), w, 2); got != 2 {
		t.Errorf("BruteForce = %d, want 2", got)
	}
}

// TestBelady_BruteForce checks on random small traces that Belady is
// optimal with equal weights, and feasible (never above the optimum) with
// unequal ones.
func TestBelady_BruteForce(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for n := range 400 {
		keys := 2 + r.IntN(4)
		trace := make([]int32, 4+r.IntN(11))
		for i := range trace {
			trace[i] = int32(r.IntN(keys))
		}
		w := unit(keys)
		budget := int64(1 + r.IntN(keys))
		equal := n%2 == 0
		if !equal {
			for i := range w {
				w[i] = int64(1 + r.IntN(3))
			}
			budget = int64(1 + r.IntN(2*keys))
		}
		got := cachetrace.Belady(trace, w, budget, len(trace)).All
		want := cachetrace.BruteForce(trace, w, budget)
		switch {
		case equal && got != want:
			t.Fatalf("trace %v, budget %d: Belady %d hits, optimum %d", trace, budget, got, want)
		case got > want:
			t.Fatalf("trace %v, weights %v, budget %d: Belady %d hits, above the optimum %d", trace, w, budget, got, want)
		}
	}
}

func TestNextUses(t *testing.T) {
	got := cachetrace.NextUses(tr("ABAC"), 3)
	want := []int32{2, cachetrace.Never, cachetrace.Never, cachetrace.Never}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("NextUses(ABAC) = %v, want %v", got, want)
		}
	}
}

func TestZipf(t *testing.T) {
	const n, s = 1000, 0.99
	z := cachetrace.NewZipf(n, s)
	if z.N() != n {
		t.Fatalf("N = %d", z.N())
	}
	sum := 0.0
	for k := range n {
		p := z.Prob(k)
		if p <= 0 || k > 0 && p > z.Prob(k-1) {
			t.Fatalf("Prob(%d) = %v, not positive and falling", k, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	if got, want := z.Prob(0)/z.Prob(1), math.Pow(2, s); math.Abs(got-want) > 1e-9 {
		t.Errorf("P(0)/P(1) = %v, want %v", got, want)
	}
	if z.Rank(0) != 0 || z.Rank(math.Nextafter(1, 0)) != n-1 {
		t.Errorf("Rank(0) = %d, Rank(1-) = %d", z.Rank(0), z.Rank(math.Nextafter(1, 0)))
	}
	r := mrand.New(mrand.NewPCG(3, 4))
	const draws = 200_000
	counts := make([]int, n)
	for range draws {
		counts[z.Rank(r.Float64())]++
	}
	for _, k := range []int{0, 1, 9, 99} {
		want := z.Prob(k) * draws
		if got := float64(counts[k]); math.Abs(got-want) > 5*math.Sqrt(want) {
			t.Errorf("rank %d drawn %v times, want about %.0f", k, got, want)
		}
	}
}

func TestEntryOverhead(t *testing.T) {
	o, err := cachetrace.EntryOverhead(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if o <= 0 || o > 1024 {
		t.Errorf("EntryOverhead = %d B, want a few dozen", o)
	}
}
