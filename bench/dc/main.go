// Command dc measures one data center of argent proxies on a trace: how
// often the DC answers a read itself and how often it goes to a replica,
// first with v1.5 proxies (each asks the replicas on its own), then with
// the v2 tier (a relay between the DC and the replicas, and L2 shards
// shared among the DC's proxies), against the best any cache of the DC's
// combined budget could do on the same reads.
//
//	cd bench                  # the benchmarks' own module
//	go run ./dc               # the whole benchmark, a few minutes on 2 cores
//	go run ./dc -quick        # a smoke run of well under a minute
//	go run ./dc -modes v1.5 -reads 50000
//
// Nodes. It builds ./cmd/argent and starts a root and two replicas
// following it (each on a free 127.0.0.1 port with its own temporary data
// directory; all stopped by PID at the end, also on an error or SIGINT),
// and writes -keys keys of -value bytes through the root, 1,000 per txn.
// Each mode then starts its DC with fresh data directories and stops it
// before the next mode starts:
//
//   - v1.5: -proxies proxies, each with --upstream both replicas.
//   - v2: a relay (argent relay --upstream both replicas --dc dc1), and
//     -proxies proxies with --upstream the relay, --dc dc1 and --dc-peers
//     naming every proxy of the DC. A build without the relay or those
//     flags makes a process exit at start; the mode is then reported as
//     not available in this build, and the rest of the run goes on.
//
// Every proxy gets --cache-size -budget of the data set as the cache weighs
// it (key + value + proxycache's per-entry overhead, measured at start, as
// bench/proxyhit weighs it) and --window-bytes -window-bytes, small so that
// L1 is the budgeted cache and not the window.
//
// Trace. One Zipf(-theta) popularity over the keys (ranks scattered by a
// seeded permutation) is the same for every proxy; each proxy reads its own
// -reads draws from it (independent, seeded), with -readers concurrent
// readers per proxy (GET /v1/kv/{key} over keep-alive connections),
// recording each answer's Argent-Tier and latency, for at most -limit per
// mode. Both modes replay the same traces.
//
// Figures, per proxy and for the DC: the L1 hit rate (answers from the
// proxy's window, cache or filter), the L1+L2 hit rate (and l2), L3
// lookups per distinct key the DC read (from the replicas'
// argent_lookup_keys_total, else the relay's
// argent_relay_upstream_lookups_total, else the reads answered l3 or
// replica, as the report says), latency by tier, and the offline optimum:
// Belady's MIN over the DC's reads merged in the order they were sent,
// with one cache of the DC's combined budget (-proxies × -budget); the
// ratio is L1+L2 over it. Then a light load: one reader, -light-reads reads
// at -light-rate per second across the proxies in turn, for l2's latency
// when the proxies are idle.
//
// The results go to stdout as markdown (with the goals beside the
// figures), to the section of -docs between the dc markers, and as JSON to
// -results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
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
	keys, value int
	proxies     int
	budget      float64 // each proxy's --cache-size, a fraction of the data set's weight
	reads       int     // per proxy
	readers     int     // per proxy
	theta       float64
	seed        uint64
	modes       []string
	windowBytes string
	limit       time.Duration // per mode's replay
	lightReads  int
	lightRate   float64
	bin         string
	keep        bool

	docs, results string
	command       string

	entry int64 // what the cache weighs one key at (key + value + overhead), measured at start
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("dc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.keys, "keys", 200_000, "keys written through the root")
	fs.IntVar(&c.value, "value", 100, "value size in bytes (every key the same, so the optimum is exact)")
	fs.IntVar(&c.proxies, "proxies", 8, "proxies in the DC")
	fs.Float64Var(&c.budget, "budget", 0.05, "each proxy's --cache-size, as a fraction of the data set's weight as the cache weighs it")
	fs.IntVar(&c.reads, "reads", 60_000, "reads per proxy")
	fs.IntVar(&c.readers, "readers", 3, "concurrent readers per proxy")
	fs.Float64Var(&c.theta, "theta", 0.99, "Zipf exponent of the popularity")
	seed := fs.Uint64("seed", 1, "random seed of the traces and values")
	modes := fs.String("modes", modeV15+","+modeV2, "modes to run, in order: v1.5, v2")
	fs.StringVar(&c.windowBytes, "window-bytes", "64KiB", "each proxy's --window-bytes")
	fs.DurationVar(&c.limit, "limit", 5*time.Minute, "bound on each mode's replay")
	fs.IntVar(&c.lightReads, "light-reads", 2000, "reads of the light-load phase (0: none)")
	fs.Float64Var(&c.lightRate, "light-rate", 200, "reads per second of the light-load phase")
	fs.StringVar(&c.bin, "bin", "", "argent binary to run (default: go build ./cmd/argent)")
	fs.BoolVar(&c.keep, "keep", false, "keep the nodes' data directories and logs")
	fs.StringVar(&c.docs, "docs", benchnode.RepoPath("docs/benchmarks.md"), "markdown file whose dc section is replaced (empty: none)")
	fs.StringVar(&c.results, "results", benchnode.RepoPath("bench/results/dc-latest.json"), "JSON results file (empty: none)")
	quick := fs.Bool("quick", false, "a smoke run: 20,000 keys, 5,000 reads per proxy, 300 light reads (flags given explicitly win)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		for name, p := range map[string]*int{"keys": &c.keys, "reads": &c.reads, "light-reads": &c.lightReads} {
			if !set[name] {
				*p = map[string]int{"keys": 20_000, "reads": 5_000, "light-reads": 300}[name]
			}
		}
		if !set["limit"] {
			c.limit = time.Minute
		}
	}
	c.seed = *seed
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if m != modeV15 && m != modeV2 {
			return c, fmt.Errorf("-modes: %q is neither %s nor %s", m, modeV15, modeV2)
		}
		c.modes = append(c.modes, m)
	}
	switch {
	case c.keys < 10:
		return c, errors.New("-keys must be at least 10")
	case c.keys > 100_000_000:
		return c, errors.New("-keys must be at most 100,000,000 (keys are named k/ and eight digits)")
	case c.value < 1:
		return c, errors.New("-value must be positive")
	case c.proxies < 1 || c.readers < 1 || c.reads < 1:
		return c, errors.New("-proxies, -readers and -reads must be positive")
	case c.budget <= 0 || c.budget > 1:
		return c, errors.New("-budget must be a fraction in (0, 1]")
	case c.theta <= 0:
		return c, errors.New("-theta must be positive")
	case c.limit <= 0:
		return c, errors.New("-limit must be positive")
	case c.lightReads < 0 || c.lightReads > 0 && c.lightRate <= 0:
		return c, errors.New("-light-reads must not be negative, and -light-rate must be positive")
	case int64(c.proxies)*int64(c.reads) > 1<<30:
		return c, errors.New("-proxies × -reads must be at most 2^30")
	}
	c.command = strings.TrimSpace("cd bench && go run ./dc " + shellJoin(args))
	return c, nil
}

// shellJoin joins args as a shell would read them back: an empty argument
// or one with a space or quote is quoted.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " '\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dc: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dc: %v\n", err)
		return 1
	}
	var md strings.Builder
	writeMarkdown(&md, res)
	return publish.Report{Name: "dc", Markdown: md.String(), Results: res, ResultsPath: cfg.results,
		DocsPath: cfg.docs, Begin: markBegin, End: markEnd}.Write(stdout, stderr)
}

// run starts the shared nodes, loads the keys, and runs each mode.
func run(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	res := &results{Started: time.Now(), Command: cfg.command, Machine: benchnode.DescribeMachine(ctx)}
	tmp, err := os.MkdirTemp("", "dcbench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.keep {
			_ = os.RemoveAll(tmp)
		}
	}()
	overhead, err := cachetrace.EntryOverhead(tmp)
	if err != nil {
		return nil, err
	}
	entry := int64(len(keyName(0))+cfg.value) + overhead
	cfg.entry = entry
	dataWeight := int64(cfg.keys) * entry
	cacheSize := int64(cfg.budget * float64(dataWeight))
	pop := newPopularity(cfg.keys, cfg.theta, cfg.seed)
	traces := makeTraces(pop, cfg.proxies, cfg.reads, cfg.seed)
	res.Settings = settings{Keys: cfg.keys, Value: cfg.value, Proxies: cfg.proxies, Budget: cfg.budget, CacheSize: cacheSize,
		Overhead: overhead, Entry: entry, DataWeight: dataWeight, Reads: cfg.reads, Readers: cfg.readers, Theta: cfg.theta,
		Seed: cfg.seed, WindowBytes: cfg.windowBytes, Distinct: distinct(cfg.keys, traces...), LightReads: cfg.lightReads,
		LightRate: cfg.lightRate, Limit: cfg.limit.String()}
	fmt.Fprintf(log, "dc: %s keys weigh %s in the cache (%d B per entry, %d of them overhead); --cache-size %s per proxy; "+
		"%s reads per proxy over %s distinct keys in all\n", fmtInt(cfg.keys), fmtBytes(dataWeight), entry, overhead,
		fmtBytes(cacheSize), fmtInt(cfg.reads), fmtInt(res.Settings.Distinct))

	bin := cfg.bin
	if bin == "" {
		fmt.Fprintln(log, "dc: go build ./cmd/argent")
		if bin, err = benchnode.BuildArgent(ctx, tmp); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	bc, err := newCluster(bin, filepath.Join(tmp, "base"))
	if err != nil {
		return nil, err
	}
	defer bc.Close(cfg.keep)
	b, loadSecs, err := startBase(ctx, bc, cfg, log)
	if err != nil {
		return nil, err
	}
	res.LoadSecs, res.LastIndex = loadSecs, uint64(b.last)
	var peer *redisPeer
	if cfg.lightReads > 0 {
		if peer, err = startRedisPeer(ctx, bc, cfg); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("no Redis beside the light load: %v", err))
			fmt.Fprintf(log, "dc: no Redis beside the light load: %v\n", err)
		}
	}
	for _, mode := range cfg.modes {
		mr, err := runMode(ctx, cfg, bin, tmp, b, mode, cacheSize, pop, traces, hc, peer, bc.Procs(), log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		res.Modes = append(res.Modes, mr)
	}
	for _, p := range bc.Procs() {
		if p.Exited() {
			res.Problems = append(res.Problems, fmt.Sprintf("%s exited during the run: %v", p.Name, p.ExitErr()))
		}
	}
	res.ReplicaDisk = benchnode.DirSize(b.replicas[0].Dir)
	res.Machine.LoadEnd = benchnode.Loadavg()
	res.WallSeconds = time.Since(res.Started).Seconds()
	return res, nil
}

// newCluster returns a Cluster of bin whose nodes live under dir.
func newCluster(bin, dir string) (*benchnode.Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &benchnode.Cluster{Bin: bin, Dir: dir}, nil
}

// The light load starts once the DC's processes use less than quietCores
// of CPU together, or after quietLimit.
const (
	quietCores = 0.05
	quietLimit = time.Minute
)

// runMode starts the mode's DC, replays the traces and the light load, and
// stops the DC. A mode the binary cannot run, or one whose nodes fail to
// start, comes back as a modeResult saying so; the error is only for the
// run's end (ctx).
func runMode(ctx context.Context, cfg config, bin, tmp string, b *base, mode string, cacheSize int64,
	pop *popularity, traces [][]int32, hc *http.Client, peer *redisPeer, shared []*benchnode.Proc, log io.Writer) (*modeResult, error) {
	mr := &modeResult{Mode: mode}
	c, err := newCluster(bin, filepath.Join(tmp, "mode-"+mode))
	if err != nil {
		return nil, err
	}
	defer c.Close(cfg.keep)
	d, err := startDC(ctx, c, cfg, b, mode, cacheSize, hc, log)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, errUnavailable):
		mr.Unavailable = strings.TrimPrefix(err.Error(), errUnavailable.Error()+": ")
		fmt.Fprintf(log, "dc: %s: not available in this build: %s\n", mode, mr.Unavailable)
		return mr, nil
	case err != nil:
		mr.Error = err.Error()
		fmt.Fprintf(log, "dc: %s: PROBLEM: %v\n", mode, err)
		return mr, nil
	}
	addrs := make([]string, len(d.proxies))
	for i, p := range d.proxies {
		addrs[i] = p.Addr
	}
	snap := func() ([]map[string]float64, map[string]float64, []map[string]float64) {
		var reps, proxies []map[string]float64
		for _, r := range b.replicas {
			reps = append(reps, scrape(ctx, hc, r.Addr))
		}
		var relay map[string]float64
		if d.relay != nil {
			relay = scrape(ctx, hc, d.relay.Addr)
		}
		for _, a := range addrs {
			proxies = append(proxies, scrape(ctx, hc, a))
		}
		return reps, relay, proxies
	}
	repsBefore, relayBefore, proxiesBefore := snap()
	fmt.Fprintf(log, "dc: %s: replaying %s reads per proxy, %d readers each\n", mode, fmtInt(cfg.reads), cfg.readers)
	rep := replay(ctx, addrs, traces, cfg.readers, cfg.limit)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	repsAfter, relayAfter, proxiesAfter := snap()
	summarize(mr, cfg, rep, traces, addrs, cacheSize)
	mr.L3 = l3Lookups(repsBefore, repsAfter, relayBefore, relayAfter, mr.DC.L3Answers)
	if mr.Distinct > 0 {
		mr.L3PerDistinct = mr.L3.Lookups / float64(mr.Distinct)
	}
	mr.ProxyMetrics = counterDeltas(proxiesBefore, proxiesAfter, "argent_proxy_reads_")
	if d.relay != nil {
		mr.RelayMetrics = counterDeltas([]map[string]float64{relayBefore}, []map[string]float64{relayAfter}, "argent_relay_")
	}
	fmt.Fprintf(log, "dc: %s: %s reads in %.1f s: L1 %s, L1+L2 %s, optimum %s (ratio %.3f); L3 lookups %s over %s distinct keys = %.2f (%s)\n",
		mode, fmtInt(mr.Reads), mr.ReplaySecs, pct(mr.DC.L1), pct(mr.DC.L12), pct(mr.Optimum.HitRate), mr.Ratio,
		fmtInt(int64(mr.L3.Lookups)), fmtInt(mr.Distinct), mr.L3PerDistinct, mr.L3.Source)
	if mr.DC.Errors > 0 {
		mr.Problems = append(mr.Problems, fmt.Sprintf("%s of %s reads failed or did not answer 200 (statuses %v)",
			fmtInt(mr.DC.Errors), fmtInt(mr.Reads), mr.DC.Statuses))
	}
	if cfg.lightReads > 0 {
		// Paced, then one request at a time without pauses: on a machine
		// whose idle CPUs wake slowly, the pauses between paced reads cost
		// every tier a wake-up per process it crosses.
		// Each phase draws its own keys: the second would find the first's
		// in the caches. Redis reads the same keys at the same pace right
		// after each phase.
		var pids []int
		for _, p := range append(c.Procs(), shared...) {
			if !p.Exited() {
				pids = append(pids, p.PID())
			}
		}
		waited, used := waitQuiet(ctx, pids, quietCores, quietLimit)
		mr.QuietWait, mr.QuietCores = waited.Seconds(), used
		fmt.Fprintf(log, "dc: %s: waited %.1f s for the nodes to go quiet (%.3f cores)\n", mode, waited.Seconds(), used)
		for i, phase := range []struct {
			name string
			rate float64
			out  **lightResult
		}{{"light load", cfg.lightRate, &mr.Light}, {"one at a time", 0, &mr.Closed}} {
			limit := 30 * time.Second
			if phase.rate > 0 {
				limit += time.Duration(float64(cfg.lightReads) / phase.rate * float64(time.Second))
			}
			t := lightLoad(ctx, addrs, pop, cfg.lightReads, phase.rate, cfg.seed+uint64(i), limit)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lr := &lightResult{Reads: t.reads, Rate: phase.rate, Tiers: t.tiers, Latency: t.latencies()}
			*phase.out = lr
			l2 := "no l2 answers"
			if l, ok := lr.Latency[tierL2]; ok {
				l2 = fmt.Sprintf("l2 p50 %s, p99 %s", fmtUs(l.P50), fmtUs(l.P99))
			}
			if peer != nil {
				pt, err := peer.light(ctx, pop, cfg.lightReads, phase.rate, cfg.seed+uint64(i), limit)
				switch {
				case err != nil:
					mr.Problems = append(mr.Problems, fmt.Sprintf("Redis beside the %s: %v", phase.name, err))
				case pt.tiers[tierError] > 0:
					mr.Problems = append(mr.Problems, fmt.Sprintf("Redis beside the %s: %d of %d GETs failed", phase.name, pt.tiers[tierError], pt.reads))
				default:
					l := pt.latencies()[tierRedis]
					lr.Peer = &l
					l2 += fmt.Sprintf("; Redis GET p50 %s, p99 %s", fmtUs(l.P50), fmtUs(l.P99))
				}
			}
			fmt.Fprintf(log, "dc: %s: %s, %s reads: %s; %s\n", mode, phase.name, fmtInt(t.reads), tierList(t.tiers), l2)
		}
	}
	for _, p := range d.proxies {
		mr.Disk += benchnode.DirSize(p.Dir)
	}
	for _, p := range c.Procs() {
		if p.Exited() {
			mr.Problems = append(mr.Problems, fmt.Sprintf("%s exited during the run: %v", p.Name, p.ExitErr()))
		}
	}
	return mr, nil
}

// summarize fills mr's figures from a replay: per proxy and for the DC,
// the distinct keys read, and the optimum over the merged trace with one
// cache of the DC's combined budget.
func summarize(mr *modeResult, cfg config, rep *replayed, traces [][]int32, addrs []string, cacheSize int64) {
	dc := newTally()
	for p, t := range rep.perProxy {
		dc.merge(t)
		pr := proxyResultOf(fmt.Sprintf("proxy%d", p+1), t)
		pr.Addr = addrs[p]
		pr.Distinct = distinct(cfg.keys, traces[p][:t.reads])
		mr.Proxies = append(mr.Proxies, pr)
	}
	mr.DC = proxyResultOf("DC", dc)
	mr.DC.Distinct = distinct(cfg.keys, rep.merged)
	mr.Reads, mr.Distinct, mr.ReplaySecs = dc.reads, mr.DC.Distinct, rep.secs
	if rep.secs > 0 {
		mr.ReadsPerSec = float64(dc.reads) / rep.secs
	}
	mr.Latency = dc.latencies()
	mr.Optimum = optimumOf(rep.merged, cfg.keys, cfg.entry, int64(cfg.proxies)*cacheSize)
	if mr.Optimum.HitRate > 0 {
		mr.Ratio = mr.DC.L12 / mr.Optimum.HitRate
	}
}
