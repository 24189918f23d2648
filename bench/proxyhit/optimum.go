package main

// The online baselines a proxycache replay is shown beside; the optimum
// itself is cachetrace.Belady.

import (
	"sort"

	"github.com/argent-kv/argent/bench/internal/cachetrace"
)

// lru replays trace against a least-recently-used cache of budget bytes
// that caches every key it misses (evicting the least recently read until
// it fits): the textbook baseline.
func lru(trace []int32, weight []int64, budget int64, late int) cachetrace.Hits {
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
	var out cachetrace.Hits
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
func staticBest(trace []int32, weight []int64, budget int64, late int) cachetrace.Hits {
	keys := len(weight)
	count := make([]int32, keys)
	lateCount := make([]int32, keys)
	first := make([]int32, keys)
	for i := range first {
		first[i] = cachetrace.Never
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
	var out cachetrace.Hits
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
