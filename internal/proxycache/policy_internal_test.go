package proxycache

import (
	"fmt"
	"testing"
)

// TestPolicy_SizeSketch checks the replacement of the otter cache that
// sizes the frequency sketch (see policy): it happens once, at half the
// budget or after sizeSample insertions, whichever comes first; every key
// keeps its admission; and the replaced cache's evictions no longer reach
// the pending set.
func TestPolicy_SizeSketch(t *testing.T) {
	tests := []struct {
		name    string
		budget  int64
		inserts int
		sizedAt int // the insertion that sizes the sketch
	}{
		{name: "HalfBudget", budget: 100 * 1000, inserts: 900, sizedAt: 500},
		{name: "SampleFirst", budget: 100 * 100_000, inserts: 1500, sizedAt: sizeSample},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(tc.budget)
			first := p.otter()
			for i := 1; i <= tc.inserts; i++ {
				p.insert(fmt.Sprintf("k%05d", i), uint64(i), 100)
				if got, want := p.sized, i >= tc.sizedAt; got != want {
					t.Fatalf("after %d insertions: sized %v, want %v", i, got, want)
				}
			}
			if p.otter() == first {
				t.Fatal("the otter cache was not replaced")
			}
			p.otter().CleanUp()
			for i := 1; i <= tc.inserts; i++ {
				k := fmt.Sprintf("k%05d", i)
				v, ok := p.get([]byte(k))
				if !ok || v.id != uint64(i) || v.weight != 100 {
					t.Fatalf("key %s: %+v, %v; want id %d, weight 100", k, v, ok, i)
				}
			}
			if n := p.pendingLen(); n != 0 {
				t.Fatalf("%d pending evictions within the budget", n)
			}
			if w := p.otter().WeightedSize(); w != uint64(100*tc.inserts) {
				t.Errorf("weighted size %d, want %d", w, 100*tc.inserts)
			}
			// The old cache still holds the keys moved before the
			// replacement; evicting them there must not delete them.
			first.SetMaximum(1)
			first.CleanUp()
			if n := p.pendingLen(); n != 0 {
				t.Errorf("evictions of the replaced cache reached the pending set: %d", n)
			}
		})
	}
}
