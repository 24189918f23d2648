// Command compare runs argent, etcd and Redis side by side on this machine
// and prints how argent's figures compare, as ratios.
//
//	cd bench                       # the benchmarks' own module
//	go run ./compare               # the whole suite, about 15 minutes (make bench)
//	go run ./compare -quick        # a smoke run of about two minutes
//	go run ./compare -workloads reads,writes -duration 10s
//	go run ./compare -workloads group -docs '' -pprof /tmp/prof  # three-member groups, with CPU profiles
//
// It starts every server itself on 127.0.0.1 with free ports and its own
// temporary directories: an argent root and replica (built from this tree
// with go build ./cmd/argent), one etcd member (etcd, from Debian's
// etcd-server) and a Redis primary with a replica (redis-server, with RDB
// and AOF off), plus, for the write runs, a Redis with appendfsync always
// and a second argent root with no replica. The durable SETs run on an
// argent root of their own with no children and --resp-listen, and a
// Redis of their own with appendfsync always. The propagation runs use a
// root with one replica (one hop) and a chain root -> r1 -> r2 -> r3
// (three hops). Each data set
// gets fresh servers; every server is stopped by PID when its phase ends,
// also after an error or SIGINT (and Linux kills them if this program dies).
//
// Workloads, each on a data set of -keys keys of 16-64 bytes with values of
// each of -values bytes: point reads (uniform and Zipf, closed loop for
// throughput and open loop at one rate for latency), redis-benchmark
// against Redis and argent's RESP port, multi-key reads, YCSB-style mixes B
// and D, durable writes with 1 and -conns writers, and write-to-replica
// propagation at each of -prop-rates; point reads also on -big-keys keys.
// The group workload writes with -conns writers at a three-member argent
// root group (writers spread over the members, and all at the leader), a
// three-member etcd and a single argent root, -group-duration each, on
// -keys keys of the first of -values; with -pprof it also saves CPU
// profiles of the argent nodes under each argent set-up's load.
// The durable workload runs redis-benchmark -t set -d 256 -r 100000 with
// -conns clients against a root alone and Redis with appendfsync always;
// its aims table ("Durable writes: aims") also draws on the writes, the
// loads of the data sets and the propagation runs, when they ran.
// The results go to stdout as markdown ratio tables, to the section of
// -docs between the compare markers, and as JSON to -results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/mdsection"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 2
	}
	// The clients barely allocate per request; keep the collector out of
	// the way of what they do.
	debug.SetGCPercent(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := compare(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 1
	}
	var md strings.Builder
	writeMarkdown(&md, res)
	fmt.Fprint(stdout, md.String())
	if cfg.results != "" {
		path, err := res.writeJSON(cfg.results)
		if err != nil {
			fmt.Fprintf(stderr, "compare: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "compare: wrote %s\n", path)
	}
	if cfg.docs != "" {
		if err := mdsection.UpdateFile(cfg.docs, markBegin, markEnd, md.String()); err != nil {
			fmt.Fprintf(stderr, "compare: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "compare: updated the generated section of %s\n", cfg.docs)
	}
	return 0
}

// compare runs every configured workload and returns the results.
func compare(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	if err := findBins(&cfg.bins, cfg.workloads[wlRESP] || cfg.workloads[wlDurable]); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(cfg.tmpdir, "argent-compare.")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	if cfg.keep {
		defer fmt.Fprintf(log, "compare: kept %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	tree := ""
	switch {
	case cfg.buildRev != "":
		fmt.Fprintf(log, "compare: go build ./cmd/argent at %s\n", cfg.buildRev)
		if cfg.bins.argent, tree, err = buildAtRev(ctx, cfg.buildRev, tmp); err != nil {
			return nil, err
		}
	case cfg.bins.argent == "":
		fmt.Fprintln(log, "compare: go build ./cmd/argent")
		if cfg.bins.argent, err = benchnode.BuildArgent(ctx, tmp); err != nil {
			return nil, err
		}
	}
	res := &results{
		Started:   time.Now().UTC(),
		Command:   cfg.command,
		Machine:   describeMachine(ctx, cfg.bins),
		Settings:  settingsOf(cfg),
		OpenRates: map[string]float64{},
	}
	if tree != "" {
		res.Machine.Tree = tree
	}
	fmt.Fprintf(log, "compare: %d CPUs (%s), %s; %s; %s; load %s\n", res.Machine.NProc, res.Machine.CPUModel, res.Machine.Go,
		res.Machine.Etcd, res.Machine.RedisServer, res.Machine.LoadStart)

	w := cfg.workloads
	for _, v := range cfg.values {
		work := phaseWork{reads: w[wlReads], resp: w[wlRESP] && v == cfg.values[0], mget: w[wlMGet], ycsb: w[wlYCSB], writes: w[wlWrites]}
		if !work.reads && !work.resp && !work.mget && !work.ycsb && !work.writes {
			break
		}
		ds := newDataset(cfg.keys, v, cfg.theta, cfg.seed)
		res.Datasets = append(res.Datasets, datasetInfo{Slug: ds.slug, Name: ds.name, Keys: ds.keys, Value: ds.value})
		if err := runDataset(ctx, cfg, res, tmp, ds, work, log); err != nil {
			return nil, fmt.Errorf("data set %s: %w", ds.name, err)
		}
	}
	if w[wlDurable] {
		if err := runDurable(ctx, cfg, res, tmp, log); err != nil {
			return nil, fmt.Errorf("durable SETs: %w", err)
		}
	}
	if w[wlBig] {
		ds := newDataset(cfg.bigKeys, cfg.values[0], cfg.theta, cfg.seed)
		res.Datasets = append(res.Datasets, datasetInfo{Slug: ds.slug, Name: ds.name, Keys: ds.keys, Value: ds.value})
		if err := runDataset(ctx, cfg, res, tmp, ds, phaseWork{reads: true}, log); err != nil {
			return nil, fmt.Errorf("data set %s: %w", ds.name, err)
		}
	}
	if w[wlPropagate] {
		if err := runPropagation(ctx, cfg, res, tmp, log); err != nil {
			return nil, fmt.Errorf("propagation: %w", err)
		}
	}
	if w[wlGroup] {
		if err := runGroup(ctx, cfg, res, tmp, log); err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
	}
	res.Finished = time.Now().UTC()
	res.WallSeconds = res.Finished.Sub(res.Started).Seconds()
	res.Machine.LoadEnd = benchnode.Loadavg()
	res.Problems = res.problems()
	res.Tables = buildTables(res)
	res.Targets = buildTargets(res)
	res.DurableTargets = buildDurableTargets(res)
	res.GroupTargets = buildGroupTargets(res)
	return res, nil
}

// findBins resolves the peers' programs on $PATH, with a hint when one is
// missing.
func findBins(b *bins, needBenchmark bool) error {
	for _, p := range []*string{&b.etcd, &b.redisServer, &b.redisBenchmark} {
		if p == &b.redisBenchmark && !needBenchmark {
			continue
		}
		path, err := exec.LookPath(*p)
		if err != nil {
			return fmt.Errorf("%s not found (%w); bench/run.sh installs it: apt-get install -y redis-server redis-tools etcd-server", *p, err)
		}
		*p = path
	}
	return nil
}
