// Command snapshot measures how long a new replica takes to bootstrap from a
// snapshot: it starts a root (a real argent process on 127.0.0.1), loads
// -keys keys of -value bytes into it with POST /v1/txn, waits until the
// root has trimmed its log (so a new replica cannot replay it from index 1
// and must take a snapshot), then starts a replica and times it from the
// start of its process until its applied index equals the root's.
//
//	cd bench                              # the benchmarks' own module
//	go run ./snapshot                     # 1,000,000 keys x 256 B
//	go run ./snapshot -argent /tmp/argent -keys 100000
//
// The root runs with --log-bytes 1MiB --trim-interval 1s (so the log is
// trimmed within a second or two) and --snapshot-rate 1GiB (so the per-parent
// rate limit does not bound the transfer); see -root-args. It reports the
// load rate, the bootstrap's seconds, keys/s and MB/s, the CPU of both
// processes, and the replica's peak resident set size (VmHWM), which shows
// whether it held the data set in memory. Finally it compares -verify random
// keys between the root and the replica.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the parsed command line.
type config struct {
	argent      string
	keys        int
	value       int
	batch       int
	writers     int
	rootArgs    string
	replicaArgs string
	nodeArgs    string
	verify      int
	timeout     time.Duration
	poll        time.Duration
	keep        bool
	tmpdir      string
	seed        uint64
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.argent, "argent", "", "path of the argent binary (default: go build ./cmd/argent into the temporary directory)")
	fs.IntVar(&c.keys, "keys", 1_000_000, "keys to load")
	fs.IntVar(&c.value, "value", 256, "value size in bytes")
	fs.IntVar(&c.batch, "batch", 2000, "puts per POST /v1/txn")
	fs.IntVar(&c.writers, "writers", 4, "txns in flight during the load")
	fs.StringVar(&c.rootArgs, "root-args", "--log-bytes 1MiB --trim-interval 1s --snapshot-rate 1GiB", "extra arguments of the root, space-separated")
	fs.StringVar(&c.replicaArgs, "replica-args", "", "extra arguments of the replica, space-separated")
	fs.StringVar(&c.nodeArgs, "node-args", "--log-level warn", "extra arguments of both nodes, space-separated")
	fs.IntVar(&c.verify, "verify", 1000, "random keys to compare between root and replica at the end (0: none)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "bound on the load, and on the bootstrap")
	fs.DurationVar(&c.poll, "poll", 20*time.Millisecond, "interval of the replica's /v1/status polls")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (data and node logs)")
	fs.StringVar(&c.tmpdir, "tmpdir", "", "parent of the temporary directory with the nodes' data (default: $TMPDIR or /tmp); /dev/shm takes the disk out of the measurement")
	fs.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed of the values")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case c.keys < 1 || c.keys > 100_000_000:
		return c, fmt.Errorf("-keys %d: want 1..100000000", c.keys)
	case c.value < 0 || c.value > 1<<20:
		return c, fmt.Errorf("-value %d: want 0..1MiB", c.value)
	case c.batch < 1 || c.batch > 100_000:
		return c, fmt.Errorf("-batch %d: want 1..100000", c.batch)
	case c.writers < 1 || c.writers > 64:
		return c, fmt.Errorf("-writers %d: want 1..64", c.writers)
	case c.verify < 0:
		return c, fmt.Errorf("-verify %d: want >= 0", c.verify)
	case c.timeout <= 0 || c.poll <= 0:
		return c, errors.New("-timeout and -poll must be > 0")
	}
	return c, nil
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
		fmt.Fprintf(stderr, "snapshot: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench(ctx, cfg, stderr)
	if res != nil {
		res.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "snapshot: %v\n", err)
		return 1
	}
	return 0
}
