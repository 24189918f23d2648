package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// config is the parsed command line.
type config struct {
	duration      time.Duration // of every measured run but propagation
	propDuration  time.Duration // of every propagation run
	groupDuration time.Duration // of every run of the group workload
	warmup        time.Duration // untimed reads before a data set's first read runs
	rounds        int           // interleaved rounds that share each run's duration
	conns         int           // connections (workers) of reads, mget and YCSB, and of the larger write run
	keys          int           // keys of the 100k data sets
	bigKeys       int           // keys of the large read data set
	values        []int         // value sizes of the data sets of keys keys
	theta         float64       // Zipf exponent
	openShare     float64       // open-loop rate as a share of the slowest closed-loop rate
	mgetKeys      int           // keys per mget
	writers       []int         // writer counts of the write runs
	propRates     []float64     // batches per second of the propagation runs
	workloads     map[string]bool
	quick         bool
	timeout       time.Duration // how long a request may run past the end of its run
	seed          uint64
	keep          bool   // keep the servers' data directories
	tmpdir        string // parent of the temporary directory
	bins          bins
	buildRev      string // build argent from this git revision instead of the working tree
	docs          string // markdown file whose generated section is replaced; "" for none
	results       string // directory of the JSON results; "" for none
	command       string // the command line, for the report
	pprofDir      string // save CPU profiles of the group workload's argent nodes here; "" for none
	pprofSeconds  int    // length of those profiles
}

// The workloads, for -workloads.
const (
	wlReads     = "reads"     // point reads, closed and open loop
	wlRESP      = "resp"      // redis-benchmark against Redis and argent's RESP port
	wlMGet      = "mget"      // multi-key reads
	wlYCSB      = "ycsb"      // mixes B and D
	wlWrites    = "writes"    // durable writes at the root
	wlDurable   = "durable"   // redis-benchmark SET against a root alone and Redis with appendfsync always
	wlBig       = "big"       // point reads on the large data set
	wlPropagate = "propagate" // write-to-replica propagation
	wlGroup     = "group"     // writes at a three-member argent root group and a three-member etcd
)

var allWorkloads = []string{wlReads, wlRESP, wlMGet, wlYCSB, wlWrites, wlDurable, wlBig, wlPropagate, wlGroup}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each measured run (reads, writes, mget, YCSB, redis-benchmark)")
	fs.DurationVar(&c.propDuration, "prop-duration", 15*time.Second, "length of each propagation run")
	fs.DurationVar(&c.groupDuration, "group-duration", 10*time.Second, "length of each run of the group workload (writes at three-member groups)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "untimed reads at each system before a data set's first read runs")
	fs.IntVar(&c.rounds, "rounds", 3, "split each run into this many rounds, interleaved with the other systems' rounds, so that bursts of other jobs fall on all alike")
	fs.IntVar(&c.conns, "conns", 50, "connections of the read, mget and YCSB runs, and writers of the larger write run")
	fs.IntVar(&c.keys, "keys", 100_000, "keys of the data sets of every workload")
	fs.IntVar(&c.bigKeys, "big-keys", 1_000_000, "keys of the large data set of the point-read runs (256 B values)")
	values := fs.String("values", "256,4096", "value sizes in bytes, comma-separated: one data set of -keys keys each")
	fs.Float64Var(&c.theta, "zipf", 0.99, "Zipf exponent theta of the skewed runs (YCSB's zipfian: 0 < theta < 1)")
	fs.Float64Var(&c.openShare, "open-share", 0.5, "open-loop rate, as a share of the slowest system's closed-loop rate in the same row")
	fs.IntVar(&c.mgetKeys, "mget-keys", 100, "keys per multi-key read (etcd: at most 128 ops per txn)")
	writers := fs.String("writers", "", "writer counts of the write runs, comma-separated (default 1 and -conns)")
	rates := fs.String("prop-rates", "100,1000", "batches per second of the propagation runs, comma-separated")
	workloads := fs.String("workloads", strings.Join(allWorkloads, ","), "workloads to run, comma-separated")
	fs.BoolVar(&c.quick, "quick", false, "smoke run of about two minutes: 1 s runs, 3 s propagation, 2 s group runs, 20,000 and 50,000 keys")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long a request may take past the end of its run")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed of keys, values and request mixes")
	fs.BoolVar(&c.keep, "keep", false, "keep the servers' data directories and logs")
	fs.StringVar(&c.tmpdir, "tmpdir", "", "parent of the temporary directory (default $TMPDIR or /tmp)")
	fs.StringVar(&c.bins.argent, "argent", "", "argent binary (default: go build ./cmd/argent into the temporary directory)")
	fs.StringVar(&c.buildRev, "build-rev", "", "build argent from this git revision (e.g. HEAD: the last commit, without uncommitted changes) in a temporary git worktree, instead of from the working tree")
	fs.StringVar(&c.bins.etcd, "etcd", "etcd", "etcd server binary")
	fs.StringVar(&c.bins.redisServer, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&c.bins.redisBenchmark, "redis-benchmark", "redis-benchmark", "redis-benchmark binary")
	fs.StringVar(&c.docs, "docs", benchnode.RepoPath("docs/benchmarks.md"), "markdown file whose section between "+markBegin+" and "+markEnd+" is replaced by the results (empty: none)")
	fs.StringVar(&c.results, "results", benchnode.RepoPath("bench/results"), "directory for compare-DATE.json and compare-latest.json (empty: none)")
	fs.StringVar(&c.pprofDir, "pprof", "", "group workload: start the argent nodes with --pprof and, after the measured runs, save a CPU profile of each under each argent set-up's load in this directory")
	fs.IntVar(&c.pprofSeconds, "pprof-seconds", 10, "length of the -pprof profiles")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		quickDefaults(&c, set)
	}
	var err error
	if c.values, err = parseInts(*values); err != nil {
		return c, fmt.Errorf("-values: %w", err)
	}
	if *writers == "" {
		c.writers = []int{1, c.conns}
	} else if c.writers, err = parseInts(*writers); err != nil {
		return c, fmt.Errorf("-writers: %w", err)
	}
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return c, fmt.Errorf("-prop-rates: %w", err)
		}
		c.propRates = append(c.propRates, r)
	}
	c.workloads = map[string]bool{}
	for _, w := range strings.Split(*workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			c.workloads[w] = true
		}
	}
	c.command = commandLine(args)
	return c, c.validate()
}

// quickDefaults shrinks every size the command line did not set, for a
// smoke run that checks the whole path in about two minutes.
func quickDefaults(c *config, set map[string]bool) {
	if !set["duration"] {
		c.duration = time.Second
	}
	if !set["prop-duration"] {
		c.propDuration = 3 * time.Second
	}
	if !set["group-duration"] {
		c.groupDuration = 2 * time.Second
	}
	if !set["warmup"] {
		c.warmup = 200 * time.Millisecond
	}
	if !set["keys"] {
		c.keys = 20_000
	}
	if !set["big-keys"] {
		c.bigKeys = 50_000
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func (c *config) validate() error {
	switch {
	case c.duration <= 0 || c.propDuration <= 0 || c.groupDuration <= 0 || c.warmup < 0 || c.timeout <= 0:
		return errors.New("-duration, -prop-duration, -group-duration and -timeout must be > 0, -warmup >= 0")
	case c.pprofSeconds < 1:
		return fmt.Errorf("-pprof-seconds %d: want >= 1", c.pprofSeconds)
	case c.buildRev != "" && c.bins.argent != "":
		return errors.New("-build-rev and -argent: give one")
	case c.rounds < 1 || c.rounds > 20:
		return fmt.Errorf("-rounds %d: want 1..20", c.rounds)
	case c.conns < 1 || c.conns > 1000:
		return fmt.Errorf("-conns %d: want 1..1000", c.conns)
	case c.keys < 2 || c.keys >= maxKeyID/2 || c.bigKeys < 2 || c.bigKeys >= maxKeyID/2:
		return fmt.Errorf("-keys %d, -big-keys %d: want 2..%d", c.keys, c.bigKeys, maxKeyID/2-1)
	case c.theta <= 0 || c.theta >= 1:
		return fmt.Errorf("-zipf %v: want 0 < theta < 1", c.theta)
	case c.openShare <= 0 || c.openShare > 1:
		return fmt.Errorf("-open-share %v: want (0, 1]", c.openShare)
	case c.mgetKeys < 1 || c.mgetKeys > etcdMaxTxnOps:
		return fmt.Errorf("-mget-keys %d: want 1..%d (etcd's --max-txn-ops)", c.mgetKeys, etcdMaxTxnOps)
	}
	for _, v := range c.values {
		if v < 1 || v > 1<<20 {
			return fmt.Errorf("-values: %d: want 1..1MiB", v)
		}
	}
	for _, w := range c.writers {
		if w < 1 || w > c.conns {
			return fmt.Errorf("-writers: %d: want 1..-conns (%d)", w, c.conns)
		}
	}
	for _, r := range c.propRates {
		if r <= 0 || r > 20_000 {
			return fmt.Errorf("-prop-rates: %v: want (0, 20000]", r)
		}
	}
	known := map[string]bool{}
	for _, w := range allWorkloads {
		known[w] = true
	}
	for w := range c.workloads {
		if !known[w] {
			return fmt.Errorf("-workloads: %q: want some of %s", w, strings.Join(allWorkloads, ","))
		}
	}
	return nil
}

// commandLine is the command as a shell at the repository root would take
// it back: cd bench && go run ./compare and args, each quoted when it needs
// to be.
func commandLine(args []string) string {
	parts := []string{"cd", "bench", "&&", "go", "run", "./compare"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
