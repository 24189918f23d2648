package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// propResult is the delay from a write's send until one observer saw it.
type propResult struct {
	ID       string  `json:"id"`
	System   string  `json:"system"`
	Observer string  `json:"observer"` // where and how the write was seen
	Hops     int     `json:"hops"`     // replication hops from the write to the observer
	Rate     float64 `json:"rate"`     // writes (batches) per second, open loop
	Writers  int     `json:"writers"`
	Duration float64 `json:"duration_s"`
	Written  int     `json:"written"` // acknowledged writes
	Seen     int     `json:"seen"`    // of those, seen by the observer
	Errors   int     `json:"errors"`
	// ErrorKinds counts the failed writes by kind.
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	// Delay runs from the start of the write request to the moment the
	// observer read the change; Write from the start to the acknowledgement.
	Delay latency `json:"delay"`
	Write latency `json:"write"`
	// CPU during the writes, in cores: the system's processes, this
	// program (writers and observers), and everything else.
	ServerCores float64 `json:"server_cores"`
	ClientCores float64 `json:"client_cores"`
	OtherCores  float64 `json:"other_cores"`
}

// propObserver watches one place for the writes of a run. start begins
// watching keys under prefix, calling seen from one goroutine for every
// key it sees, and returns once the watch is in place; stop ends it and
// waits for that goroutine.
type propObserver struct {
	label string
	hops  int
	start func(ctx context.Context, prefix string, seen func(key []byte, at time.Time)) (stop func(), err error)
}

// propSystem is one system of the propagation runs: how to write, and who
// watches.
type propSystem struct {
	name      string
	pids      []int // its processes, whose CPU the results report
	put       func(ctx context.Context, w int, key, value []byte) error
	observers []propObserver
}

// propWriters is the number of writer goroutines for a rate: enough that
// a slow write does not hold up the schedule, as in bench/propagate.
func propWriters(rate float64) int { return int(min(16, max(4, rate/60))) }

// measurePropagation writes at rate for d, key prefix+seq, and returns the
// delay to each observer.
func measurePropagation(ctx context.Context, sys propSystem, run string, rate float64, d time.Duration, value []byte) ([]*propResult, error) {
	prefix := "prop/" + run + "/"
	total := int(rate * d.Seconds())
	writers := propWriters(rate)
	base := time.Now()
	type obsState struct {
		arr   []int64 // arrival, ns after base, per seq; 0 = not seen
		count atomic.Int64
		stop  func()
	}
	obs := make([]*obsState, len(sys.observers))
	defer func() {
		for _, o := range obs {
			if o != nil && o.stop != nil {
				o.stop()
			}
		}
	}()
	for i, o := range sys.observers {
		st := &obsState{arr: make([]int64, total)}
		stop, err := o.start(ctx, prefix, func(key []byte, at time.Time) {
			seq, ok := seqOf(key, prefix)
			if ok && seq < total && st.arr[seq] == 0 {
				st.arr[seq] = max(1, int64(at.Sub(base)))
				st.count.Add(1)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("%s: observer %s: %w", sys.name, o.label, err)
		}
		st.stop = stop
		obs[i] = st
	}

	sent := make([]int64, total)
	acked := make([]int64, total)
	errs := make([]map[string]int64, writers)
	start := time.Now().Add(50 * time.Millisecond)
	step := float64(time.Second) / rate
	cpu0 := benchnode.SampleCPU(sys.pids)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var key []byte
			for seq := w; seq < total && ctx.Err() == nil; seq += writers {
				if dl := time.Until(start.Add(time.Duration(float64(seq) * step))); dl > 0 {
					time.Sleep(dl)
				}
				key = strconv.AppendInt(append(key[:0], prefix...), int64(seq), 10)
				s := time.Now()
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := sys.put(wctx, w, key, value)
				cancel()
				a := time.Now()
				if err != nil {
					if errs[w] == nil {
						errs[w] = map[string]int64{}
					}
					errs[w][errKind(err)]++
					continue
				}
				sent[seq], acked[seq] = int64(s.Sub(base)), int64(a.Sub(base))
			}
		})
	}
	wg.Wait()
	cpu := benchnode.CPUBetween(cpu0, benchnode.SampleCPU(sys.pids))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	written := 0
	for _, a := range acked {
		if a > 0 {
			written++
		}
	}
	// Drain: wait up to 10 s for every acknowledged write at every observer.
	drain := time.Now().Add(10 * time.Second)
	for _, o := range obs {
		for o.count.Load() < int64(written) && time.Now().Before(drain) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, o := range obs {
		o.stop()
		o.stop = nil
	}

	writeHist := hdrhistogram.New(histMin, histMax, histSig)
	for seq := range total {
		if acked[seq] > 0 {
			_ = writeHist.RecordValue(clampUs(acked[seq] - sent[seq]))
		}
	}
	var out []*propResult
	for i, o := range sys.observers {
		h := hdrhistogram.New(histMin, histMax, histSig)
		seen := 0
		for seq := range total {
			if acked[seq] > 0 && obs[i].arr[seq] > 0 {
				seen++
				_ = h.RecordValue(clampUs(obs[i].arr[seq] - sent[seq]))
			}
		}
		r := &propResult{
			ID: fmt.Sprintf("propagate/%g/%s", rate, o.label), System: sys.name, Observer: o.label, Hops: o.hops,
			Rate: rate, Writers: writers, Duration: d.Seconds(), Written: written, Seen: seen,
			Delay: summarize(h), Write: summarize(writeHist),
		}
		if cpu.OK {
			r.ClientCores, r.OtherCores = cpu.Self, cpu.Other()
			for _, c := range cpu.PIDs {
				r.ServerCores += c
			}
		}
		for _, m := range errs {
			for k, n := range m {
				if r.ErrorKinds == nil {
					r.ErrorKinds = map[string]int64{}
				}
				r.ErrorKinds[k] += n
				r.Errors += int(n)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// clampUs converts ns to µs within the histogram's range.
func clampUs(ns int64) int64 { return min(histMax, max(histMin, ns/1000)) }

// seqOf parses the sequence number of a key prefix+N.
func seqOf(key []byte, prefix string) (int, bool) {
	if len(key) <= len(prefix) || string(key[:len(prefix)]) != prefix {
		return 0, false
	}
	n, err := strconv.Atoi(string(key[len(prefix):]))
	return n, err == nil && n >= 0
}

// runPropagation starts a root with one replica, a chain root -> r1 -> r2
// -> r3, an etcd member and a Redis primary with a replica, and for each
// rate writes at the first root (one hop), the chain's root (three hops),
// the etcd member and the Redis primary in turn. One hop is measured on a
// pair of its own so that the chain's deeper replicas, applying every
// write too, do not take the two cores from it: etcd's watch and Redis's
// replica have no such nodes behind them either.
func runPropagation(ctx context.Context, cfg config, res *results, dir string, log io.Writer) error {
	fmt.Fprintln(log, "== propagation: starting argent root -> replica, argent root -> r1 -> r2 -> r3, etcd, Redis primary -> replica")
	e, err := startEnv(ctx, cfg.bins, filepath.Join(dir, "propagate"), envSpec{depth: 3, etcd: true, redis: true})
	if err != nil {
		return err
	}
	defer e.close(cfg.keep)
	pair, err := startEnv(ctx, cfg.bins, filepath.Join(dir, "propagate-pair"), envSpec{depth: 1})
	if err != nil {
		return err
	}
	defer pair.close(cfg.keep)
	maxWriters := propWriters(20_000)
	value := newValuePool(256, cfg.seed).of(0)

	argentOne := argentPropSystem(pair, maxWriters, argentObserver(pair.replicas[0], "argent-r1", 1))
	defer argentOne.close()
	argentThree := argentPropSystem(e, maxWriters, argentObserver(e.replicas[2], "argent-r3", 3))
	defer argentThree.close()

	etcdClis, err := newEtcdClients(ctx, maxWriters+1, e.etcd.Addr)
	if err != nil {
		return err
	}
	defer closeEtcdClients(etcdClis)
	etcdSys := propSystem{
		name: "etcd",
		pids: []int{e.etcd.PID()},
		put: func(ctx context.Context, w int, key, value []byte) error {
			_, err := etcdClis[w].Put(ctx, string(key), string(value))
			return err
		},
		observers: []propObserver{etcdObserver(etcdClis[maxWriters])},
	}

	rdsP := newRedisClients(e.redisP.Addr, maxWriters)
	defer closeRedisClients(rdsP)
	rdsR := newRedisClient(e.redisR.Addr)
	defer rdsR.Close()
	redisSys := propSystem{
		name: "redis",
		pids: e.redisPIDs(),
		put: func(ctx context.Context, w int, key, value []byte) error {
			return rdsP[w].Set(ctx, string(key), value, 0).Err()
		},
		observers: []propObserver{redisObserver(rdsR)},
	}
	if err := waitRedisSynced(ctx, rdsP[0], rdsR, time.Minute); err != nil {
		return err
	}

	for i, rate := range cfg.propRates {
		for _, sys := range []propSystem{argentOne.propSystem, argentThree.propSystem, etcdSys, redisSys} {
			// Warm up every writer's connection and the path to each observer.
			if _, err := measurePropagation(ctx, sys, fmt.Sprintf("warm%d", i), 100, 200*time.Millisecond, value); err != nil {
				return err
			}
			out, err := measurePropagation(ctx, sys, fmt.Sprintf("r%d", i), rate, cfg.propDuration, value)
			if err != nil {
				return err
			}
			for _, r := range out {
				res.Propagation = append(res.Propagation, r)
				fmt.Fprintf(log, "%-40s %-9s %5.0f/s: seen %d/%d  delay p50 %s  p99 %s  p99.9 %s ms  (write p99 %s ms)  cores: server %.2f client %.2f other %.2f%s\n",
					r.ID, r.System, r.Rate, r.Seen, r.Written, fmtMs(r.Delay.P50), fmtMs(r.Delay.P99), fmtMs(r.Delay.P999), fmtMs(r.Write.P99),
					r.ServerCores, r.ClientCores, r.OtherCores,
					map[bool]string{true: fmt.Sprintf("  ERRORS %d", r.Errors), false: ""}[r.Errors > 0])
			}
		}
	}
	return nil
}

// argentProp is an argent propSystem with the connections it writes on.
type argentProp struct {
	propSystem
	conns []*rawhttp.Conn
}

// argentPropSystem writes at e's root, with writers keep-alive
// connections, and watches with obs.
func argentPropSystem(e *env, writers int, obs propObserver) *argentProp {
	a := &argentProp{conns: make([]*rawhttp.Conn, writers)}
	for i := range a.conns {
		a.conns[i] = rawhttp.New(e.root.Addr)
	}
	a.propSystem = propSystem{
		name: "argent",
		pids: e.argentPIDs(),
		put: func(_ context.Context, w int, key, value []byte) error {
			c := a.conns[w]
			c.SetDeadline(time.Now().Add(10 * time.Second))
			status, _, err := c.Put(key, value)
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
			}
			return err
		},
		observers: []propObserver{obs},
	}
	return a
}

func (a *argentProp) close() {
	for _, c := range a.conns {
		c.Close()
	}
}

// argentObserver holds a watch stream (GET /v1/watch) on node: a write is
// seen when its watch line is decoded, which the node sends after it has
// applied and synced the batch.
func argentObserver(node *benchnode.Proc, label string, hops int) propObserver {
	return propObserver{label: label, hops: hops, start: func(ctx context.Context, prefix string, seen func([]byte, time.Time)) (func(), error) {
		st, err := node.Status(ctx)
		if err != nil {
			return nil, err
		}
		w, err := node.Client.Watch(ctx, []byte(prefix), st.AppliedIndex+1)
		if err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				ev, err := w.Next()
				now := time.Now()
				if err != nil {
					return
				}
				for _, op := range ev.Ops {
					seen(op.Key, now)
				}
			}
		}()
		return func() { _ = w.Close(); <-done }, nil
	}}
}

// etcdObserver holds an etcd watch on the prefix: a write is seen when its
// event arrives.
func etcdObserver(cli *clientv3.Client) propObserver {
	return propObserver{label: "etcd-watch", hops: 1, start: func(ctx context.Context, prefix string, seen func([]byte, time.Time)) (func(), error) {
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		select {
		case first, ok := <-wch:
			if !ok || !first.Created {
				cancel()
				return nil, fmt.Errorf("etcd: watch not created (%v)", first.Err())
			}
		case <-time.After(10 * time.Second):
			cancel()
			return nil, errors.New("etcd: watch not created in 10s")
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for resp := range wch {
				now := time.Now()
				for _, ev := range resp.Events {
					seen(ev.Kv.Key, now)
				}
			}
		}()
		return func() { cancel(); <-done }, nil
	}}
}

// redisObserver subscribes to keyspace notifications at the Redis replica
// (notify-keyspace-events K$, set there only): a replica publishes one
// when it applies a SET from its primary's stream, so a write is seen when
// the replica has applied it, which is what a reader of the replica sees.
func redisObserver(replica *redis.Client) propObserver {
	return propObserver{label: "redis-replica", hops: 1, start: func(ctx context.Context, prefix string, seen func([]byte, time.Time)) (func(), error) {
		if err := replica.ConfigSet(ctx, "notify-keyspace-events", "K$").Err(); err != nil {
			return nil, fmt.Errorf("redis: config set notify-keyspace-events: %w", err)
		}
		const chanPrefix = "__keyspace@0__:"
		ps := replica.PSubscribe(ctx, chanPrefix+prefix+"*")
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("redis: psubscribe: %w", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				msg, err := ps.ReceiveMessage(context.Background())
				now := time.Now()
				if err != nil {
					return
				}
				seen([]byte(strings.TrimPrefix(msg.Channel, chanPrefix)), now)
			}
		}()
		return func() { _ = ps.Close(); <-done }, nil
	}}
}
