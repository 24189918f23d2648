package proxy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/dcshard"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// dc is a data center of proxies sharing L2, each serving L2Path on its
// own test server.
type dc struct {
	proxies  []*proxy.Proxy
	addrs    []string
	servers  []*httptest.Server
	switches []*handlerSwitch
	ring     *dcshard.Ring
}

// handlerSwitch lets a test server exist, with its address, before the
// proxy it serves.
type handlerSwitch struct {
	h        atomic.Pointer[http.HandlerFunc]
	requests atomic.Int64
}

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	(*s.h.Load())(w, r)
}

// newDC starts n proxies of DC "dc1" of h's dataset over the replicas, each with a cache
// of budget bytes and the given window.
func newDC(t testing.TB, h *history, n int, replicas []string, budget int64, win window.Options) *dc {
	t.Helper()
	d := &dc{}
	switches := make([]*handlerSwitch, n)
	for i := range n {
		switches[i] = &handlerSwitch{}
		hs := httptest.NewServer(switches[i])
		t.Cleanup(hs.Close)
		d.servers = append(d.servers, hs)
		d.addrs = append(d.addrs, hs.Listener.Addr().String())
	}
	for i := range n {
		p := newProxyWith(t, budget, proxy.Config{Replicas: replicas, Window: win, MissWait: 2 * time.Second,
			DC: "dc1", Self: d.addrs[i], DCPeers: d.addrs, L2Timeout: 200 * time.Millisecond})
		if err := p.Target().AdoptDataset(h.dataset); err != nil {
			t.Fatal(err)
		}
		serve := http.HandlerFunc(wirecheck.Handler(http.HandlerFunc(p.ServeL2)).ServeHTTP)
		switches[i].h.Store(&serve)
		d.proxies = append(d.proxies, p)
	}
	d.ring = dcshard.NewRing(d.addrs)
	d.switches = switches
	return d
}

// applyAll feeds every proxy the history's entries up to index upTo.
func (d *dc) applyAll(t testing.TB, h *history, upTo int, rng *rand.Rand) {
	t.Helper()
	for _, p := range d.proxies {
		apply(t, p, h, upTo, rng)
	}
}

// owner returns the position of the proxy that owns key's shard.
func (d *dc) owner(key string) int {
	o, _ := d.ring.Owner(dcshard.Of([]byte(key)), nil)
	for i, a := range d.addrs {
		if a == o {
			return i
		}
	}
	panic("no owner")
}

// keyCounter counts the keys replicas are asked for.
type keyCounter struct{ n atomic.Int64 }

func (c *keyCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == lookup.LookupPath {
			if r.Method == http.MethodGet {
				c.n.Add(1)
			} else {
				c.n.Add(-1 << 40) // a many-key lookup: the tests here read one key at a time
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestL2_OneL3LookupPerKey reads every key at each of four proxies at the
// same index: the owner of a key's shard resolves it at L3 once, every
// other proxy gets it from the owner (Argent-Tier l2), and the replica
// sees one lookup per key, not four.
func TestL2_OneL3LookupPerKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	h := makeHistory(t, rng, 100, 80)
	var cnt keyCounter
	r := newReplicaWith(t, h, 100, cnt.wrap)
	d := newDC(t, h, 4, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	d.applyAll(t, h, 100, rng)
	tiers := map[string]int{}
	keys := keysNotInWindow(h, 80, 0)
	for _, k := range keys {
		o := d.owner(k)
		// The owner first, then the others: the owner's miss fills L2.
		tiers[checkRead(t, d.proxies[o], h, k, false)+"@owner"]++
		for i, p := range d.proxies {
			if i != o {
				tiers[checkRead(t, p, h, k, false)]++
			}
		}
	}
	t.Logf("reads by tier: %v", tiers)
	if got := cnt.n.Load(); got != int64(len(keys)) {
		t.Errorf("the replica was asked %d times for %d keys read at 4 proxies, want once per key", got, len(keys))
	}
	if tiers[proxy.TierL2] != 3*len(keys) {
		t.Errorf("%d reads answered by L2, want %d (every non-owner read)", tiers[proxy.TierL2], 3*len(keys))
	}
	var served uint64
	for _, p := range d.proxies {
		served += p.Stats().L2Served.Load()
	}
	if served != uint64(3*len(keys)) {
		t.Errorf("owners served %d L2 keys, want %d", served, 3*len(keys))
	}
}

// TestL2_OwnerAheadOfAsker puts the owners past the asker: a key written
// after the asker's index is "newer" at its owner, and the asker gets its
// value at its own index from L3; a key not written since comes from L2.
// Then the owners fall behind the asker: their answers, as of their own
// index, are used only where the asker's window proves them.
func TestL2_OwnerAheadOfAsker(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	h := makeHistory(t, rng, 200, 300)
	r := newReplica(t, h, 200)
	d := newDC(t, h, 3, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	asker := d.proxies[0]
	apply(t, asker, h, 150, rng)
	for _, p := range d.proxies[1:] {
		apply(t, p, h, 200, rng)
	}
	changed := map[string]bool{} // written in (150, 200]
	for _, e := range h.entries[150:200] {
		for _, op := range e.Ops {
			changed[string(op.Key)] = true
		}
	}
	tiers := map[string]map[string]int{"changed": {}, "unchanged": {}}
	for i := range 300 {
		k := fmt.Sprintf("k%03d", i)
		if d.owner(k) == 0 {
			continue
		}
		checkRead(t, d.proxies[d.owner(k)], h, k, false) // the owner caches it
		class := "unchanged"
		if changed[k] {
			class = "changed"
		}
		tiers[class][checkRead(t, asker, h, k, false)]++
	}
	t.Logf("asker behind its owners: %v", tiers)
	if n := tiers["changed"][proxy.TierL2]; n != 0 {
		t.Errorf("%d keys changed after the asker's index answered by L2", n)
	}
	if tiers["changed"][proxy.TierL3] == 0 || tiers["unchanged"][proxy.TierL2] == 0 {
		t.Errorf("want both changed keys from L3 and unchanged ones from L2: %v", tiers)
	}

	// Owners behind the asker: asker at 200 with a window of (100, 200],
	// in a second DC whose other proxies stop at 120, over a history of
	// more keys than the window's batches touch.
	h2 := makeHistory(t, rng, 200, 400)
	r2 := newReplica(t, h2, 200)
	d2 := newDC(t, h2, 3, []string{r2.addr}, 1<<20, window.Options{MaxBatches: 100})
	apply(t, d2.proxies[0], h2, 200, rng)
	for _, p := range d2.proxies[1:] {
		apply(t, p, h2, 120, rng)
	}
	behind := map[string]int{}
	for i := range 100 {
		behind[checkRead(t, d2.proxies[0], h2, fmt.Sprintf("k%03d", i), false)]++
	}
	t.Logf("asker ahead of its owners: %v", behind)
	if behind[proxy.TierL2] == 0 {
		t.Errorf("no key answered by owners behind the asker, though its window proves them: %v", behind)
	}
}

// TestL2_DeadOwner stops one proxy's server: reads of keys it owns fall
// through to L3 within the owner timeout, and later reads skip it.
func TestL2_DeadOwner(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	h := makeHistory(t, rng, 50, 200)
	r := newReplica(t, h, 50)
	d := newDC(t, h, 3, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	d.applyAll(t, h, 50, rng)
	hang := make(chan struct{})
	defer close(hang)
	// Proxy 2 hangs: its server takes requests and never answers.
	d.servers[2].Config.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang })
	var ks []string
	for _, k := range keysNotInWindow(h, 200, 0) {
		if d.owner(k) == 2 {
			ks = append(ks, k)
		}
	}
	if len(ks) < 10 {
		t.Fatalf("only %d keys owned by proxy 2", len(ks))
	}
	start := time.Now()
	if tier := checkRead(t, d.proxies[0], h, ks[0], false); tier != proxy.TierL3 {
		t.Errorf("read of a key whose owner hangs: tier %s, want l3", tier)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("read with a hung owner took %v; the owner timeout is 200ms", el)
	}
	start = time.Now()
	for _, k := range ks[1:] {
		checkRead(t, d.proxies[0], h, k, false)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("%d reads after the owner was found hung took %v: it was not skipped", len(ks)-1, el)
	}
}

// TestL2_ReadsEqualTheValueAtEachIndex moves three proxies of a DC through
// a history at different paces with small caches and windows: every read
// at every proxy, whichever tier answers, is the value at that proxy's
// index.
func TestL2_ReadsEqualTheValueAtEachIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	h := makeHistory(t, rng, 300, 60)
	r := newReplica(t, h, 300)
	d := newDC(t, h, 3, []string{r.addr}, 2<<10, window.Options{MaxBatches: 20})
	tiers := map[string]int{}
	for step := 0; step < 60; step++ {
		for _, p := range d.proxies {
			if next := min(300, int(p.Applied())+rng.IntN(12)); next > int(p.Applied()) {
				apply(t, p, h, next, rng)
			}
			for range 5 {
				tiers[checkRead(t, p, h, fmt.Sprintf("k%03d", rng.IntN(70)), false)]++
			}
		}
	}
	t.Logf("reads by tier: %v", tiers)
	if tiers[proxy.TierL2] == 0 {
		t.Errorf("no read answered by L2: %v", tiers)
	}
}

// TestL2_ServeRefusesBadInput checks an owner's answers to malformed
// requests: 4xx JSON errors.
func TestL2_ServeRefusesBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	h := makeHistory(t, rng, 10, 10)
	r := newReplica(t, h, 10)
	d := newDC(t, h, 2, []string{r.addr}, 1<<20, window.Options{})
	apply(t, d.proxies[0], h, 10, rng)
	url := "http://" + d.addrs[0] + proxy.L2Path
	for _, tc := range []struct {
		name, method, query, body string
		want                      int
	}{
		{"Get", http.MethodGet, "?at=1", "", http.StatusMethodNotAllowed},
		{"NoIndex", http.MethodPost, "", `{"keys":["aw=="]}`, http.StatusBadRequest},
		{"IndexZero", http.MethodPost, "?at=0", `{"keys":["aw=="]}`, http.StatusBadRequest},
		{"NotJSON", http.MethodPost, "?at=1", `{`, http.StatusBadRequest},
		{"NoKeys", http.MethodPost, "?at=1", `{"keys":[]}`, http.StatusBadRequest},
		{"EmptyKey", http.MethodPost, "?at=1", `{"keys":[""]}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, url+tc.query, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("status %d (%s), want %d with a JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), tc.want)
			}
		})
	}
}

// TestTrace_ShowsEachTier traces reads at a proxy of a DC: a key its owner
// has cached goes window, cache, filter, then l2; a key the proxy owns
// skips l2 and is resolved at l3; a key in the window stops there. The
// trace admits nothing to the cache.
func TestTrace_ShowsEachTier(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	h := makeHistory(t, rng, 60, 200)
	r := newReplica(t, h, 60)
	d := newDC(t, h, 2, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	d.applyAll(t, h, 60, rng)
	var other, own string
	for _, k := range keysNotInWindow(h, 200, 0) {
		if _, present := h.stateAt(60)[k]; !present {
			continue
		}
		switch d.owner(k) {
		case 1:
			other = k
		case 0:
			own = k
		}
	}
	checkRead(t, d.proxies[1], h, other, false) // the owner caches it
	ctx := context.Background()
	tiers := func(tr apiwire.TraceResponse) (out []string) {
		for _, s := range tr.Steps {
			out = append(out, s.Tier+":"+s.Answer)
		}
		return out
	}
	for _, tc := range []struct {
		key, tier string
		steps     []string
	}{
		{other, proxy.TierL2, []string{"window:miss", "cache:miss", "filter:skip", "l2:hit"}},
		{own, proxy.TierL3, []string{"window:miss", "cache:miss", "filter:skip", "l2:skip", "l3:hit"}},
	} {
		for range 2 { // twice: nothing was admitted by the first
			tr, err := d.proxies[0].Trace(ctx, []byte(tc.key), d.proxies[0].Applied())
			if err != nil {
				t.Fatal(err)
			}
			if got := tiers(tr); tr.Tier != tc.tier || !slices.Equal(got, tc.steps) || string(tr.Value) != h.stateAt(60)[tc.key] {
				t.Errorf("trace of %s: tier %s, steps %v, value %q; want %s, %v, %q", tc.key, tr.Tier, got, tr.Value, tc.tier, tc.steps, h.stateAt(60)[tc.key])
			}
		}
	}
	last := h.entries[59].Ops[0]
	tr, err := d.proxies[0].Trace(ctx, last.Key, 60)
	if err != nil || tr.Tier != proxy.TierWindow || len(tr.Steps) != 1 {
		t.Errorf("trace of a key in the window: %+v, %v", tr, err)
	}
}

// BenchmarkL2_AskOwner measures one L2 request from a proxy to the owner
// of a key's shard, which has the key cached, over loopback HTTP in one
// process: the asker's encoding, the owner's answer, the asker's proof.
func BenchmarkL2_AskOwner(b *testing.B) {
	t := b
	rng := rand.New(rand.NewPCG(51, 52))
	h := makeHistory(t, rng, 50, 100)
	r := newReplica(t, h, 50)
	d := newDC(t, h, 2, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	d.applyAll(t, h, 50, rng)
	key := ""
	for _, k := range keysNotInWindow(h, 100, 0) {
		if _, present := h.stateAt(50)[k]; present && d.owner(k) == 1 {
			key = k
			break
		}
	}
	checkRead(t, d.proxies[1], h, key, false) // the owner caches it
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		tr, err := d.proxies[0].Trace(ctx, []byte(key), 50)
		if err != nil || tr.Tier != proxy.TierL2 {
			b.Fatalf("trace: %+v, %v", tr, err)
		}
	}
}

// TestL2_GetManyOneRequestPerOwner reads many keys in one mget at a proxy
// whose peers own them: each owner gets one L2 request for all its keys.
func TestL2_GetManyOneRequestPerOwner(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	h := makeHistory(t, rng, 100, 80)
	r := newReplica(t, h, 100)
	d := newDC(t, h, 3, []string{r.addr}, 1<<20, window.Options{MaxBatches: 1})
	d.applyAll(t, h, 100, rng)
	var keys []string
	owners := map[int]int{}
	for _, k := range keysNotInWindow(h, 80, 0) {
		if o := d.owner(k); o != 0 {
			keys = append(keys, k)
			owners[o]++
		}
	}
	if len(owners) != 2 {
		t.Fatalf("keys owned by %d peers, want 2", len(owners))
	}
	before := []int64{d.switches[1].requests.Load(), d.switches[2].requests.Load()}
	checkMany(t, d.proxies[0], h, keys, false)
	for i, o := range []int{1, 2} {
		if got := d.switches[o].requests.Load() - before[i]; got != 1 {
			t.Errorf("proxy %d, owner of %d of the keys, got %d L2 requests for one mget, want 1", o, owners[o], got)
		}
	}
}
