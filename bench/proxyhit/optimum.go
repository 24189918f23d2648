package main

import (
	"container/heap"
	"math"
	"sort"
)

// hits is what a policy scored on a trace: hits over the whole trace and
// over its second half (from position late on), where a cache that learns
// has had time to.
type hits struct {
	All, Late int
}

// rates returns the hit rates of h over a trace of n reads with its second
// half starting at late.
func (h hits) rates(n, late int) (all, second float64) {
	if n > 0 {
		all = float64(h.All) / float64(n)
	}
	if n-late > 0 {
		second = float64(h.Late) / float64(n-late)
	}
	return all, second
}

// never is the next use of a key that is not read again.
const never = math.MaxInt32

// nextUses returns, for each position of trace, the position of the next
// read of the same key, or never.
func nextUses(trace []int32, keys int) []int32 {
	next := make([]int32, len(trace))
	last := make([]int32, keys)
	for i := range last {
		last[i] = never
	}
	for i := len(trace) - 1; i >= 0; i-- {
		k := trace[i]
		next[i] = last[k]
		last[k] = int32(i)
	}
	return next
}

// belady replays trace against the offline policy that knows the future:
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
func belady(trace []int32, weight []int64, budget int64, late int) hits {
	keys := len(weight)
	next := nextUses(trace, keys)
	cached := make([]bool, keys)
	curNext := make([]int32, keys)
	h := &useHeap{}
	var used int64
	var out hits
	var popped []use
	for i, k := range trace {
		nx := next[i]
		if cached[k] {
			out.All++
			if i >= late {
				out.Late++
			}
			if nx == never {
				cached[k] = false // no further use: free its room now
				used -= weight[k]
				continue
			}
			curNext[k] = nx
			heap.Push(h, use{next: nx, key: k})
			continue
		}
		w := weight[k]
		if nx == never || w > budget {
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

// lru replays trace against a least-recently-used cache of budget bytes
// that caches every key it misses (evicting the least recently read until
// it fits): the textbook baseline.
func lru(trace []int32, weight []int64, budget int64, late int) hits {
	keys := len(weight)
	const none = -1
	prev := make([]int32, keys)
	next := make([]int32, keys)
	cached := make([]bool, keys)
	head, tail := int32(none), int32(none) // head: most recent
	unlink := func(k int32) {
		if prev[k] != none {
			next[prev[k]] = next[k]
		} else {
			head = next[k]
		}
		if next[k] != none {
			prev[next[k]] = prev[k]
		} else {
			tail = prev[k]
		}
	}
	pushFront := func(k int32) {
		prev[k], next[k] = none, head
		if head != none {
			prev[head] = k
		}
		head = k
		if tail == none {
			tail = k
		}
	}
	var used int64
	var out hits
	for i, k := range trace {
		if cached[k] {
			out.All++
			if i >= late {
				out.Late++
			}
			unlink(k)
			pushFront(k)
			continue
		}
		w := weight[k]
		if w > budget {
			continue
		}
		for used+w > budget {
			v := tail
			unlink(v)
			cached[v] = false
			used -= weight[v]
		}
		cached[k] = true
		used += w
		pushFront(k)
	}
	return out
}

// staticBest is the best cache that holds one fixed set of keys for the
// whole trace, chosen knowing how often each key is read (an oracle of
// frequencies, what a perfect LFU converges to on a stationary trace):
// keys by reads per byte, most first, taken greedily while they fit. It
// starts empty like the others, so each key's first read misses. With
// equal weights the greedy choice is the best fixed set.
func staticBest(trace []int32, weight []int64, budget int64, late int) hits {
	keys := len(weight)
	count := make([]int32, keys)
	lateCount := make([]int32, keys)
	first := make([]int32, keys)
	for i := range first {
		first[i] = never
	}
	for i, k := range trace {
		if count[k] == 0 {
			first[k] = int32(i)
		}
		count[k]++
		if i >= late {
			lateCount[k]++
		}
	}
	order := make([]int32, 0, keys)
	for k := range keys {
		if count[k] > 1 {
			order = append(order, int32(k))
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		// count[a]/weight[a] > count[b]/weight[b], without division
		l, r := int64(count[a])*weight[b], int64(count[b])*weight[a]
		return l > r || l == r && a < b
	})
	var used int64
	var out hits
	for _, k := range order {
		if used+weight[k] > budget {
			continue
		}
		used += weight[k]
		out.All += int(count[k]) - 1
		out.Late += int(lateCount[k])
		if int(first[k]) >= late {
			out.Late--
		}
	}
	return out
}
