package main

import (
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// Latencies are recorded in microseconds, from 1 us to 60 s, to 3
// significant digits.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

// result is one run's outcome; its JSON is the -json line.
type result struct {
	Mode      string  `json:"mode"`
	Target    string  `json:"target"`
	Client    string  `json:"client"`
	Conns     int     `json:"conns"`
	Duration  float64 `json:"duration_s"` // measured, from the first send to the last answer
	Rate      float64 `json:"rate"`       // asked; 0 = closed loop
	Dist      string  `json:"dist"`
	Keys      int     `json:"keys"`
	Value     int     `json:"value_bytes"`
	MGetKeys  int     `json:"mget_keys,omitempty"`
	Ops       int64   `json:"ops"` // requests answered 200
	OpsPerSec float64 `json:"ops_per_sec"`
	// KeysPerSec is OpsPerSec times the keys of one mget.
	KeysPerSec float64          `json:"keys_per_sec,omitempty"`
	Errors     int64            `json:"errors"` // requests not answered 200, transport errors included
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	// Unsent counts open-loop requests that were due before the end but not
	// sent because every connection was still busy: the rate was not met.
	Unsent    int64   `json:"unsent,omitempty"`
	BodyBytes float64 `json:"body_bytes_avg"` // mean answer body size
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	Max       float64 `json:"max_ms"`
	Mean      float64 `json:"mean_ms"`
	// Open loop only: latency from the actual send, without the time a
	// request waited for its connection or for this process to be
	// scheduled. The gap to the figures above is queueing in the client.
	SendP50  float64 `json:"send_p50_ms,omitempty"`
	SendP99  float64 `json:"send_p99_ms,omitempty"`
	SendP999 float64 `json:"send_p999_ms,omitempty"`
	// ClientCPU is the CPU time (user+sys) this process used during the
	// run, in seconds: what the load generator took from the machine.
	ClientCPU float64 `json:"client_cpu_s"`
	// ServerCPU is the CPU time of the -pids processes during the run, and
	// MachineCPU the busy time of the whole machine (so MachineCPU -
	// ClientCPU - ServerCPU is what other processes took). Both need /proc;
	// ServerCPU also -pids.
	PIDs       []int   `json:"pids,omitempty"`
	ServerCPU  float64 `json:"server_cpu_s,omitempty"`
	MachineCPU float64 `json:"machine_cpu_s,omitempty"`
	// ClientUsPerOp and ServerUsPerOp are CPU microseconds per answered
	// request: the cost of one request, which contention changes less than
	// it changes throughput.
	ClientUsPerOp float64 `json:"client_us_per_op"`
	ServerUsPerOp float64 `json:"server_us_per_op,omitempty"`
}

// workerStats is one goroutine's tally, merged after the run.
type workerStats struct {
	hist      *hdrhistogram.Histogram // from the intended send time
	sendHist  *hdrhistogram.Histogram // open loop: from the actual send time
	ops       int64
	bodyBytes int64
	unsent    int64
	errs      map[string]int64
}

func (w *workerStats) fail(kind string) {
	if w.errs == nil {
		w.errs = make(map[string]int64)
	}
	w.errs[kind]++
}

// keyPicker draws key numbers from the configured distribution.
type keyPicker struct {
	r    *mrand.Rand
	zipf *mrand.Zipf
	n    uint64
}

func newKeyPicker(cfg config, worker int) *keyPicker {
	r := mrand.New(mrand.NewPCG(cfg.seed, uint64(worker)))
	p := &keyPicker{r: r, n: uint64(cfg.keys)}
	if cfg.dist == distZipf && cfg.keys > 1 {
		p.zipf = mrand.NewZipf(r, cfg.zipfS, 1, uint64(cfg.keys-1))
	}
	return p
}

func (p *keyPicker) next() int {
	if p.zipf == nil {
		return int(p.r.Uint64N(p.n))
	}
	// Rank 0 is the hottest key; scatter ranks over the key space (a
	// multiplication by a prime modulo n is a bijection unless the prime
	// divides n) so that hot keys are not neighbours on disk.
	return int(p.zipf.Uint64() * 2654435761 % p.n)
}

// conn is one persistent connection to the target. Each method sends one
// request, reads the whole answer, and returns its status and body length.
// After an error the conn redials on its next call.
type conn interface {
	Get(key int) (status, n int, err error)
	Put(key int, value []byte) (status, n int, err error)
	MGet(keys []int) (status, n int, err error)
	// SetDeadline bounds every read and write on the connection, and on
	// the connections it redials, by t.
	SetDeadline(t time.Time)
	Close()
}

func newConn(cfg config) conn {
	if cfg.client == clientStd {
		return newStdConn(cfg.target, cfg.conns)
	}
	return newRawConn(cfg.target)
}

// runLoad runs the configured load and returns its merged result.
func runLoad(cfg config) (*result, error) {
	conns := make([]conn, cfg.conns)
	for i := range conns {
		conns[i] = newConn(cfg)
		defer conns[i].Close()
	}
	// Open every connection, and check that the target answers, before the
	// clock starts.
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(cfg.timeout))
		if _, _, err := c.Get(0); err != nil {
			return nil, fmt.Errorf("connection %d to %s: %w", i, cfg.target, err)
		}
	}

	stats := make([]*workerStats, cfg.conns)
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	cpu0 := benchnode.SampleCPU(cfg.pids)
	start := time.Now()
	end := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for i := range conns {
		// Every request ends by the end of the run plus the timeout.
		conns[i].SetDeadline(end.Add(cfg.timeout))
		stats[i] = &workerStats{hist: hdrhistogram.New(histMin, histMax, histSig)}
		if cfg.rate > 0 {
			stats[i].sendHist = hdrhistogram.New(histMin, histMax, histSig)
		}
		wg.Go(func() { worker(cfg, i, conns[i], stats[i], start, end) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu1 := benchnode.SampleCPU(cfg.pids)

	res := &result{
		Mode: cfg.mode, Target: cfg.target, Client: cfg.client, Conns: cfg.conns,
		Duration: elapsed.Seconds(), Rate: cfg.rate, Dist: cfg.dist, Keys: cfg.keys, Value: cfg.value,
		ClientCPU: cpuSeconds(ru1) - cpuSeconds(ru0), PIDs: cfg.pids,
	}
	if cfg.mode == modeMGet {
		res.MGetKeys = cfg.mgetKeys
	}
	all := hdrhistogram.New(histMin, histMax, histSig)
	send := hdrhistogram.New(histMin, histMax, histSig)
	var bodyBytes int64
	for _, s := range stats {
		all.Merge(s.hist)
		if s.sendHist != nil {
			send.Merge(s.sendHist)
		}
		res.Ops += s.ops
		res.Unsent += s.unsent
		bodyBytes += s.bodyBytes
		for k, n := range s.errs {
			if res.ErrorKinds == nil {
				res.ErrorKinds = make(map[string]int64)
			}
			res.ErrorKinds[k] += n
			res.Errors += n
		}
	}
	res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	if cfg.mode == modeMGet {
		res.KeysPerSec = res.OpsPerSec * float64(cfg.mgetKeys)
	}
	if cpu0.OK && cpu1.OK {
		res.MachineCPU = cpu1.Machine - cpu0.Machine
		for i := range cpu0.PIDs {
			res.ServerCPU += cpu1.PIDs[i] - cpu0.PIDs[i]
		}
	}
	if res.Ops > 0 {
		res.ClientUsPerOp = res.ClientCPU * 1e6 / float64(res.Ops)
		res.ServerUsPerOp = res.ServerCPU * 1e6 / float64(res.Ops)
	}
	if n := res.Ops + res.Errors; n > 0 {
		res.BodyBytes = float64(bodyBytes) / float64(n)
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	res.P50 = ms(all.ValueAtQuantile(50))
	res.P90 = ms(all.ValueAtQuantile(90))
	res.P99 = ms(all.ValueAtQuantile(99))
	res.P999 = ms(all.ValueAtQuantile(99.9))
	res.Max = ms(all.Max())
	res.Mean = all.Mean() / 1000
	if cfg.rate > 0 {
		res.SendP50 = ms(send.ValueAtQuantile(50))
		res.SendP99 = ms(send.ValueAtQuantile(99))
		res.SendP999 = ms(send.ValueAtQuantile(99.9))
	}
	return res, nil
}

func cpuSeconds(ru syscall.Rusage) float64 {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// worker sends requests on c until end: back to back (closed loop), or on
// its share of the -rate schedule (open loop).
func worker(cfg config, id int, c conn, st *workerStats, start, end time.Time) {
	keys := newKeyPicker(cfg, id)
	var value []byte
	var mkeys []int
	var fill *mrand.ChaCha8
	switch cfg.mode {
	case modePut:
		value = make([]byte, cfg.value)
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], cfg.seed)
		binary.LittleEndian.PutUint64(seed[8:], uint64(id))
		fill = mrand.NewChaCha8(seed)
	case modeMGet:
		mkeys = make([]int, cfg.mgetKeys)
	}
	one := func() (int, int, error) {
		switch cfg.mode {
		case modePut:
			_, _ = fill.Read(value)
			return c.Put(keys.next(), value)
		case modeMGet:
			for i := range mkeys {
				mkeys[i] = keys.next()
			}
			return c.MGet(mkeys)
		}
		return c.Get(keys.next())
	}
	record := func(status, n int, err error, lat, sendLat time.Duration) {
		st.bodyBytes += int64(n)
		switch {
		case err != nil:
			st.fail(errKind(err))
			// Do not spin on a refused dial.
			time.Sleep(min(10*time.Millisecond, max(0, time.Until(end))))
			return
		case status != 200:
			st.fail(fmt.Sprintf("status %d", status))
			return
		}
		st.ops++
		_ = st.hist.RecordValue(min(histMax, max(histMin, lat.Microseconds())))
		if st.sendHist != nil {
			_ = st.sendHist.RecordValue(min(histMax, max(histMin, sendLat.Microseconds())))
		}
	}

	if cfg.rate == 0 {
		for t0 := time.Now(); t0.Before(end); {
			status, n, err := one()
			t1 := time.Now()
			record(status, n, err, t1.Sub(t0), 0)
			t0 = t1
		}
		return
	}
	// Open loop: request k of worker id is due at start + (id + k*conns)/rate,
	// so the workers interleave into one even schedule.
	step := float64(time.Second) / cfg.rate
	for k := 0; ; k++ {
		due := start.Add(time.Duration((float64(id) + float64(k)*float64(cfg.conns)) * step))
		if !due.Before(end) {
			return
		}
		now := time.Now()
		if !now.Before(end) {
			// Behind schedule at the end: count what was due but not sent.
			st.unsent += int64(float64(end.Sub(due))/(step*float64(cfg.conns))) + 1
			return
		}
		if d := due.Sub(now); d > 0 {
			time.Sleep(d)
		}
		sent := time.Now()
		status, n, err := one()
		done := time.Now()
		record(status, n, err, done.Sub(due), done.Sub(sent))
	}
}

// errKind names an error for the error tally without its varying details.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "EOF"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func (r *result) print(w io.Writer) {
	loop := "closed loop"
	if r.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f req/s", r.Rate)
	}
	fmt.Fprintf(w, "%s %s: %d conns, %s, %s keys of %d, value %d B, client %s\n",
		r.Mode, r.Target, r.Conns, loop, r.Dist, r.Keys, r.Value, r.Client)
	what := "ops"
	switch r.Mode {
	case modePut:
		what = "acknowledged (fsynced) writes"
	case modeMGet:
		what = fmt.Sprintf("mget requests (%d keys each)", r.MGetKeys)
	}
	fmt.Fprintf(w, "  ops      %d %s in %.2fs\n", r.Ops, what, r.Duration)
	fmt.Fprintf(w, "  ops/s    %.0f\n", r.OpsPerSec)
	if r.KeysPerSec > 0 {
		fmt.Fprintf(w, "  keys/s   %.0f\n", r.KeysPerSec)
	}
	fmt.Fprintf(w, "  latency  p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  (mean %.3fms)\n",
		r.P50, r.P90, r.P99, r.P999, r.Max, r.Mean)
	if r.Rate > 0 {
		fmt.Fprintf(w, "  (send)   p50 %.3fms  p99 %.3fms  p99.9 %.3fms  measured from the actual send, not the due time\n",
			r.SendP50, r.SendP99, r.SendP999)
	}
	fmt.Fprintf(w, "  errors   %d", r.Errors)
	if len(r.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintln(w)
	if r.Unsent > 0 {
		fmt.Fprintf(w, "  unsent   %d requests due before the end were never sent: the rate was not met\n", r.Unsent)
	}
	fmt.Fprintf(w, "  body     %.0f B mean\n", r.BodyBytes)
	fmt.Fprintf(w, "  client   %.2f cores (%.1f CPU-us/op) used by this load generator\n", r.ClientCPU/r.Duration, r.ClientUsPerOp)
	if len(r.PIDs) > 0 {
		fmt.Fprintf(w, "  server   %.2f cores (%.1f CPU-us/op) used by the -pids processes\n", r.ServerCPU/r.Duration, r.ServerUsPerOp)
	}
	if r.MachineCPU > 0 {
		other := max(0, r.MachineCPU-r.ClientCPU-r.ServerCPU)
		whom := "other processes"
		if len(r.PIDs) == 0 {
			whom = "processes other than this load generator (name the server with -pids)"
		}
		fmt.Fprintf(w, "  machine  %.2f cores busy, of which %.2f %s\n", r.MachineCPU/r.Duration, other/r.Duration, whom)
	}
}
