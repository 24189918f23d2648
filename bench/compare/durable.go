package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// The durable SETs: one redis-benchmark command, the same against both.
const (
	durableSetValue = 256     // bytes per value (-d)
	durableSetKeys  = 100_000 // key space (-r): key:000000000000 and up
)

// durableSetCmd is redis-benchmark -t set -d durableSetValue.
var durableSetCmd = rbCommand{name: "set", keys: 1, value: durableSetValue}

// Targets of the durable SETs, as rbResult.Target and in run IDs.
const (
	rbArgentRoot = "argent-root" // RESP port of an argent root with no children
	rbRedisAOF   = "redis-aof"   // a standalone Redis with appendfsync always
)

// runDurable starts an argent root with no children that also serves the
// Redis protocol (--resp-listen) and a standalone Redis with appendonly yes
// and appendfsync always, and runs the same redis-benchmark SET against
// both, without and with pipelining: both answer a SET once it is fsynced.
// Neither holds data before; the SETs create and overwrite keys of a key
// space of durableSetKeys.
func runDurable(ctx context.Context, cfg config, res *results, dir string, log io.Writer) error {
	fmt.Fprintln(log, "== durable SETs: starting an argent root with --resp-listen (no children), Redis (appendonly yes, appendfsync always)")
	e, err := startEnv(ctx, cfg.bins, filepath.Join(dir, "durable"), envSpec{rootRESP: true, redisAOF: true})
	if err != nil {
		return err
	}
	defer e.close(cfg.keep)
	if err := checkRESPSet(ctx, e.rootRESP); err != nil {
		return err
	}
	targets := []struct {
		name string
		addr string
		pids []int
	}{
		{rbArgentRoot, e.rootRESP, []int{e.root.PID()}},
		{rbRedisAOF, e.redisAOF.Addr, []int{e.redisAOF.PID()}},
	}
	for _, pl := range rbPipelines {
		for _, t := range targets {
			port, err := redisPort(t.addr)
			if err != nil {
				return err
			}
			r, err := calibrated(ctx, cfg.bins.redisBenchmark, durableSetCmd, port, cfg.conns, pl, durableSetKeys, cfg.duration, t.pids)
			if err != nil {
				return fmt.Errorf("redis-benchmark set -P %d at %s: %w", pl, t.name, err)
			}
			r.ID, r.Target = rbID(durableSetCmd.name, pl, t.name), t.name
			res.RedisBenchmark = append(res.RedisBenchmark, r)
			fmt.Fprintf(log, "%-40s %-11s %8.0f req/s  p50 %s  p99 %s ms  server %.2f cores%s\n",
				r.ID, t.name, r.RPS, fmtMs(r.P50), fmtMs(r.P99), r.ServerCores, errNote(r.ServerErrors))
		}
	}
	return nil
}

// checkRESPSet writes a key of redis-benchmark's key space through the
// RESP port at addr and reads it back, so that a port answering errors
// (which redis-benchmark would count as fast answers) stops the run.
func checkRESPSet(ctx context.Context, addr string) error {
	c := newRedisClient(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	k, v := respKeyName(0), bytes.Repeat([]byte("x"), durableSetValue)
	if err := c.Set(ctx, k, v, 0).Err(); err != nil {
		return fmt.Errorf("argent root RESP SET %s: %w", k, err)
	}
	got, err := c.Get(ctx, k).Bytes()
	if err != nil || !bytes.Equal(got, v) {
		return fmt.Errorf("argent root RESP GET %s after SET: %d bytes, %v; want %d bytes", k, len(got), err, len(v))
	}
	return nil
}
