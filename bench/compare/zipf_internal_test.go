package main

import (
	"math"
	mrand "math/rand/v2"
	"testing"
)

// TestZipf checks the shape of the distribution: the chance of rank 0 is
// 1/zeta(n), and rank 0 is 2^theta times as likely as rank 1.
func TestZipf(t *testing.T) {
	const n, theta, draws = 1000, 0.99, 400_000
	z := newZipf(n, theta)
	r := mrand.New(mrand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		k := z.rank(r.Float64())
		if k >= n {
			t.Fatalf("rank %d of %d", k, n)
		}
		counts[k]++
	}
	if got, want := float64(counts[0])/draws, 1/z.zetan; math.Abs(got-want) > 0.01 {
		t.Errorf("P(rank 0) = %.4f, want %.4f", got, want)
	}
	if got, want := float64(counts[0])/float64(counts[1]), math.Pow(2, theta); math.Abs(got-want)/want > 0.05 {
		t.Errorf("P(0)/P(1) = %.3f, want %.3f", got, want)
	}
	// The top 10 % of ranks get most draws, the bottom half few.
	top, bottom := 0, 0
	for k, c := range counts {
		if k < n/10 {
			top += c
		} else if k >= n/2 {
			bottom += c
		}
	}
	if top < draws*6/10 || bottom > draws/10 {
		t.Errorf("top decile %d, bottom half %d of %d draws", top, bottom, draws)
	}
}

func TestZipf_Tiny(t *testing.T) {
	for _, n := range []uint64{1, 2} {
		z := newZipf(n, 0.99)
		for _, u := range []float64{0, 0.3, 0.7, 0.999999} {
			if k := z.rank(u); k >= n {
				t.Errorf("n %d, u %v: rank %d", n, u, k)
			}
		}
	}
}

func TestScatter(t *testing.T) {
	for _, n := range []uint64{1, 7, 1000, 100_000} {
		seen := make([]bool, n)
		for rank := range n {
			k := scatter(rank, n)
			if k >= n || seen[k] {
				t.Fatalf("n %d: scatter(%d) = %d, out of range or taken", n, rank, k)
			}
			seen[k] = true
		}
	}
}

func TestLatestKeys(t *testing.T) {
	z := newZipf(10_000, 0.99)
	newest := 10_499
	k := latestKeys{z: z, last: func() int { return newest }}
	r := mrand.New(mrand.NewPCG(3, 4))
	recent := 0
	for range 10_000 {
		id := k.next(r)
		if id < 0 || id > newest {
			t.Fatalf("key %d outside [0, %d]", id, newest)
		}
		if id > newest-100 {
			recent++
		}
	}
	if recent < 5000 {
		t.Errorf("%d of 10000 reads among the 100 newest keys, want most", recent)
	}
	// Fewer keys than Zipf ranks: still within [0, newest].
	small := latestKeys{z: z, last: func() int { return 3 }}
	for range 1000 {
		if id := small.next(r); id < 0 || id > 3 {
			t.Fatalf("key %d outside [0, 3]", id)
		}
	}
}

// TestYCSBState_Ack checks that newest moves only over acknowledged ids
// without a gap.
func TestYCSBState_Ack(t *testing.T) {
	s := newYCSBState(10) // ids 0..9 exist
	if got := s.newest.Load(); got != 9 {
		t.Fatalf("newest = %d, want 9", got)
	}
	for _, tt := range []struct{ ack, want int64 }{{11, 9}, {12, 9}, {10, 12}, {14, 12}, {13, 14}} {
		s.ack(tt.ack)
		if got := s.newest.Load(); got != tt.want {
			t.Errorf("after ack %d: newest = %d, want %d", tt.ack, got, tt.want)
		}
	}
}
