// Command propagate measures how long a write takes to become visible
// through a chain of replicas: it starts real argent processes on 127.0.0.1,
// root -> r1 -> r2 -> r3 (-depth), writes at a fixed rate at the root, and
// holds a watch stream (GET /v1/watch) on some of the replicas (-watch).
//
//	cd bench    # the benchmarks' own module
//	go run ./propagate -rate 1000 -duration 60s
//	go run ./propagate -argent /tmp/argent -rate 100 -duration 20s -watch 1,2,3
//
// Writes are an open loop: -writers goroutines, sharing one client.Client
// whose pool keeps a keep-alive connection for each, send PUT /v1/kv/{key}
// (one put per batch, -value bytes) on one even schedule of -rate batches per second, whatever the answers do. For
// every batch it records the time the root's 200 {"index":N} arrived (the
// acknowledgement, after the root's fsync); each watcher records the time the
// watch line of index N arrived at its depth. The propagation delay of batch
// N at depth d is the difference. The delay from the send is reported too,
// for comparison with peers measured that way.
//
// Every second it reads /v1/status of every replica (lag_seconds, and
// root_index - applied_index) to show whether lag grows over the run, and it
// reports where the CPU went: each node, this process, and the rest of the
// machine. With -pprof DIR the nodes serve /debug/pprof/ and a CPU profile of
// each is saved in DIR from the middle of the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// config is the parsed command line.
type config struct {
	argent       string        // the argent binary; empty: go build ./cmd/argent
	depth        int           // replicas in the chain
	watch        []int         // depths that hold a watch
	rate         float64       // batches per second
	duration     time.Duration // of the writes
	writers      int           // goroutines (and connections) that write
	value        int           // bytes of each value
	sample       time.Duration // /v1/status interval
	window       time.Duration // of the over-time table and of first/last lag
	drain        time.Duration // how long to wait for the last batch at every watcher
	nodeArgs     string        // extra arguments of every node
	pprofDir     string        // save node CPU profiles here
	pprofSeconds int           // length of those profiles
	keep         bool          // keep the temporary directory
	tmpdir       string        // where the temporary directory goes
	csv          string        // write one line per batch here
	cpuProfile   string        // profile this process into this file
	seed         uint64
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("propagate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.argent, "argent", "", "path of the argent binary (default: go build ./cmd/argent into the temporary directory)")
	fs.IntVar(&c.depth, "depth", 3, "replicas in the chain root -> r1 -> ... -> rN")
	watch := fs.String("watch", "1,3", "comma-separated depths that hold a watch stream")
	fs.Float64Var(&c.rate, "rate", 1000, "batches per second over all writers (open loop)")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long to write")
	fs.IntVar(&c.writers, "writers", 16, "writer goroutines (the client keeps a connection for each)")
	fs.IntVar(&c.value, "value", 256, "value size in bytes")
	fs.DurationVar(&c.sample, "sample", time.Second, "interval of /v1/status samples of every replica")
	fs.DurationVar(&c.window, "window", 10*time.Second, "window of the over-time table and of the first/last lag averages")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "after the last write, how long to wait for it at every watcher")
	fs.StringVar(&c.nodeArgs, "node-args", "--log-level warn", "extra arguments of every node, space-separated")
	fs.StringVar(&c.pprofDir, "pprof", "", "start the nodes with --pprof and save a CPU profile of each in this directory, from the middle of the run")
	fs.IntVar(&c.pprofSeconds, "pprof-seconds", 10, "length of the -pprof profiles")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (data and node logs)")
	fs.StringVar(&c.tmpdir, "tmpdir", "", "parent of the temporary directory with the nodes' data (default: $TMPDIR or /tmp); /dev/shm takes the disk out of the measurement")
	fs.StringVar(&c.csv, "csv", "", "write one CSV line per batch to this file: index, then due, send, ack and arrival at each watched depth in microseconds from the start")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this benchmark process (writers and watchers) to this file")
	fs.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed of the values")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, f := range strings.Split(*watch, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			return c, fmt.Errorf("-watch: %q is not a depth", f)
		}
		c.watch = append(c.watch, d)
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.depth < 1 || c.depth > 20:
		return fmt.Errorf("-depth %d: want 1..20", c.depth)
	case len(c.watch) == 0:
		return errors.New("-watch: no depth")
	case c.rate <= 0 || c.rate > 100_000:
		return fmt.Errorf("-rate %v: want > 0 and <= 100000", c.rate)
	case c.duration <= 0:
		return fmt.Errorf("-duration %v: want > 0", c.duration)
	case c.writers < 1 || c.writers > 1000:
		return fmt.Errorf("-writers %d: want 1..1000", c.writers)
	case c.value < 0 || c.value > 1<<20:
		return fmt.Errorf("-value %d: want 0..1MiB", c.value)
	case c.sample <= 0 || c.window <= 0 || c.drain <= 0:
		return errors.New("-sample, -window and -drain must be > 0")
	case c.pprofSeconds < 1:
		return fmt.Errorf("-pprof-seconds %d: want >= 1", c.pprofSeconds)
	}
	seen := map[int]bool{}
	for _, d := range c.watch {
		if d < 1 || d > c.depth {
			return fmt.Errorf("-watch %d: want a depth in 1..%d", d, c.depth)
		}
		if seen[d] {
			return fmt.Errorf("-watch %d: given twice", d)
		}
		seen[d] = true
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "propagate: %v\n", err)
		return 2
	}
	// The watchers' timestamps should not wait for the collector.
	debug.SetGCPercent(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := benchnode.StartCPUProfile(cfg.cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "propagate: %v\n", err)
		return 1
	}
	defer stopProfile()
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "propagate: %v\n", err)
		return 1
	}
	res.print(stdout)
	if cfg.csv != "" {
		if err := res.writeCSV(cfg.csv); err != nil {
			fmt.Fprintf(stderr, "propagate: %v\n", err)
			return 1
		}
	}
	if !res.complete() {
		fmt.Fprintln(stderr, "propagate: some batches were not acknowledged or not seen at every watched depth")
		return 1
	}
	return 0
}
