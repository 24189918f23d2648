package proxy

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// doorkeeper remembers which keys a proxy of a data center asked a DC peer
// for lately, so that an answer from a key's owner enters the proxy's own
// cache (L1) only on the key's second miss here. The owner keeps the key
// for the whole DC (L2); copying every key read once at every proxy would
// fill each proxy's cache with the same tail and shrink the DC's combined
// cache to one proxy's. A key read again here is hot here, and is worth
// the copy. It keeps two generations of at most n key hashes each, so it
// remembers between n and 2n of the latest keys.
type doorkeeper struct {
	n int

	mu        sync.Mutex
	cur, prev map[uint64]struct{}
}

func newDoorkeeper(n int) *doorkeeper {
	return &doorkeeper{n: n, cur: make(map[uint64]struct{}), prev: make(map[uint64]struct{})}
}

// seen reports whether key was passed to seen before (within the last n
// to 2n keys), and remembers it.
func (d *doorkeeper) seen(key []byte) bool {
	h := xxhash.Sum64(key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.cur[h]; ok {
		return true
	}
	_, ok := d.prev[h]
	if len(d.cur) >= d.n {
		d.prev, d.cur = d.cur, make(map[uint64]struct{}, d.n)
	}
	d.cur[h] = struct{}{}
	return ok
}
