package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/redis/go-redis/v9"
)

// Distributions of the point reads.
const (
	distUniform = "uniform"
	distZipf    = "zipf"
)

// phaseWork is what one data set's phase runs.
type phaseWork struct {
	reads  bool // point reads, closed and open loop, both distributions
	resp   bool // redis-benchmark against Redis and argent's RESP port
	mget   bool
	ycsb   bool
	writes bool
}

// phase is the servers and clients of one data set's phase.
type phase struct {
	cfg  config
	ds   *dataset
	env  *env
	res  *results
	log  io.Writer
	etcd []*clientv3.Client
	rdsR []*redis.Client // at the Redis replica
	rdsP []*redis.Client // at the Redis primary
	rdsA []*redis.Client // at the Redis with appendfsync always
	arg  *argentStore

	argent, etcdSer, etcdLin, redis, redisAOF system
	// argentSolo is a root with no replica, set when the phase has writes.
	argentSolo system
	solo       *argentStore
}

// runDataset starts fresh servers, loads ds into each, and runs work.
// Every server is stopped by PID before it returns.
func runDataset(ctx context.Context, cfg config, res *results, dir string, ds *dataset, work phaseWork, log io.Writer) error {
	fmt.Fprintf(log, "== data set %s: starting argent (root + replica), etcd, Redis (primary + replica)\n", ds.name)
	e, err := startEnv(ctx, cfg.bins, filepath.Join(dir, ds.slug), envSpec{depth: 1, resp: work.resp, etcd: true, redis: true, redisAOF: work.writes, soloRoot: work.writes})
	if err != nil {
		return err
	}
	defer e.close(cfg.keep)
	p := &phase{cfg: cfg, ds: ds, env: e, res: res, log: log}
	defer p.closeClients()
	if err := p.load(ctx); err != nil {
		return err
	}
	if err := e.restartEtcd(ctx); err != nil {
		return err
	}
	if err := p.openClients(ctx); err != nil {
		return err
	}
	if work.reads {
		if err := p.pointReads(ctx); err != nil {
			return err
		}
	}
	if work.resp {
		if err := p.respBenchmarks(ctx); err != nil {
			return err
		}
	}
	if work.mget {
		if err := p.mgets(ctx); err != nil {
			return err
		}
	}
	if work.ycsb {
		if err := p.ycsbMixes(ctx); err != nil {
			return err
		}
	}
	if work.writes {
		if err := p.writes(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (p *phase) openClients(ctx context.Context) error {
	n := p.cfg.conns
	p.arg = newArgentStore(p.env.root.Addr, p.env.replicas[0].Addr, n)
	var err error
	if p.etcd, err = newEtcdClients(ctx, n, p.env.etcd.Addr); err != nil {
		return err
	}
	p.rdsR = newRedisClients(p.env.redisR.Addr, n)
	p.rdsP = newRedisClients(p.env.redisP.Addr, n)
	p.argent = system{name: "argent", st: p.arg, pids: p.env.argentPIDs()}
	p.etcdSer = system{name: "etcd-ser", st: &etcdStore{clis: p.etcd, serializable: true}, pids: []int{p.env.etcd.PID()}}
	p.etcdLin = system{name: "etcd-lin", st: &etcdStore{clis: p.etcd}, pids: []int{p.env.etcd.PID()}}
	p.redis = system{name: "redis", st: &redisStore{read: p.rdsR, write: p.rdsP}, pids: p.env.redisPIDs()}
	if p.env.redisAOF != nil {
		p.rdsA = newRedisClients(p.env.redisAOF.Addr, n)
		p.redisAOF = system{name: "redis-aof", st: &redisStore{write: p.rdsA}, pids: []int{p.env.redisAOF.PID()}}
	}
	if p.env.solo != nil {
		p.solo = newArgentStore(p.env.solo.Addr, p.env.solo.Addr, n)
		p.argentSolo = system{name: "argent-solo", st: p.solo, pids: []int{p.env.solo.PID()}}
	}
	return nil
}

func (p *phase) closeClients() {
	if p.arg != nil {
		p.arg.close()
	}
	if p.solo != nil {
		p.solo.close()
	}
	closeEtcdClients(p.etcd)
	closeRedisClients(p.rdsR)
	closeRedisClients(p.rdsP)
	closeRedisClients(p.rdsA)
}

// load writes the data set into every system, and for redis-benchmark its
// key space (key:%012d, same count and values) into argent and Redis, with
// clients of its own.
func (p *phase) load(ctx context.Context) error {
	ds := p.ds
	step := func(system, what string, f func() error) error {
		return loadStep(p.res, p.log, ds, system, what, f)
	}
	reps := p.env.replicas
	etcd, err := newEtcdClients(ctx, 8, p.env.etcd.Addr)
	if err != nil {
		return err
	}
	defer closeEtcdClients(etcd)
	rdsP, rdsR := newRedisClient(p.env.redisP.Addr), newRedisClient(p.env.redisR.Addr)
	defer rdsP.Close()
	defer rdsR.Close()
	if err := step("argent", ds.name, func() error { return loadArgent(ctx, p.env.root, reps, ds.keys, keyString, ds.pool.of) }); err != nil {
		return err
	}
	if solo := p.env.solo; solo != nil {
		if err := step("argent-solo", ds.name, func() error { return loadArgent(ctx, solo, nil, ds.keys, keyString, ds.pool.of) }); err != nil {
			return err
		}
	}
	if err := step("etcd", ds.name, func() error { return loadEtcd(ctx, etcd, ds.keys, keyString, ds.pool.of) }); err != nil {
		return err
	}
	if err := step("redis", ds.name, func() error { return loadRedis(ctx, rdsP, rdsR, ds.keys, keyString, ds.pool.of) }); err != nil {
		return err
	}
	if p.env.respAddr == "" {
		return nil
	}
	what := "redis-benchmark keys"
	if err := step("argent", what, func() error { return loadArgent(ctx, p.env.root, reps, ds.keys, respKeyName, ds.pool.of) }); err != nil {
		return err
	}
	return step("redis", what, func() error { return loadRedis(ctx, rdsP, rdsR, ds.keys, respKeyName, ds.pool.of) })
}

// loadStep runs f, which loads what (ds's keys) into system, and records
// how long it took.
func loadStep(res *results, log io.Writer, ds *dataset, system, what string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("load %s into %s: %w", what, system, err)
	}
	took := time.Since(start)
	res.Loads = append(res.Loads, loadResult{Dataset: ds.slug, System: system, What: what, Keys: ds.keys, Seconds: took.Seconds()})
	fmt.Fprintf(log, "load %s into %s: %v (%.0f keys/s)\n", what, system, took.Round(time.Millisecond), float64(ds.keys)/took.Seconds())
	return nil
}

// report records r and prints its line.
func (p *phase) report(r *runResult) {
	p.res.Runs = append(p.res.Runs, r)
	fmt.Fprintln(p.log, r.line())
}

// pointReads runs, for each distribution, a closed loop at every system
// for its throughput, then an open loop at one rate for all (a share of the
// slowest closed-loop rate) for latency.
func (p *phase) pointReads(ctx context.Context) error {
	systems := []system{p.argent, p.etcdSer, p.etcdLin, p.redis}
	uniform := uniformKeys{n: p.ds.keys}
	if p.cfg.warmup > 0 {
		warm := p.cfg
		warm.duration = p.cfg.warmup
		for _, s := range systems {
			if _, err := runOn(ctx, warm, s, "warmup/"+p.ds.slug+"/"+s.name, p.cfg.conns, 0, nil, 0, p.readWorker(s, uniform)); err != nil {
				return err
			}
		}
	}
	for _, dist := range []string{distUniform, distZipf} {
		var keys keyChooser = uniform
		if dist == distZipf {
			keys = zipfKeys{z: p.ds.zipf}
		}
		closed, err := p.measure(ctx, systems, comparison{
			id:        func(s system) string { return readID(p.ds, dist, "closed", s.name) },
			workers:   p.cfg.conns,
			newWorker: func(s system) func(int, *mrand.Rand) worker { return p.readWorker(s, keys) },
		})
		if err != nil {
			return err
		}
		slowest := 0.0
		for _, r := range closed {
			if slowest == 0 || r.OpsPerSec < slowest {
				slowest = r.OpsPerSec
			}
		}
		rate := openRate(slowest, p.cfg.openShare)
		if rate <= 0 {
			return errors.New("point reads: no system answered a read")
		}
		p.res.OpenRates[p.ds.slug+"/"+dist] = rate
		fmt.Fprintf(p.log, "open loop at %.0f reads/s (%.0f%% of the slowest closed loop, %.0f/s)\n", rate, 100*p.cfg.openShare, slowest)
		if _, err := p.measure(ctx, systems, comparison{
			id:        func(s system) string { return readID(p.ds, dist, "open", s.name) },
			workers:   p.cfg.conns,
			rate:      rate,
			newWorker: func(s system) func(int, *mrand.Rand) worker { return p.readWorker(s, keys) },
		}); err != nil {
			return err
		}
	}
	return nil
}

// measure runs c on systems in interleaved rounds and reports the
// combined result of each.
func (p *phase) measure(ctx context.Context, systems []system, c comparison) ([]*runResult, error) {
	out, err := measure(ctx, p.cfg, systems, c)
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		p.report(r)
	}
	return out, nil
}

// openRate is share of the slowest closed-loop rate, rounded down to two
// significant digits so that the tables show a round number.
func openRate(slowest, share float64) float64 {
	r := slowest * share
	if r < 100 {
		return float64(int(r))
	}
	scale := 1.0
	for r/scale >= 100 {
		scale *= 10
	}
	return float64(int(r/scale)) * scale
}

func readID(ds *dataset, dist, loop, sys string) string {
	return "reads/" + ds.slug + "/" + dist + "/" + loop + "/" + sys
}

func (p *phase) readWorker(s system, keys keyChooser) func(int, *mrand.Rand) worker {
	return func(conn int, r *mrand.Rand) worker {
		return &readWorker{st: s.st, conn: conn, r: r, keys: keys}
	}
}

// mgets runs closed loops of multi-key reads of cfg.mgetKeys uniformly
// chosen keys: argent POST /v1/mget at the replica, etcd a serializable
// Txn of Gets, Redis MGET at the replica.
func (p *phase) mgets(ctx context.Context) error {
	_, err := p.measure(ctx, []system{p.argent, p.etcdSer, p.redis}, comparison{
		id:        func(s system) string { return "mget/" + p.ds.slug + "/" + s.name },
		workers:   p.cfg.conns,
		keysPerOp: p.cfg.mgetKeys,
		newWorker: func(s system) func(int, *mrand.Rand) worker {
			return func(conn int, r *mrand.Rand) worker { return newMGetWorker(s.st, conn, r, p.ds.keys, p.cfg.mgetKeys) }
		},
	})
	return err
}

// ycsbMixes runs mixes B and D, closed loop: reads at the replica (etcd:
// serializable), writes at the root or primary.
func (p *phase) ycsbMixes(ctx context.Context) error {
	for _, mix := range []string{ycsbB, ycsbD} {
		kinds := []string{"read", "update"}
		if mix == ycsbD {
			kinds = []string{"read", "insert"}
		}
		_, err := p.measure(ctx, []system{p.argent, p.etcdSer, p.redis}, comparison{
			id:      func(s system) string { return "ycsb-" + mix + "/" + p.ds.slug + "/" + s.name },
			workers: p.cfg.conns,
			kinds:   kinds,
			newWorker: func(s system) func(int, *mrand.Rand) worker {
				shared := newYCSBState(p.ds.keys)
				return func(conn int, r *mrand.Rand) worker { return newYCSBWorker(s.st, conn, r, mix, p.ds, shared) }
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// writes runs closed loops of overwrites of existing keys with 1 and with
// cfg.conns writers: argent PUT at the root and etcd Put (both fsynced
// before the answer), Redis SET at the primary without persistence (a
// reference, not durable) and at a Redis with appendfsync always. argent
// runs twice: at the root whose replica serves the reads (the replica's
// apply shares the two cores), and at a root with no children, which is
// how the one etcd member takes writes.
func (p *phase) writes(ctx context.Context) error {
	etcd := system{name: "etcd", st: p.etcdSer.st, pids: p.etcdSer.pids}
	for _, n := range p.cfg.writers {
		_, err := p.measure(ctx, []system{p.argent, p.argentSolo, etcd, p.redis, p.redisAOF}, comparison{
			id:      func(s system) string { return fmt.Sprintf("writes/%s/w%d/%s", p.ds.slug, n, s.name) },
			workers: n,
			newWorker: func(s system) func(int, *mrand.Rand) worker {
				return func(conn int, r *mrand.Rand) worker {
					return &writeWorker{st: s.st, conn: conn, r: r, n: p.ds.keys, pool: p.ds.pool}
				}
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}
