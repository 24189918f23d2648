package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// On a shared machine other jobs come and go in bursts of seconds. A
// comparison therefore runs each workload in rounds: every system for
// duration/rounds, one after the other, rounds times, so that a burst
// falls on every system alike instead of on whichever ran during it. A
// system's throughput is the median of its rounds; its latencies and CPU
// are over all its rounds together.

// comparison is one workload measured on several systems in rounds.
type comparison struct {
	id        func(s system) string // run ID of each system
	workers   int
	rate      float64 // 0: closed loop
	kinds     []string
	keysPerOp int
	// newWorker returns the worker factory of system s; it is called once
	// per system, so state shared by a system's workers (YCSB D's insert
	// counter) lasts across its rounds.
	newWorker func(s system) func(conn int, r *mrand.Rand) worker
}

// measure runs c on every system in cfg.rounds interleaved rounds and
// returns one combined result per system, in the order of systems.
func measure(ctx context.Context, cfg config, systems []system, c comparison) ([]*runResult, error) {
	rounds := max(1, cfg.rounds)
	part := cfg
	part.duration = cfg.duration / time.Duration(rounds)
	mks := make([]func(int, *mrand.Rand) worker, len(systems))
	for i, s := range systems {
		mks[i] = c.newWorker(s)
	}
	per := make([][]*runResult, len(systems))
	for r := range rounds {
		for i, s := range systems {
			id := c.id(s)
			res, err := runOn(ctx, part, s, fmt.Sprintf("%s#%d", id, r), c.workers, c.rate, c.kinds, c.keysPerOp, mks[i])
			if err != nil {
				return nil, err
			}
			res.ID = id
			per[i] = append(per[i], res)
		}
	}
	out := make([]*runResult, len(systems))
	for i := range systems {
		out[i] = combineRounds(per[i], c.keysPerOp)
	}
	return out, nil
}

// combineRounds merges the rounds of one system: counts and histograms
// added, CPU averaged over the time, and the throughput of a closed loop
// the median of the rounds' (of an open loop, the rate achieved overall).
func combineRounds(rounds []*runResult, keysPerOp int) *runResult {
	if len(rounds) == 1 {
		return rounds[0]
	}
	first := rounds[0]
	c := &runResult{ID: first.ID, System: first.System, Workers: first.Workers, Rate: first.Rate}
	all := hdrhistogram.New(histMin, histMax, histSig)
	byKind := map[string]*hdrhistogram.Histogram{}
	var server, client, other float64 // core-seconds
	for _, r := range rounds {
		c.Duration += r.Duration
		c.Ops += r.Ops
		c.Misses += r.Misses
		c.Errors += r.Errors
		c.Unsent += r.Unsent
		for k, n := range r.ErrorKinds {
			if c.ErrorKinds == nil {
				c.ErrorKinds = map[string]int64{}
			}
			c.ErrorKinds[k] += n
		}
		c.RoundOpsPerSec = append(c.RoundOpsPerSec, r.OpsPerSec)
		if r.hist != nil {
			all.Merge(r.hist)
		}
		for k, h := range r.kindHist {
			if byKind[k] == nil {
				byKind[k] = hdrhistogram.New(histMin, histMax, histSig)
			}
			byKind[k].Merge(h)
		}
		server += r.ServerCores * r.cpuWall
		client += r.ClientCores * r.cpuWall
		other += r.OtherCores * r.cpuWall
		c.cpuWall += r.cpuWall
	}
	c.hist, c.Latency = all, summarize(all)
	if len(byKind) > 0 {
		c.ByKind, c.kindHist = map[string]latency{}, byKind
		for k, h := range byKind {
			c.ByKind[k] = summarize(h)
		}
	}
	if c.Rate > 0 {
		c.OpsPerSec = float64(c.Ops) / c.Duration
	} else {
		c.OpsPerSec = median(c.RoundOpsPerSec)
	}
	if keysPerOp > 1 {
		c.KeysPerSec = c.OpsPerSec * float64(keysPerOp)
	}
	if c.cpuWall > 0 {
		c.ServerCores, c.ClientCores, c.OtherCores = server/c.cpuWall, client/c.cpuWall, other/c.cpuWall
	}
	if c.Ops > 0 {
		c.ServerUsPerOp = server * 1e6 / float64(c.Ops)
		c.ClientUsPerOp = client * 1e6 / float64(c.Ops)
	}
	return c
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
