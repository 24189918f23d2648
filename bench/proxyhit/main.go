// Command proxyhit measures an argent proxy: the hit rate of its
// persistent cache (proxycache) on Zipf traces next to the best hit rate any
// cache of the same size could get, the read latency of a running proxy
// for hits, misses and negative lookups, and its bytes on disk next to a
// replica's.
//
//	cd bench                     # the benchmarks' own module
//	go run ./proxyhit            # the whole benchmark, about 2-3 minutes
//	go run ./proxyhit -quick     # a smoke run of well under a minute
//	go run ./proxyhit -live=false -reads 5000000
//
// Hit rate. It draws a trace of -reads reads over -keys keys (Zipf -theta,
// ranks scattered over the keys by a random permutation), and a second
// trace whose hot set shifts (-shift), and replays each at each of -budgets
// (fractions of the data set's weight as the cache weighs it: key + value +
// the cache's per-entry overhead) against a real proxycache.Cache opened in
// a temporary directory, as the proxy drives it: Get, and on a miss Admit
// the key's entry at the cache's applied index. The same trace also goes
// through otter alone (the W-TinyLFU policy without Pebble), LRU, and the
// offline optimum: Belady's MIN with bypass, exact for equal weights
// (-values fixed, the default), a labelled heuristic for unequal ones.
//
// Latency and disk. It builds ./cmd/argent and starts a root, a replica
// following it and a proxy following the replica (each on a free 127.0.0.1
// port with its own temporary data directory; all stopped by PID at the
// end, also on an error or SIGINT), fills -live-keys keys through the root,
// waits until the proxy has applied them and answers absent keys from its
// filter, reads -hot keys twice, then reads in a closed loop taking three
// classes in turn: hits (the hot keys; Argent-Tier cache), misses (keys
// never read; replica) and negative lookups (keys never written; filter).
// After the run it sums the sizes of the files in each node's data
// directory.
//
// The results go to stdout as markdown, to the section of -docs between
// the proxyhit markers, and as JSON to -results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/cachetrace"
	"github.com/argent-kv/argent/bench/internal/publish"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	keys      int
	valueDist string
	value     int
	reads     int
	theta     float64
	budgets   []float64
	shift     int // keys; 0: no shifting trace
	phases    int
	seed      uint64
	sim, live bool

	liveKeys    int
	liveValue   int
	proxyCache  float64 // --cache-size as a fraction of the data set
	windowBytes string
	hot         int
	count       int
	duration    time.Duration
	conns       int
	filterWait  time.Duration
	bin         string
	keep        bool

	docs, results string
	quick         bool
	command       string
	cpuprofile    string
	simDir        string

	overhead int64 // the cache's per-entry overhead, measured at start
}

// traces returns the traces to replay.
func (c config) traces() []traceSpec {
	out := []traceSpec{{Name: "zipf", Theta: c.theta, Reads: c.reads, Phases: 1, Seed: c.seed}}
	if c.shift > 0 {
		out = append(out, traceSpec{Name: "zipf-shift", Theta: c.theta, Reads: c.reads, Phases: c.phases, Shift: c.shift, Seed: c.seed + 1})
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("proxyhit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.keys, "keys", 100_000, "keys in the simulated data set")
	fs.StringVar(&c.valueDist, "values", "fixed", "value sizes of the simulated data set: fixed (-value bytes each) or lognormal (median -value, sigma 1)")
	fs.IntVar(&c.value, "value", 256, "value size in bytes (the median for -values lognormal)")
	fs.IntVar(&c.reads, "reads", 2_000_000, "reads per trace")
	fs.Float64Var(&c.theta, "theta", 0.99, "Zipf exponent of the traces")
	budgets := fs.String("budgets", "0.01,0.10,0.20", "cache budgets, as fractions of the data set's weight")
	fs.IntVar(&c.shift, "shift", -1, "ranks the hot set moves by at each phase of the second trace (0: no such trace; default 1% of -keys)")
	fs.IntVar(&c.phases, "phases", 10, "phases of the shifting trace")
	seed := fs.Uint64("seed", 1, "random seed of the traces and values")
	fs.BoolVar(&c.sim, "sim", true, "replay the traces (hit rates)")
	fs.BoolVar(&c.live, "live", true, "run the processes (latency and disk)")
	fs.IntVar(&c.liveKeys, "live-keys", 100_000, "keys written to the running nodes")
	fs.IntVar(&c.liveValue, "live-value", 256, "value size of the running nodes' keys")
	fs.Float64Var(&c.proxyCache, "proxy-cache", 0.10, "the proxy's --cache-size, as a fraction of the data set's weight")
	fs.StringVar(&c.windowBytes, "window-bytes", "64KiB", "the proxy's --window-bytes (small, so that hits come from the cache)")
	fs.IntVar(&c.hot, "hot", 1000, "keys read before measuring, then read as hits")
	fs.IntVar(&c.count, "count", 20_000, "reads per class at the running proxy")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "bound on the latency measurement")
	fs.IntVar(&c.conns, "conns", 1, "connections reading at once (closed loop)")
	fs.DurationVar(&c.filterWait, "filter-wait", 60*time.Second, "how long to wait for the proxy's filter")
	fs.StringVar(&c.bin, "bin", "", "argent binary to run (default: go build ./cmd/argent)")
	fs.BoolVar(&c.keep, "keep", false, "keep the nodes' data directories")
	fs.StringVar(&c.docs, "docs", benchnode.RepoPath("docs/benchmarks.md"), "markdown file whose proxyhit section is replaced (empty: none)")
	fs.StringVar(&c.results, "results", benchnode.RepoPath("bench/results/proxyhit-latest.json"), "JSON results file (empty: none)")
	fs.StringVar(&c.simDir, "sim-dir", "", "where the replays open their caches (default: /dev/shm when writable, else the temporary directory; the hit rate does not depend on the disk, the replay time does)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write this program's CPU profile to this file")
	fs.BoolVar(&c.quick, "quick", false, "a smoke run: 20,000 keys, 300,000 reads per trace, 2,000 reads per class (flags given explicitly win)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		for name, p := range map[string]*int{"keys": &c.keys, "live-keys": &c.liveKeys} {
			if !set[name] {
				*p = 20_000
			}
		}
		if !set["reads"] {
			c.reads = 300_000
		}
		if !set["count"] {
			c.count = 2_000
		}
		if !set["duration"] {
			c.duration = 15 * time.Second
		}
	}
	c.seed = *seed
	if c.shift < 0 {
		c.shift = max(c.keys/100, 1)
	}
	for _, f := range strings.Split(*budgets, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 1 {
			return c, fmt.Errorf("-budgets: %q is not a fraction in (0, 1]", f)
		}
		c.budgets = append(c.budgets, v)
	}
	switch {
	case c.keys < 10 || c.reads < 10:
		return c, errors.New("-keys and -reads must be at least 10")
	case c.theta <= 0:
		return c, errors.New("-theta must be positive")
	case c.phases < 1:
		return c, errors.New("-phases must be at least 1")
	case c.liveKeys < 10 || c.hot < 1 || c.count < 1 || c.conns < 1:
		return c, errors.New("-live-keys, -hot, -count and -conns must be positive (-live-keys at least 10)")
	case c.proxyCache <= 0 || c.proxyCache > 1:
		return c, errors.New("-proxy-cache must be a fraction in (0, 1]")
	case c.value < 1 || c.liveValue < 1:
		return c, errors.New("-value and -live-value must be positive")
	}
	c.command = strings.TrimSpace("cd bench && go run ./proxyhit " + strings.Join(args, " "))
	return c, nil
}

func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "proxyhit: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := benchnode.StartCPUProfile(cfg.cpuprofile)
	if err != nil {
		fmt.Fprintf(stderr, "proxyhit: %v\n", err)
		return 1
	}
	defer stopProfile()
	res, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "proxyhit: %v\n", err)
		return 1
	}
	var md strings.Builder
	writeMarkdown(&md, res)
	return publish.Report{Name: "proxyhit", Markdown: md.String(), Results: res, ResultsPath: cfg.results,
		DocsPath: cfg.docs, Begin: markBegin, End: markEnd}.Write(stdout, stderr)
}

// run measures everything cfg asks for.
func run(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	res := &results{Started: time.Now(), Command: cfg.command, Machine: benchnode.DescribeMachine(ctx)}
	tmp, err := os.MkdirTemp("", "proxyhit-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.keep {
			_ = os.RemoveAll(tmp)
		}
	}()
	if cfg.overhead, err = cachetrace.EntryOverhead(tmp); err != nil {
		return nil, fmt.Errorf("per-entry overhead of proxycache: %w", err)
	}
	res.Settings = settingsOf(cfg)
	if cfg.sim {
		sizes, err := valueSizes(cfg.keys, cfg.valueDist, cfg.value, cfg.seed)
		if err != nil {
			return nil, err
		}
		d := newDataset(cfg.keys, sizes, cfg.overhead)
		res.Settings.DataWeight = d.total
		res.Settings.EqualWeights = d.equal
		for _, t := range cfg.traces() {
			res.Settings.Traces = append(res.Settings.Traces, t.Name+": "+t.describe(cfg.keys))
		}
		fmt.Fprintf(log, "proxyhit: data set of %s keys, %s as the cache weighs it (%d B overhead per entry)\n",
			fmtInt(cfg.keys), fmtBytes(d.total), cfg.overhead)
		simTmp, err := simDir(cfg.simDir, tmp)
		if err != nil {
			return nil, err
		}
		if simTmp != tmp {
			defer func() { _ = os.RemoveAll(simTmp) }()
		}
		res.Settings.SimDir = filepath.Dir(simTmp)
		if res.Sim, err = simulate(ctx, cfg, d, simTmp, log); err != nil {
			return nil, err
		}
	}
	if cfg.live {
		live, problems, err := runLive(ctx, cfg, tmp, log)
		res.Problems = append(res.Problems, problems...)
		if err != nil {
			return nil, fmt.Errorf("running proxy: %w", err)
		}
		res.Live = live
	}
	res.Machine.LoadEnd = benchnode.Loadavg()
	res.WallSeconds = time.Since(res.Started).Seconds()
	return res, nil
}

// simDir returns a new directory for the replays' caches: under dir if
// set, else under /dev/shm if it can be written, else tmp itself.
func simDir(dir, tmp string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("/dev/shm", "proxyhit-")
		if err != nil {
			return tmp, nil
		}
		return d, nil
	}
	return os.MkdirTemp(dir, "proxyhit-")
}
