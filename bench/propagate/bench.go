package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/client"
)

// keyPrefix is the prefix of every key written and watched.
const keyPrefix = "bench/prop/"

// putTimeout bounds one write.
const putTimeout = 10 * time.Second

// write is one batch as the writer saw it.
type write struct {
	idx  argent.Index
	due  time.Time // on the schedule
	sent time.Time // the PUT started
	ack  time.Time // the 200 {"index":N} was read
}

// writerStats is one writer goroutine's record.
type writerStats struct {
	writes []write
	errs   map[string]int
}

// arrival is a watch line of a batch, and when it was read.
type arrival struct {
	idx argent.Index
	at  time.Time
}

// watcher holds a watch stream on one replica.
type watcher struct {
	depth int
	node  *benchnode.Proc
	w     *client.Watcher
	arr   []arrival
	last  atomic.Uint64 // index of the last batch read
	err   error         // why the stream ended, if not by Close
	done  chan struct{}
}

// lagSample is one /v1/status of one replica, with the root's.
type lagSample struct {
	at      time.Time
	depth   int
	applied argent.Index
	root    argent.Index
	lagSec  float64
	// rootApplied is the root's own applied index, read at the same time:
	// rootApplied - applied is the lag as an outside observer sees it.
	rootApplied argent.Index
	failed      bool
}

// bench starts the chain, runs the writes and watches, and returns what was
// measured.
func bench(ctx context.Context, cfg config, log io.Writer) (*result, error) {
	tmp, err := os.MkdirTemp(cfg.tmpdir, "argent-propagate.")
	if err != nil {
		return nil, err
	}
	c := &benchnode.Cluster{Dir: tmp, Bin: cfg.argent}
	defer c.Close(cfg.keep)
	if c.Bin == "" {
		if c.Bin, err = benchnode.BuildArgent(ctx, tmp); err != nil {
			return nil, err
		}
	}
	nodeArgs := strings.Fields(cfg.nodeArgs)
	if cfg.pprofDir != "" {
		nodeArgs = append(nodeArgs, "--pprof")
		if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
			return nil, err
		}
	}
	root, err := c.Start(ctx, "root", "root", nodeArgs...)
	if err != nil {
		return nil, err
	}
	reps := make([]*benchnode.Proc, cfg.depth)
	up := root
	for d := range reps {
		args := append([]string{"--upstream", up.Addr}, nodeArgs...)
		if reps[d], err = c.Start(ctx, fmt.Sprintf("r%d", d+1), "replica", args...); err != nil {
			return nil, err
		}
		up = reps[d]
	}
	res := &result{cfg: cfg, started: time.Now().UTC(), loadavg: benchnode.Loadavg(), nodes: c.Procs()}
	fmt.Fprintf(log, "propagate: %s\n", res.chain())

	// One client, with a pool of at least -writers connections, for the
	// writes; the nodes' own clients for watches and status.
	wc, err := client.New(root.Addr, client.WithHTTPClient(client.NewHTTPClient()))
	if err != nil {
		return nil, err
	}

	// Warm up: open every writer's connection and wait until the whole chain
	// has applied those writes, so the run starts with the tree connected.
	warm, err := warmUp(ctx, cfg, wc)
	if err != nil {
		return nil, err
	}
	if err := reps[len(reps)-1].WaitApplied(ctx, warm, 30*time.Second); err != nil {
		return nil, err
	}

	watchers := make([]*watcher, len(cfg.watch))
	for i, d := range cfg.watch {
		w, err := reps[d-1].Client.Watch(ctx, []byte(keyPrefix), warm+1)
		if err != nil {
			return nil, fmt.Errorf("watch at depth %d: %w", d, err)
		}
		watchers[i] = &watcher{depth: d, node: reps[d-1], w: w, done: make(chan struct{})}
		go watchers[i].run()
	}
	defer func() {
		for _, w := range watchers {
			_ = w.w.Close()
			<-w.done
		}
	}()

	pids := make([]int, len(c.Procs()))
	for i, p := range c.Procs() {
		pids[i] = p.PID()
	}
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(cfg.duration)
	res.start, res.end = start, end

	// Status of every replica every -sample, from the start of the writes.
	stopSampling := make(chan struct{})
	sampled := make(chan samples, 1)
	go func() { sampled <- sampleLag(ctx, root, reps, start, cfg.sample, stopSampling) }()

	// CPU profiles from the middle of the run.
	var profWG sync.WaitGroup
	if cfg.pprofDir != "" {
		at := start.Add(cfg.duration/2 - time.Duration(cfg.pprofSeconds)*time.Second/2)
		for _, p := range c.Procs() {
			profWG.Go(func() {
				if err := saveProfile(ctx, p, at, cfg.pprofSeconds, cfg.pprofDir); err != nil {
					fmt.Fprintf(log, "propagate: profile of %s: %v\n", p.Name, err)
				}
			})
		}
	}

	cpu0 := benchnode.SampleCPU(pids)
	stats := make([]*writerStats, cfg.writers)
	var wg sync.WaitGroup
	for i := range stats {
		stats[i] = &writerStats{}
		wg.Go(func() { writer(ctx, cfg, wc, i, stats[i], start, end) })
	}
	wg.Wait()
	res.cpu = benchnode.CPUBetween(cpu0, benchnode.SampleCPU(pids))
	for _, s := range stats {
		res.writes = append(res.writes, s.writes...)
		for k, n := range s.errs {
			if res.errs == nil {
				res.errs = make(map[string]int)
			}
			res.errs[k] += n
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Wait for the last acknowledged batch at every watcher.
	var last argent.Index
	for _, w := range res.writes {
		last = max(last, w.idx)
	}
	deadline := time.Now().Add(cfg.drain)
	for _, w := range watchers {
		for argent.Index(w.last.Load()) < last && time.Now().Before(deadline) && !w.ended() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stopSampling)
	smp := <-sampled
	res.lag, res.cpuTicks, res.sstTicks = smp.lag, smp.cpu, smp.sst
	profWG.Wait()
	for _, w := range watchers {
		_ = w.w.Close()
		<-w.done
		res.watches = append(res.watches, watchResult{depth: w.depth, node: w.node.Name, arr: w.arr, err: w.err})
	}
	watchers = nil
	return res, nil
}

// warmUp sends one put per writer, one after another, and returns the last
// index.
func warmUp(ctx context.Context, cfg config, wc *client.Client) (argent.Index, error) {
	var last argent.Index
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, cfg.writers)
	for i := range cfg.writers {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, putTimeout)
			defer cancel()
			idx, err := wc.Put(pctx, []byte(keyPrefix+"warm/"+strconv.Itoa(i)), make([]byte, cfg.value))
			errs[i] = err
			mu.Lock()
			last = max(last, idx)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("warm-up writes: %w", err)
	}
	return last, nil
}

// writer sends its share of the schedule: batch seq is due at start +
// seq/rate, and writer id sends seq = id, id+writers, id+2*writers, ...
func writer(ctx context.Context, cfg config, wc *client.Client, id int, st *writerStats, start, end time.Time) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], cfg.seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(id))
	fill := mrand.NewChaCha8(seed)
	value := make([]byte, cfg.value)
	step := float64(time.Second) / cfg.rate
	st.writes = make([]write, 0, int(cfg.duration.Seconds()*cfg.rate)/cfg.writers+1)
	for seq := id; ; seq += cfg.writers {
		due := start.Add(time.Duration(float64(seq) * step))
		if !due.Before(end) || ctx.Err() != nil {
			return
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		_, _ = fill.Read(value)
		key := keyPrefix + strconv.Itoa(seq)
		pctx, cancel := context.WithTimeout(ctx, putTimeout)
		sent := time.Now()
		idx, err := wc.Put(pctx, []byte(key), value)
		ack := time.Now()
		cancel()
		if err != nil {
			if st.errs == nil {
				st.errs = make(map[string]int)
			}
			st.errs[errKind(err)]++
			continue
		}
		st.writes = append(st.writes, write{idx: idx, due: due, sent: sent, ack: ack})
	}
}

// errKind names an error for the tally without its varying details.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "broken pipe", "deadline exceeded", "EOF"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// run reads the watch until it ends and records when each batch arrived.
func (w *watcher) run() {
	defer close(w.done)
	for {
		ev, err := w.w.Next()
		now := time.Now()
		if err != nil {
			if !errors.Is(err, argent.ErrClosed) {
				w.err = err
			}
			return
		}
		if ev.Progress {
			continue
		}
		w.arr = append(w.arr, arrival{idx: ev.Index, at: now})
		w.last.Store(uint64(ev.Index))
	}
}

// ended reports whether the watch stream is over.
func (w *watcher) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// samples are what sampleLag collects.
type samples struct {
	lag []lagSample
	cpu []benchnode.CPUSample // root, r1, r2, ... at each tick
	sst []sstTick
}

// sstTick is the bytes of the sstables that appeared in the nodes' data
// directories since the previous tick: memtable flushes and compactions.
type sstTick struct {
	at    time.Time
	bytes int64
}

// newSSTs adds the sstables under dir not in seen to seen and returns
// their bytes.
func newSSTs(dir string, seen map[string]bool) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		name := filepath.Join(dir, e.Name())
		if !strings.HasSuffix(name, ".sst") || seen[name] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			seen[name] = true
			n += fi.Size()
		}
	}
	return n
}

// sampleLag reads the root's and every replica's /v1/status, all at once,
// the CPU used so far, and the new sstables in the data directories, at
// start, start+every, ... until stop is closed.
func sampleLag(ctx context.Context, root *benchnode.Proc, reps []*benchnode.Proc, start time.Time, every time.Duration, stop <-chan struct{}) samples {
	var out samples
	next := start
	sts := make([]client.Status, len(reps)+1)
	errs := make([]error, len(reps)+1)
	nodes := append([]*benchnode.Proc{root}, reps...)
	pids := make([]int, len(nodes))
	seen := make(map[string]bool)
	for i, p := range nodes {
		pids[i] = p.PID()
		newSSTs(p.Dir, seen) // those from before the start
	}
	for {
		select {
		case <-time.After(time.Until(next)):
		case <-stop:
			return out
		case <-ctx.Done():
			return out
		}
		at := time.Now()
		out.cpu = append(out.cpu, benchnode.SampleCPU(pids))
		var sst int64
		for _, p := range nodes {
			sst += newSSTs(p.Dir, seen)
		}
		out.sst = append(out.sst, sstTick{at: at, bytes: sst})
		var wg sync.WaitGroup
		for i, p := range nodes {
			wg.Go(func() { sts[i], errs[i] = p.Status(ctx) })
		}
		wg.Wait()
		for d := 1; d < len(nodes); d++ {
			s := lagSample{at: at, depth: d, failed: errs[d] != nil || errs[0] != nil}
			if !s.failed {
				s.applied, s.root, s.lagSec = sts[d].AppliedIndex, sts[d].RootIndex, sts[d].LagSeconds
				s.rootApplied = sts[0].AppliedIndex
			}
			out.lag = append(out.lag, s)
		}
		next = next.Add(every)
	}
}

// saveProfile waits until at, then saves a CPU profile of p in dir.
func saveProfile(ctx context.Context, p *benchnode.Proc, at time.Time, seconds int, dir string) error {
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return ctx.Err()
	}
	return benchnode.SaveCPUProfile(ctx, p.Addr, seconds, filepath.Join(dir, p.Name+".pprof"))
}
