// Command load drives one argent node's HTTP API with a fixed number of
// persistent connections and prints throughput and latency percentiles.
//
//	cd bench    # the benchmarks' own module
//	go run ./load -target 127.0.0.1:7401 -root 127.0.0.1:7400 -prefill -mode get -conns 50 -duration 10s
//	go run ./load -target 127.0.0.1:7400 -mode put -conns 50 -duration 10s -json
//
// Every connection is one goroutine with its own keep-alive TCP connection.
// With -rate 0 each goroutine sends its next request as soon as the last
// answer is read (closed loop). With -rate R > 0 the goroutines together send
// R requests per second on a fixed schedule (open loop) and a request's
// latency runs from the time it was due, not from the time it was sent, so a
// slow server shows as latency instead of silently lowering the load
// (coordinated omission).
//
// The default client (-client raw) writes prebuilt HTTP/1.1 requests to a
// net.Conn and parses answers with a minimal parser (status line,
// Content-Length or chunked body, Connection: close), which costs a fraction
// of net/http's client CPU; -client std uses net/http for comparison.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"
)

// config is the parsed command line.
type config struct {
	target   string
	root     string
	mode     string
	conns    int
	duration time.Duration
	keys     int
	value    int
	prefill  bool
	dist     string
	zipfS    float64
	rate     float64
	mgetKeys int
	client   string
	timeout  time.Duration
	seed     uint64
	json     bool
	pids     []int
}

// Modes and distributions.
const (
	modeGet  = "get"
	modePut  = "put"
	modeMGet = "mget"

	distUniform = "uniform"
	distZipf    = "zipf"

	clientRaw = "raw"
	clientStd = "std"

	// maxKeys keeps key numbers within the 8 digits of bench/key/%08d.
	maxKeys = 100_000_000
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.target, "target", "127.0.0.1:7401", "host:port of the node to load")
	fs.StringVar(&c.root, "root", "", "host:port of the root, for -prefill (default: -target)")
	fs.StringVar(&c.mode, "mode", modeGet, "get, put or mget")
	fs.IntVar(&c.conns, "conns", 50, "connections, one goroutine each")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send requests")
	fs.IntVar(&c.keys, "keys", 100_000, "number of keys, bench/key/00000000 up")
	fs.IntVar(&c.value, "value", 256, "value size in bytes (put and -prefill)")
	fs.BoolVar(&c.prefill, "prefill", false, "first write every key through -root in txn batches of 1000, and wait until -target has applied them")
	fs.StringVar(&c.dist, "dist", distUniform, "key distribution: uniform or zipf")
	fs.Float64Var(&c.zipfS, "zipf-s", 1.1, "zipf exponent s (> 1)")
	fs.Float64Var(&c.rate, "rate", 0, "requests per second over all connections; 0 = closed loop, as fast as answers come")
	fs.IntVar(&c.mgetKeys, "mget-keys", 100, "keys per mget request")
	fs.StringVar(&c.client, "client", clientRaw, "raw (minimal HTTP/1.1 over net.Conn) or std (net/http)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long one request may take past the end of the run")
	fs.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	fs.BoolVar(&c.json, "json", false, "print one JSON line instead of the text report")
	pids := fs.String("pids", "", "comma-separated IDs of the server processes, to report their CPU use (Linux)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if c.pids, err = parsePIDs(*pids); err != nil {
		return c, err
	}
	if c.root == "" {
		c.root = c.target
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.mode != modeGet && c.mode != modePut && c.mode != modeMGet:
		return fmt.Errorf("-mode %q: want get, put or mget", c.mode)
	case c.dist != distUniform && c.dist != distZipf:
		return fmt.Errorf("-dist %q: want uniform or zipf", c.dist)
	case c.client != clientRaw && c.client != clientStd:
		return fmt.Errorf("-client %q: want raw or std", c.client)
	case c.conns < 1 || c.conns > 10_000:
		return fmt.Errorf("-conns %d: want 1..10000", c.conns)
	case c.duration <= 0:
		return fmt.Errorf("-duration %v: want > 0", c.duration)
	case c.keys < 1 || c.keys > maxKeys:
		return fmt.Errorf("-keys %d: want 1..%d", c.keys, maxKeys)
	case c.value < 0 || c.value > 32<<20:
		return fmt.Errorf("-value %d: want 0..32MiB", c.value)
	case c.dist == distZipf && c.zipfS <= 1:
		return fmt.Errorf("-zipf-s %v: want > 1", c.zipfS)
	case c.rate < 0:
		return fmt.Errorf("-rate %v: want >= 0", c.rate)
	case c.mode == modeMGet && (c.mgetKeys < 1 || c.mgetKeys > 10_000):
		return fmt.Errorf("-mget-keys %d: want 1..10000", c.mgetKeys)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout %v: want > 0", c.timeout)
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
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 2
	}
	// The hot path barely allocates; keep the collector out of the way of
	// the little it does.
	debug.SetGCPercent(400)
	if cfg.prefill {
		took, last, err := prefill(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "load: prefill: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "load: prefilled %d keys x %d B through %s in %v (last index %d, applied at %s)\n",
			cfg.keys, cfg.value, cfg.root, took.Round(time.Millisecond), last, cfg.target)
	}
	res, err := runLoad(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	if cfg.json {
		b, err := json.Marshal(res)
		if err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		res.print(stdout)
	}
	if res.Ops == 0 {
		return 1
	}
	return 0
}
