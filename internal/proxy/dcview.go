package proxy

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/argent-kv/argent/internal/dcshard"
)

// dcView is what a proxy of a data center knows of the DC's proxies that
// share the DC-wide cache (L2): itself, the --dc-peers given, those its
// relays name as their children in the same DC, and which of them failed
// a request lately. Owners are ranked by dcshard over all of them, so
// every proxy with the same view picks the same owner; an owner marked
// down is skipped for downFor, and its shards go to the next of their
// ranking.
type dcView struct {
	self    string
	timeout time.Duration // one request to an owner
	downFor time.Duration // an owner that failed is skipped this long
	forget  time.Duration // a learned proxy no relay named for this long is dropped

	mu      sync.Mutex
	static  []string
	learned map[string]time.Time // address -> last named by a relay
	down    map[string]time.Time // address -> skipped until
	ring    *dcshard.Ring
}

func newDCView(self string, peers []string, timeout time.Duration) *dcView {
	v := &dcView{self: normAddr(self), timeout: timeout, downFor: 2 * time.Second, forget: 10 * time.Second,
		learned: make(map[string]time.Time), down: make(map[string]time.Time)}
	for _, p := range peers {
		if p = normAddr(p); p != "" {
			v.static = append(v.static, p)
		}
	}
	v.rebuildLocked()
	return v
}

func normAddr(a string) string { return strings.TrimPrefix(strings.TrimSpace(a), "http://") }

// rebuildLocked ranks the proxies known now.
func (v *dcView) rebuildLocked() {
	all := append([]string{v.self}, v.static...)
	for a := range v.learned {
		all = append(all, a)
	}
	if v.ring != nil && slices.Equal(v.ring.Peers(), sortedSet(all)) {
		return
	}
	v.ring = dcshard.NewRing(all)
}

func sortedSet(as []string) []string {
	as = slices.Clone(as)
	slices.Sort(as)
	return slices.Compact(as)
}

// learn takes the proxies a relay names in the DC (addresses), and drops
// learned ones no relay has named for the forget time.
func (v *dcView) learn(addrs []string) {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, a := range addrs {
		if a = normAddr(a); a != "" {
			v.learned[a] = now
		}
	}
	for a, seen := range v.learned {
		if now.Sub(seen) > v.forget {
			delete(v.learned, a)
		}
	}
	v.rebuildLocked()
}

// owner returns the proxy that owns key's shard among those not marked
// down, and whether that is this proxy itself.
func (v *dcView) owner(key []byte) (addr string, self bool) {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	a, _ := v.ring.Owner(dcshard.Of(key), func(a string) bool {
		until, ok := v.down[a]
		return !ok || a == v.self || now.After(until)
	})
	return a, a == v.self || a == ""
}

// markDown skips addr as an owner for downFor.
func (v *dcView) markDown(addr string) {
	v.mu.Lock()
	v.down[addr] = time.Now().Add(v.downFor)
	v.mu.Unlock()
}

// peers returns the DC's proxies known now, this one included.
func (v *dcView) peers() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ring.Peers()
}

// learnDCPeers takes the DC's proxies a relay named.
func (p *Proxy) learnDCPeers(addrs []string) { p.dc.learn(addrs) }

// DCPeers returns the proxies of the DC that share its L2, this one
// included, or nil outside a data center.
func (p *Proxy) DCPeers() []string {
	if p.dc == nil {
		return nil
	}
	return p.dc.peers()
}
