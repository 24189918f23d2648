package main

import (
	"context"
	"fmt"
	"time"
)

// rbPipelines are the pipeline depths of the redis-benchmark runs: none,
// and 16 requests in flight per connection.
var rbPipelines = []int{1, 16}

// respBenchmarks runs redis-benchmark with the same flags against the
// Redis replica and against the argent replica's RESP port: GET, and MGET
// of cfg.mgetKeys keys, each without and with pipelining, on the key space
// key:000000000000.. that both hold. The Redis replica is the peer because
// argent's RESP port is on a replica too.
func (p *phase) respBenchmarks(ctx context.Context) error {
	if err := p.checkRESP(ctx); err != nil {
		return err
	}
	targets := []struct {
		name string
		addr string
		pids []int
	}{
		{"redis", p.env.redisR.Addr, []int{p.env.redisR.PID()}},
		{"argent", p.env.respAddr, []int{p.env.replicas[0].PID()}},
	}
	for _, cmd := range []rbCommand{{name: "get", keys: 1}, {name: "mget", keys: p.cfg.mgetKeys}} {
		for _, pl := range rbPipelines {
			for _, t := range targets {
				port, err := redisPort(t.addr)
				if err != nil {
					return err
				}
				r, err := calibrated(ctx, p.cfg.bins.redisBenchmark, cmd, port, p.cfg.conns, pl, p.ds.keys, p.cfg.duration, t.pids)
				if err != nil {
					return fmt.Errorf("redis-benchmark %s -P %d at %s: %w", cmd.name, pl, t.name, err)
				}
				r.ID, r.Target = rbID(cmd.name, pl, t.name), t.name
				p.res.RedisBenchmark = append(p.res.RedisBenchmark, r)
				fmt.Fprintf(p.log, "%-40s %-9s %8.0f req/s  p50 %s  p99 %s ms  server %.2f cores%s\n",
					r.ID, t.name, r.RPS, fmtMs(r.P50), fmtMs(r.P99), r.ServerCores, errNote(r.ServerErrors))
			}
		}
	}
	return nil
}

func rbID(cmd string, pipeline int, target string) string {
	return fmt.Sprintf("redis-benchmark/%s/P%d/%s", cmd, pipeline, target)
}

func errNote(s string) string {
	if s == "" {
		return ""
	}
	return "  ERRORS: " + s
}

// checkRESP reads two keys of redis-benchmark's key space through argent's
// RESP port with GET and MGET, so that a port answering errors or empty
// values (which redis-benchmark would count as fast answers) stops the run.
func (p *phase) checkRESP(ctx context.Context) error {
	c := newRedisClient(p.env.respAddr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	k0, k1 := respKeyName(0), respKeyName(p.ds.keys-1)
	v, err := c.Get(ctx, k0).Bytes()
	if err != nil || len(v) != p.ds.value {
		return fmt.Errorf("argent RESP GET %s: %d bytes, %v; want %d bytes", k0, len(v), err, p.ds.value)
	}
	vals, err := c.MGet(ctx, k0, k1).Result()
	if err != nil || len(vals) != 2 || vals[1] == nil {
		return fmt.Errorf("argent RESP MGET %s %s: %v, %v", k0, k1, vals, err)
	}
	return nil
}
