package proxy_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/dcstream"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// newLoneDCProxy returns the only proxy of a data center: it owns every
// shard, so it takes any prefetched key it can prove.
func newLoneDCProxy(t *testing.T, replica string, win window.Options) *proxy.Proxy {
	t.Helper()
	return newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{replica}, Window: win, MissWait: 300 * time.Millisecond,
		DC: "dc1", Self: "127.0.0.1:1"})
}

// missAt is the line a relay would publish for key resolved as of index x
// of h: its value and mod index there, or absent.
func missAt(h *history, key string, x argent.Index) dcstream.Miss {
	m := dcstream.Miss{Key: []byte(key), Index: x}
	v, present := h.stateAt(x)[key]
	if !present {
		m.Absent = true
		return m
	}
	m.Value = []byte(v)
	for i := int(x); i >= 1; i-- {
		for _, op := range h.entries[i-1].Ops {
			if string(op.Key) == key {
				m.ModIndex = argent.Index(i)
				return m
			}
		}
	}
	panic("present key never written")
}

// TestPrefetch_OnlyWhatItCanProve offers a proxy at index 150 misses
// resolved by others at random indexes before and after it: only those it
// can prove are taken, and every read afterwards, whichever tier answers,
// is the value at the proxy's index.
func TestPrefetch_OnlyWhatItCanProve(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	h := makeHistory(t, rng, 300, 60)
	r := newReplica(t, h, 300)
	p := newLoneDCProxy(t, r.addr, window.Options{MaxBatches: 40})
	apply(t, p, h, 150, rng)
	took := 0
	for range 400 {
		k := fmt.Sprintf("k%03d", rng.IntN(60))
		x := argent.Index(1 + rng.IntN(300))
		m := missAt(h, k, x)
		ok := p.Prefetch(m)
		if ok {
			took++
			switch {
			case x > 150 && (m.Absent || m.ModIndex > 150):
				t.Fatalf("took %s as of %d (mod %d, absent %v) at index 150", k, x, m.ModIndex, m.Absent)
			case x < 110:
				t.Fatalf("took %s as of %d, below the window's reach (110)", k, x)
			}
		}
	}
	if took == 0 {
		t.Fatal("no prefetched miss taken")
	}
	if got := p.Stats().Prefetched.Load(); got != uint64(took) {
		t.Errorf("Prefetched = %d, want %d", got, took)
	}
	tiers := map[string]int{}
	for i := range 60 {
		tiers[checkRead(t, p, h, fmt.Sprintf("k%03d", i), false)]++
	}
	t.Logf("took %d of 400 misses; reads by tier: %v", took, tiers)
	if tiers["cache"] == 0 {
		t.Errorf("no read answered by the prefetched cache: %v", tiers)
	}
}

// TestPrefetch_TableOfCases checks each proof of Prefetch alone.
func TestPrefetch_TableOfCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	h := makeHistory(t, rng, 200, 100)
	r := newReplica(t, h, 200)
	// Keys last written at or before 100 and written nowhere after: their
	// value at any index in [mod, 200] is the same.
	var stable []string
	written := map[string]bool{}
	for _, e := range h.entries[100:] {
		for _, op := range e.Ops {
			written[string(op.Key)] = true
		}
	}
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		if _, present := h.stateAt(100)[k]; present && !written[k] {
			stable = append(stable, k)
		}
	}
	if len(stable) < 5 {
		t.Fatalf("only %d stable keys", len(stable))
	}
	for _, tc := range []struct {
		name   string
		window int
		x      argent.Index
		want   bool
	}{
		{"AsOfEarlierProvenByWindow", 100, 140, true},
		{"AsOfEarlierBeyondWindow", 10, 140, false},
		{"AsOfLaterModBelow", 10, 190, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newLoneDCProxy(t, r.addr, window.Options{MaxBatches: tc.window})
			apply(t, p, h, 160, rng)
			if got := p.Prefetch(missAt(h, stable[0], tc.x)); got != tc.want {
				t.Fatalf("Prefetch of %s as of %d at 160 with a %d-batch window = %v, want %v", stable[0], tc.x, tc.window, got, tc.want)
			}
			// A key the window holds is read from it first.
			if tier := checkRead(t, p, h, stable[0], false); tc.want && tier != "cache" && tier != "window" {
				t.Errorf("the prefetched key was read from %s, not the cache", tier)
			}
			if p.Prefetch(missAt(h, stable[0], tc.x)) {
				t.Errorf("a key already cached was taken again")
			}
		})
	}
}

// TestPrefetch_OnlyOwnShards offers every key to two proxies of a DC: each
// takes the keys of the shards it owns and no other.
func TestPrefetch_OnlyOwnShards(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	h := makeHistory(t, rng, 50, 100)
	r := newReplica(t, h, 50)
	d := newDC(t, h, 2, []string{r.addr}, 1<<20, window.Options{MaxBatches: 50})
	d.applyAll(t, h, 50, rng)
	took := [2]int{}
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		for j, p := range d.proxies {
			if p.Prefetch(missAt(h, k, 50)) {
				took[j]++
				if d.owner(k) != j {
					t.Errorf("proxy %d took %s, owned by proxy %d", j, k, d.owner(k))
				}
			}
		}
	}
	if took[0] == 0 || took[1] == 0 {
		t.Errorf("keys taken by each proxy: %v; want some at both", took)
	}
}
