package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// Latencies are recorded in microseconds, from 1 us to 60 s, to 3
// significant digits.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

// errMiss is returned by a read of a key that is absent. It is an answer,
// not a failure: in workload D a replica may not have a key inserted at the
// root a moment ago. Misses are counted apart.
var errMiss = errors.New("compare: key not found")

// worker is what one goroutine of a run does. do sends one request, chosen
// by the worker, and returns its kind (an index into runSpec.kinds) and how
// it went: nil, errMiss, or a failure.
type worker interface {
	do(ctx context.Context) (kind int, err error)
}

// runSpec is one measured run: a number of workers, each with its own
// connection, sending requests back to back (rate 0: closed loop) or on
// their share of a fixed schedule (open loop).
type runSpec struct {
	id        string // unique name of the run, the key of its result
	system    string // "argent", "etcd", ...
	workers   int    // goroutines, each with its own connection
	duration  time.Duration
	rate      float64  // requests per second over all workers; 0 = closed loop
	kinds     []string // names of the request kinds workers report
	keysPerOp int      // keys one request reads (mget); 0 means 1
	pids      []int    // server processes whose CPU the run reports
	timeout   time.Duration
	// newWorker returns worker id's request loop. deadline bounds every
	// request of the run; workers that hold connections set it on them.
	newWorker func(id int, deadline time.Time) (worker, error)
}

// latency is a histogram's summary in milliseconds.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(h *hdrhistogram.Histogram) latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}

// runResult is one run's outcome, as written to the JSON results.
type runResult struct {
	ID        string  `json:"id"`
	System    string  `json:"system"`
	Workers   int     `json:"workers"`
	Rate      float64 `json:"rate"` // asked; 0 = closed loop
	Duration  float64 `json:"duration_s"`
	Ops       int64   `json:"ops"` // answered requests, misses included
	OpsPerSec float64 `json:"ops_per_sec"`
	// KeysPerSec is OpsPerSec times the keys of one request (mget).
	KeysPerSec float64          `json:"keys_per_sec,omitempty"`
	Misses     int64            `json:"misses,omitempty"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	// Unsent counts open-loop requests that were due before the end but not
	// sent because every worker was still busy: the rate was not met.
	Unsent int64 `json:"unsent,omitempty"`
	// Latency is over every answered request, from its send (closed loop)
	// or from the time it was due on the schedule (open loop).
	Latency latency            `json:"latency"`
	ByKind  map[string]latency `json:"by_kind,omitempty"`
	// CPU during the run, in cores: this program (the clients), the server
	// processes, and everything else on the machine.
	ClientCores float64 `json:"client_cores"`
	ServerCores float64 `json:"server_cores"`
	OtherCores  float64 `json:"other_cores"`
	// ServerUsPerOp and ClientUsPerOp are server and client (this
	// program's) CPU microseconds per answered request.
	ServerUsPerOp float64 `json:"server_us_per_op"`
	ClientUsPerOp float64 `json:"client_us_per_op"`
	// RoundOpsPerSec is the throughput of each round of an interleaved
	// comparison (see measure); OpsPerSec of a closed loop is their median.
	RoundOpsPerSec []float64 `json:"round_ops_per_sec,omitempty"`

	// For combining rounds: the histograms and the wall time of the CPU
	// figures.
	hist     *hdrhistogram.Histogram
	kindHist map[string]*hdrhistogram.Histogram
	cpuWall  float64
}

// workerStats is one goroutine's tally, merged after the run.
type workerStats struct {
	all    *hdrhistogram.Histogram
	byKind []*hdrhistogram.Histogram
	ops    int64
	misses int64
	unsent int64
	errs   map[string]int64
}

func newWorkerStats(kinds int) *workerStats {
	s := &workerStats{all: hdrhistogram.New(histMin, histMax, histSig)}
	for range kinds {
		s.byKind = append(s.byKind, hdrhistogram.New(histMin, histMax, histSig))
	}
	return s
}

func (s *workerStats) record(kind int, err error, lat time.Duration) {
	switch {
	case err == nil:
	case errors.Is(err, errMiss):
		s.misses++
	default:
		if s.errs == nil {
			s.errs = make(map[string]int64)
		}
		s.errs[errKind(err)]++
		return
	}
	s.ops++
	us := min(histMax, max(histMin, lat.Microseconds()))
	_ = s.all.RecordValue(us)
	if kind >= 0 && kind < len(s.byKind) {
		_ = s.byKind[kind].RecordValue(us)
	}
}

// run runs spec and returns its merged result. It fails only when a worker
// cannot be made or ctx ends; failed requests are counted in the result.
func run(ctx context.Context, spec runSpec) (*runResult, error) {
	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(spec.duration)
	deadline := end.Add(spec.timeout)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	workers := make([]worker, spec.workers)
	for i := range workers {
		w, err := spec.newWorker(i, deadline)
		if err != nil {
			return nil, fmt.Errorf("%s: worker %d: %w", spec.id, i, err)
		}
		workers[i] = w
	}
	stats := make([]*workerStats, spec.workers)
	cpu0 := benchnode.SampleCPU(spec.pids)
	var wg sync.WaitGroup
	for i := range workers {
		stats[i] = newWorkerStats(len(spec.kinds))
		wg.Go(func() { loop(rctx, spec, i, workers[i], stats[i], start, end) })
	}
	wg.Wait()
	cpu := benchnode.CPUBetween(cpu0, benchnode.SampleCPU(spec.pids))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	return merge(spec, stats, elapsed, cpu), nil
}

// loop is one worker's run: back to back until end (closed loop), or
// request k of worker id due at start + (id + k*workers)/rate, so that the
// workers interleave into one even schedule (open loop). In the open loop a
// request's latency runs from the time it was due, so a stall shows as
// latency of every request it delayed instead of as a lower rate.
func loop(ctx context.Context, spec runSpec, id int, w worker, st *workerStats, start, end time.Time) {
	if d := time.Until(start); d > 0 {
		time.Sleep(d)
	}
	if spec.rate == 0 {
		for t0 := time.Now(); t0.Before(end) && ctx.Err() == nil; {
			kind, err := w.do(ctx)
			t1 := time.Now()
			st.record(kind, err, t1.Sub(t0))
			if err != nil && !errors.Is(err, errMiss) {
				// Do not spin on a refused connection.
				time.Sleep(min(10*time.Millisecond, max(0, time.Until(end))))
				t1 = time.Now()
			}
			t0 = t1
		}
		return
	}
	step := float64(time.Second) / spec.rate
	for k := 0; ctx.Err() == nil; k++ {
		due := start.Add(time.Duration((float64(id) + float64(k)*float64(spec.workers)) * step))
		if !due.Before(end) {
			return
		}
		now := time.Now()
		if !now.Before(end) {
			st.unsent += int64(float64(end.Sub(due))/(step*float64(spec.workers))) + 1
			return
		}
		if d := due.Sub(now); d > 0 {
			time.Sleep(d)
		}
		kind, err := w.do(ctx)
		st.record(kind, err, time.Since(due))
	}
}

func merge(spec runSpec, stats []*workerStats, elapsed time.Duration, cpu benchnode.CPUUse) *runResult {
	res := &runResult{ID: spec.id, System: spec.system, Workers: spec.workers, Rate: spec.rate, Duration: elapsed.Seconds()}
	all := hdrhistogram.New(histMin, histMax, histSig)
	byKind := make([]*hdrhistogram.Histogram, len(spec.kinds))
	for i := range byKind {
		byKind[i] = hdrhistogram.New(histMin, histMax, histSig)
	}
	for _, s := range stats {
		all.Merge(s.all)
		for i, h := range s.byKind {
			byKind[i].Merge(h)
		}
		res.Ops += s.ops
		res.Misses += s.misses
		res.Unsent += s.unsent
		for k, n := range s.errs {
			if res.ErrorKinds == nil {
				res.ErrorKinds = make(map[string]int64)
			}
			res.ErrorKinds[k] += n
			res.Errors += n
		}
	}
	res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	if spec.keysPerOp > 1 {
		res.KeysPerSec = res.OpsPerSec * float64(spec.keysPerOp)
	}
	res.Latency, res.hist = summarize(all), all
	if len(spec.kinds) > 1 {
		res.ByKind = make(map[string]latency, len(spec.kinds))
		res.kindHist = make(map[string]*hdrhistogram.Histogram, len(spec.kinds))
		for i, k := range spec.kinds {
			res.ByKind[k], res.kindHist[k] = summarize(byKind[i]), byKind[i]
		}
	}
	if cpu.OK {
		res.cpuWall = cpu.Wall
		res.ClientCores = cpu.Self
		for _, c := range cpu.PIDs {
			res.ServerCores += c
		}
		res.OtherCores = cpu.Other()
		if res.Ops > 0 {
			res.ServerUsPerOp = res.ServerCores * cpu.Wall * 1e6 / float64(res.Ops)
			res.ClientUsPerOp = res.ClientCores * cpu.Wall * 1e6 / float64(res.Ops)
		}
	}
	return res
}

// errKind names an error for the tally without its varying details.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "deadline exceeded", "EOF"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// errorSummary lists a result's error kinds, most frequent first.
func errorSummary(kinds map[string]int64) string {
	type kv struct {
		k string
		n int64
	}
	var l []kv
	for k, n := range kinds {
		l = append(l, kv{k, n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || l[i].n == l[j].n && l[i].k < l[j].k })
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s: %d", e.k, e.n)
	}
	return strings.Join(parts, ", ")
}
