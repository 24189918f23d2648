package cachetrace

import (
	"container/heap"
	"math"
)

// Hits is what a policy scored on a trace: hits over the whole trace and
// over its second half (from position late on), where a cache that learns
// has had time to.
type Hits struct {
	All, Late int
}

// Rates returns the hit rates of h over a trace of n reads with its second
// half starting at late.
func (h Hits) Rates(n, late int) (all, second float64) {
	if n > 0 {
		all = float64(h.All) / float64(n)
	}
	if n-late > 0 {
		second = float64(h.Late) / float64(n-late)
	}
	return all, second
}

// Never is the next use of a key that is not read again.
const Never = math.MaxInt32

// NextUses returns, for each position of trace, the position of the next
// read of the same key, or Never.
func NextUses(trace []int32, keys int) []int32 {
	next := make([]int32, len(trace))
	last := make([]int32, keys)
	for i := range last {
		last[i] = Never
	}
	for i := len(trace) - 1; i >= 0; i-- {
		k := trace[i]
		next[i] = last[k]
		last[k] = int32(i)
	}
	return next
}

// Belady replays trace against the offline policy that knows the future:
// Belady's MIN with bypass. Key k weighs weight[k]; the cache holds at most
// budget. On a miss the new key is cached only if that pays: the entries
// with the furthest next uses are evicted until it fits, provided each of
// them is next read after the new key; if that cannot make room, the new
// key is not cached (bypass) and nothing is evicted. A key never read
// again is never cached.
//
// With equal weights this is exactly optimal: no policy, online or not,
// that may refuse to cache a key (as proxycache may) gets more hits.
// With unequal weights the problem is NP-hard and this is a heuristic: it
// is a feasible policy, so its hits are a lower bound of the optimum, and
// a ratio against it overstates the ratio against the true optimum.
func Belady(trace []int32, weight []int64, budget int64, late int) Hits {
	keys := len(weight)
	next := NextUses(trace, keys)
	cached := make([]bool, keys)
	curNext := make([]int32, keys)
	h := &useHeap{}
	var used int64
	var out Hits
	var popped []use
	for i, k := range trace {
		nx := next[i]
		if cached[k] {
			out.All++
			if i >= late {
				out.Late++
			}
			if nx == Never {
				cached[k] = false // no further use: free its room now
				used -= weight[k]
				continue
			}
			curNext[k] = nx
			heap.Push(h, use{next: nx, key: k})
			continue
		}
		w := weight[k]
		if nx == Never || w > budget {
			continue
		}
		popped = popped[:0]
		freed := int64(0)
		for used-freed+w > budget {
			top, ok := h.top(cached, curNext)
			if !ok || top.next <= nx {
				break
			}
			heap.Pop(h)
			popped = append(popped, top)
			freed += weight[top.key]
		}
		if used-freed+w > budget {
			for _, u := range popped { // bypass: keep what was there
				heap.Push(h, u)
			}
			continue
		}
		for _, u := range popped {
			cached[u.key] = false
		}
		used += w - freed
		cached[k] = true
		curNext[k] = nx
		heap.Push(h, use{next: nx, key: k})
	}
	return out
}

// use is a cached key and its next read.
type use struct {
	next int32
	key  int32
}

// useHeap is a max-heap of uses by next read. Entries go stale when their
// key is read again (a newer entry is pushed) or evicted; top skips them.
type useHeap []use

func (h useHeap) Len() int           { return len(h) }
func (h useHeap) Less(i, j int) bool { return h[i].next > h[j].next }
func (h useHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *useHeap) Push(x any)        { *h = append(*h, x.(use)) }
func (h *useHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	*h = old[:len(old)-1]
	return u
}

// top drops stale entries and returns the cached key read furthest in the
// future.
func (h *useHeap) top(cached []bool, curNext []int32) (use, bool) {
	for h.Len() > 0 {
		u := (*h)[0]
		if cached[u.key] && curNext[u.key] == u.next {
			return u, true
		}
		heap.Pop(h)
	}
	return use{}, false
}

// BruteForce is the best any policy can do on trace, by exhaustive search:
// after each read the cache may hold any subset of what it held plus the
// key just read that fits the budget (fetching is optional, evicting is
// free). It is exponential in the number of keys: for checking Belady and
// other policies in tests on at most a dozen keys.
func BruteForce(trace []int32, weight []int64, budget int64) int {
	keys := len(weight)
	memo := map[[2]int]int{}
	var best func(i, mask int) int
	best = func(i, mask int) int {
		if i == len(trace) {
			return 0
		}
		if v, ok := memo[[2]int{i, mask}]; ok {
			return v
		}
		k := int(trace[i])
		hit := 0
		if mask&(1<<k) != 0 {
			hit = 1
		}
		all := mask | 1<<k
		top := 0
		for sub := all; ; sub = (sub - 1) & all {
			var w int64
			for j := range keys {
				if sub&(1<<j) != 0 {
					w += weight[j]
				}
			}
			if w <= budget {
				top = max(top, best(i+1, sub))
			}
			if sub == 0 {
				break
			}
		}
		memo[[2]int{i, mask}] = hit + top
		return hit + top
	}
	return best(0, 0)
}
