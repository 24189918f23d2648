package dcshard

import (
	"fmt"
	"testing"
)

func peers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", 7500+i)
	}
	return out
}

func TestOf_StableAndInRange(t *testing.T) {
	for _, k := range []string{"", "a", "config/dc/ams01", string(make([]byte, 1024))} {
		s := Of([]byte(k))
		if s < 0 || s >= Shards {
			t.Fatalf("Of(%q) = %d, out of range", k, s)
		}
		if again := Of([]byte(k)); again != s {
			t.Fatalf("Of(%q) = %d then %d", k, s, again)
		}
	}
}

func TestRing_SameOwnersWhateverTheOrder(t *testing.T) {
	ps := peers(8)
	a := NewRing(ps)
	rev := make([]string, len(ps))
	for i, p := range ps {
		rev[len(ps)-1-i] = p
	}
	b := NewRing(append(rev, ps[0], "")) // a duplicate and an empty one
	if b.Len() != 8 {
		t.Fatalf("ring of %d peers, want 8", b.Len())
	}
	for s := 0; s < Shards; s++ {
		oa, _ := a.Owner(s, nil)
		ob, _ := b.Owner(s, nil)
		if oa != ob {
			t.Fatalf("shard %d: owner %s in one ring, %s in the other", s, oa, ob)
		}
	}
}

// TestRing_Balanced checks that each of 8 proxies owns about an eighth of
// the shards.
func TestRing_Balanced(t *testing.T) {
	r := NewRing(peers(8))
	count := map[string]int{}
	for s := 0; s < Shards; s++ {
		o, _ := r.Owner(s, nil)
		count[o]++
	}
	for p, n := range count {
		if n < Shards/8/2 || n > Shards/8*2 {
			t.Errorf("%s owns %d shards, want about %d", p, n, Shards/8)
		}
	}
}

// TestRing_LeavingMovesOnlyItsShards: without one proxy, only the shards
// it owned change owner, and each goes to the next of its ranking.
func TestRing_LeavingMovesOnlyItsShards(t *testing.T) {
	ps := peers(8)
	full := NewRing(ps)
	gone := ps[3]
	less := NewRing(append(append([]string{}, ps[:3]...), ps[4:]...))
	up := func(a string) bool { return a != gone }
	for s := 0; s < Shards; s++ {
		before, _ := full.Owner(s, nil)
		after, _ := less.Owner(s, nil)
		skipped, _ := full.Owner(s, up)
		if before != gone && after != before {
			t.Fatalf("shard %d moved from %s to %s though %s left", s, before, after, gone)
		}
		if after != skipped {
			t.Fatalf("shard %d: new ring says %s, skipping the dead owner says %s", s, after, skipped)
		}
	}
}

func TestRing_NoneUp(t *testing.T) {
	r := NewRing(peers(3))
	if _, ok := r.Owner(5, func(string) bool { return false }); ok {
		t.Fatal("an owner with every proxy down")
	}
	if _, ok := NewRing(nil).Owner(5, nil); ok {
		t.Fatal("an owner in an empty ring")
	}
	if got := len(r.Owners(5)); got != 3 {
		t.Fatalf("Owners: %d, want 3", got)
	}
}
