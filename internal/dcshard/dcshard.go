// Package dcshard maps keys to the proxies of a data center that own them
// in the DC-wide cache (L2): a key's logical shard is hash(key) mod
// Shards, and a shard's owners are the DC's proxies ranked by rendezvous
// (highest random weight) hashing of the shard and each proxy's address.
//
// Rendezvous hashing is what lets the set of proxies change without a
// coordinator: every proxy that knows the same set computes the same
// owner, and a proxy joining or leaving moves only the shards it wins or
// held. When an owner is down, its shards go to the next proxy of their
// ranking, which is again the same on every proxy.
package dcshard

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Shards is the number of logical shards of a data center.
const Shards = 1024

// Of returns key's logical shard.
func Of(key []byte) int { return int(xxhash.Sum64(key) % Shards) }

// Ring ranks a fixed set of proxies for every shard. It is immutable and
// safe for concurrent use; a new set of proxies makes a new Ring.
type Ring struct {
	peers []string
	// rank[s] lists the positions in peers of shard s's owners, best first.
	rank [Shards][]uint8
}

// MaxPeers bounds the proxies of one Ring: a data center's proxies share
// its shards, and a ranking keeps a byte per proxy.
const MaxPeers = 255

// NewRing ranks peers (addresses; duplicates and empty ones are dropped,
// order does not matter) for every shard. It keeps at most MaxPeers, the
// first in sorted order.
func NewRing(peers []string) *Ring {
	ps := slices.Clone(peers)
	ps = slices.DeleteFunc(ps, func(p string) bool { return strings.TrimSpace(p) == "" })
	slices.Sort(ps)
	ps = slices.Compact(ps)
	if len(ps) > MaxPeers {
		ps = ps[:MaxPeers]
	}
	r := &Ring{peers: ps}
	seeds := make([]uint64, len(ps))
	for i, p := range ps {
		seeds[i] = xxhash.Sum64String(p)
	}
	weights := make([]uint64, len(ps))
	for s := range r.rank {
		order := make([]uint8, len(ps))
		for i := range ps {
			order[i] = uint8(i)
			weights[i] = weight(seeds[i], s)
		}
		slices.SortFunc(order, func(a, b uint8) int {
			switch wa, wb := weights[a], weights[b]; {
			case wa > wb:
				return -1
			case wa < wb:
				return 1
			}
			return strings.Compare(ps[a], ps[b])
		})
		r.rank[s] = order
	}
	return r
}

// weight is a proxy's score for a shard: a hash of the proxy's seed and
// the shard number, so each shard orders the proxies independently.
func weight(seed uint64, shard int) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(shard))
	return xxhash.Sum64(b[:])
}

// Peers returns the ring's proxies, sorted.
func (r *Ring) Peers() []string { return slices.Clone(r.peers) }

// Len is the number of proxies.
func (r *Ring) Len() int { return len(r.peers) }

// Owner returns the first proxy in shard's ranking for which up reports
// true (nil up: every proxy is up), and false when none is up.
func (r *Ring) Owner(shard int, up func(addr string) bool) (string, bool) {
	for _, i := range r.rank[shard] {
		if p := r.peers[i]; up == nil || up(p) {
			return p, true
		}
	}
	return "", false
}

// Owners returns shard's ranking, best first.
func (r *Ring) Owners(shard int) []string {
	out := make([]string, len(r.rank[shard]))
	for j, i := range r.rank[shard] {
		out[j] = r.peers[i]
	}
	return out
}
