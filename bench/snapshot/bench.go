package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/client"
)

// keyName is the key of key number k: "bench/snap/00000042".
func keyName(k int) string { return fmt.Sprintf("bench/snap/%08d", k) }

// result is one run. Fields are filled as the run gets there, so a failed
// run prints what it has.
type result struct {
	cfg     config
	started time.Time
	loadavg string
	root    *benchnode.Proc
	replica *benchnode.Proc

	// The load.
	loaded    int
	txns      int
	loadTook  time.Duration
	loadCPU   benchnode.CPUUse // root, then this process in Self
	lastIndex argent.Index
	dataBytes int64 // keys + values loaded

	// The trim.
	trimWait  time.Duration
	logFirst  float64
	rootDisk  int64 // bytes under the root's data directory
	rootStats map[string]float64

	// The bootstrap.
	ready     time.Duration    // process start to /v1/status answering
	took      time.Duration    // process start to applied_index == the root's
	bootCPU   benchnode.CPUUse // root, replica
	replCPU   float64          // CPU-seconds of the replica process in all
	hwm       int64            // replica VmHWM
	maxRSS    int64            // largest replica VmRSS seen while polling
	rootHWM   int64
	replStats map[string]float64
	replDisk  int64
	done      bool

	// The check.
	verified   int
	mismatches []string
}

// bench runs the load, the trim wait, the bootstrap and the check.
func bench(ctx context.Context, cfg config, log io.Writer) (*result, error) {
	tmp, err := os.MkdirTemp(cfg.tmpdir, "argent-snapshot.")
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
	res := &result{cfg: cfg, started: time.Now().UTC(), loadavg: benchnode.Loadavg()}
	nodeArgs := strings.Fields(cfg.nodeArgs)
	if res.root, err = c.Start(ctx, "root", "root", append(strings.Fields(cfg.rootArgs), nodeArgs...)...); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "snapshot: root %s (pid %d); loading %d keys x %d B\n", res.root.Addr, res.root.PID(), cfg.keys, cfg.value)
	if err := res.load(ctx); err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	fmt.Fprintf(log, "snapshot: loaded in %v; waiting for the root to trim its log\n", res.loadTook.Round(time.Millisecond))
	if err := res.waitTrim(ctx); err != nil {
		return res, err
	}
	res.rootDisk = benchnode.DirSize(res.root.Dir)
	fmt.Fprintf(log, "snapshot: log starts at %.0f, root at %d; starting a replica\n", res.logFirst, res.lastIndex)
	if err := res.bootstrap(ctx, c, log); err != nil {
		return res, err
	}
	if err := res.check(ctx); err != nil {
		return res, err
	}
	if len(res.mismatches) > 0 {
		return res, fmt.Errorf("%d of %d keys differ between root and replica", len(res.mismatches), res.verified)
	}
	if res.replStats["argent_snapshots_loaded_total"] < 1 {
		return res, fmt.Errorf("the replica caught up without loading a snapshot (argent_snapshots_loaded_total 0)")
	}
	return res, nil
}

// load writes every key through the root, cfg.batch per txn, cfg.writers
// txns in flight.
func (r *result) load(ctx context.Context) error {
	cfg := r.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	wc, err := client.New(r.root.Addr, client.WithHTTPClient(client.NewHTTPClient()))
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	starts := make(chan int)
	pids := []int{r.root.PID()}
	cpu0 := benchnode.SampleCPU(pids)
	for w := range cfg.writers {
		wg.Go(func() {
			var seed [32]byte
			binary.LittleEndian.PutUint64(seed[:], cfg.seed)
			binary.LittleEndian.PutUint64(seed[8:], uint64(w))
			fill := mrand.NewChaCha8(seed)
			for from := range starts {
				to := min(from+cfg.batch, cfg.keys)
				b := argent.Batch{Ops: make([]argent.Op, 0, to-from)}
				values := make([]byte, (to-from)*cfg.value)
				_, _ = fill.Read(values)
				for k := from; k < to; k++ {
					v := values[(k-from)*cfg.value : (k-from+1)*cfg.value]
					b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(keyName(k)), Value: v})
				}
				idx, err := wc.Txn(ctx, b)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("txn of keys %d..%d: %w", from, to-1, err)
					cancel()
				}
				if err == nil {
					r.loaded += to - from
					r.txns++
					r.lastIndex = max(r.lastIndex, idx)
					for k := from; k < to; k++ {
						r.dataBytes += int64(len(keyName(k)) + cfg.value)
					}
				}
				mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	for from := 0; from < cfg.keys && ctx.Err() == nil; from += cfg.batch {
		select {
		case starts <- from:
		case <-ctx.Done():
		}
	}
	close(starts)
	wg.Wait()
	r.loadTook = time.Since(t0)
	r.loadCPU = benchnode.CPUBetween(cpu0, benchnode.SampleCPU(pids))
	return first
}

// waitTrim waits until the root's argent_log_first_index is above 1, so a
// replica that asks for index 1 is told to take a snapshot.
func (r *result) waitTrim(ctx context.Context) error {
	t0 := time.Now()
	deadline := t0.Add(2 * time.Minute)
	for {
		m, err := r.root.Metrics(ctx)
		if err == nil && m["argent_log_first_index"] > 1 {
			r.trimWait = time.Since(t0)
			r.logFirst = m["argent_log_first_index"]
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("root's argent_log_first_index still %v after %v (%v): is --log-bytes small enough?",
				m["argent_log_first_index"], time.Since(t0).Round(time.Second), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootstrap starts the replica and waits until it has applied the root's
// last index.
func (r *result) bootstrap(ctx context.Context, c *benchnode.Cluster, log io.Writer) error {
	cfg := r.cfg
	st, err := r.root.Status(ctx)
	if err != nil {
		return err
	}
	target := st.AppliedIndex
	if target != r.lastIndex {
		return fmt.Errorf("root at index %d after the load, want %d", target, r.lastIndex)
	}
	args := append([]string{"--upstream", r.root.Addr}, strings.Fields(cfg.replicaArgs)...)
	args = append(args, strings.Fields(cfg.nodeArgs)...)
	rootCPU0 := benchnode.SampleCPU([]int{r.root.PID()})
	t0 := time.Now()
	r.replica, err = c.Start(ctx, "replica", "replica", args...)
	if err != nil {
		return err
	}
	r.ready = time.Since(t0)
	fmt.Fprintf(log, "snapshot: replica %s (pid %d) up after %v\n", r.replica.Addr, r.replica.PID(), r.ready.Round(time.Millisecond))
	deadline := t0.Add(cfg.timeout)
	nextProgress := t0.Add(time.Second)
	for {
		if _, rss, err := benchnode.ProcMem(r.replica.PID()); err == nil {
			r.maxRSS = max(r.maxRSS, rss)
		}
		st, err := r.replica.Status(ctx)
		if err == nil && st.AppliedIndex >= target {
			r.took = time.Since(t0)
			r.done = true
			break
		}
		now := time.Now()
		if now.After(nextProgress) {
			// About once a second: progress.
			nextProgress = now.Add(time.Second)
			if m, merr := r.replica.Metrics(ctx); merr == nil {
				recs := m["argent_snapshot_records_received_total"]
				fmt.Fprintf(log, "snapshot: %5.1fs records %.0f, received %.1f MB, applied %d, rss %d MB\n",
					now.Sub(t0).Seconds(), recs, m["argent_log_bytes_received_total"]/1e6, st.AppliedIndex, r.maxRSS>>20)
			}
		}
		if r.replica.Exited() {
			return fmt.Errorf("replica exited (%v); log:\n%s", r.replica.ExitErr(), r.replica.Tail())
		}
		if now.After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("replica did not reach index %d in %v (at %d, %v); log:\n%s", target, cfg.timeout, st.AppliedIndex, err, r.replica.Tail())
		}
		time.Sleep(cfg.poll)
	}
	pid := r.replica.PID()
	r.bootCPU = benchnode.CPUBetween(rootCPU0, benchnode.SampleCPU([]int{r.root.PID()}))
	r.replCPU, _ = benchnode.ProcCPU(pid)
	r.hwm, _, _ = benchnode.ProcMem(pid)
	r.rootHWM, _, _ = benchnode.ProcMem(r.root.PID())
	if r.replStats, err = r.replica.Metrics(ctx); err != nil {
		return err
	}
	if r.rootStats, err = r.root.Metrics(ctx); err != nil {
		return err
	}
	r.replDisk = benchnode.DirSize(r.replica.Dir)
	return nil
}

// check compares cfg.verify random keys, read with mget at the root and at
// the replica at the same index.
func (r *result) check(ctx context.Context) error {
	n := min(r.cfg.verify, r.cfg.keys)
	if n == 0 {
		return nil
	}
	rng := mrand.New(mrand.NewPCG(r.cfg.seed, 1))
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(keyName(rng.IntN(r.cfg.keys)))
	}
	opts := client.ReadOptions{MinIndex: r.lastIndex}
	ri, ritems, err := r.root.Client.MGet(ctx, keys, opts)
	if err != nil {
		return fmt.Errorf("check at the root: %w", err)
	}
	pi, pitems, err := r.replica.Client.MGet(ctx, keys, opts)
	if err != nil {
		return fmt.Errorf("check at the replica: %w", err)
	}
	if ri != pi {
		return fmt.Errorf("check: root read at index %d, replica at %d", ri, pi)
	}
	for i := range keys {
		a, b := ritems[i], pitems[i]
		if a.Absent || b.Absent != a.Absent || a.ModIndex != b.ModIndex || !bytes.Equal(a.Value, b.Value) {
			r.mismatches = append(r.mismatches, string(keys[i]))
		}
	}
	r.verified = n
	return nil
}
