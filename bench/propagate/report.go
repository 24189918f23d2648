package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// Delays are recorded in microseconds, from 1 us to 60 s, to 3 significant
// digits, as in bench/load.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSig) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(histMax, max(histMin, d.Microseconds())))
}

// watchResult is what one watcher saw.
type watchResult struct {
	depth int
	node  string
	arr   []arrival
	err   error
}

// result is one run.
type result struct {
	cfg        config
	started    time.Time // wall clock, for the report
	loadavg    string
	nodes      []*benchnode.Proc
	start, end time.Time // of the write schedule
	writes     []write
	errs       map[string]int
	watches    []watchResult
	lag        []lagSample
	cpuTicks   []benchnode.CPUSample // every -sample: root, r1, ...
	sstTicks   []sstTick             // every -sample
	cpu        benchnode.CPUUse

	// Filled by analyze.
	analyzed bool
	depths   []depthStats
	writeLat *hdrhistogram.Histogram // send -> ack
	late     *hdrhistogram.Histogram // due -> send
	windows  []windowStats
	seconds  []*hdrhistogram.Histogram // deepest watched depth, by second of due time
	merged   int                       // writes acknowledged at an index another write also got
}

// depthStats is the delay at one watched depth.
type depthStats struct {
	depth    int
	node     string
	fromAck  *hdrhistogram.Histogram
	fromSend *hdrhistogram.Histogram
	matched  int // acknowledged batches seen at this depth
	early    int // seen before the acknowledgement was read (recorded as 1 us)
	extra    int // watch lines of indexes no writer was acknowledged for
	err      error
}

// windowStats is one -window of the run, by due time.
type windowStats struct {
	from, to time.Time
	batches  int
	fromAck  []*hdrhistogram.Histogram // by watched depth, in cfg.watch order
	lag      []lagAgg                  // by replica depth-1
	cpu      benchnode.CPUUse          // from the first to the last CPU sample in the window
	sst      int64                     // bytes of sstables written by all nodes
}

// lagAgg aggregates /v1/status samples of one replica.
type lagAgg struct {
	n, failed       int
	sumSec, maxS    float64 // lag_seconds
	sumIdx, maxIx   float64 // root_index - applied_index, both from the replica
	sumTrue, maxTru float64 // the root's applied_index - the replica's
}

func (a *lagAgg) add(s lagSample) {
	if s.failed {
		a.failed++
		return
	}
	a.n++
	idx := 0.0
	if s.root > s.applied {
		idx = float64(s.root - s.applied)
	}
	a.sumSec += s.lagSec
	a.maxS = max(a.maxS, s.lagSec)
	a.sumIdx += idx
	a.maxIx = max(a.maxIx, idx)
	tru := 0.0
	if s.rootApplied > s.applied {
		tru = float64(s.rootApplied - s.applied)
	}
	a.sumTrue += tru
	a.maxTru = max(a.maxTru, tru)
}

func (a lagAgg) avgSec() float64 { return a.sumSec / math.Max(1, float64(a.n)) }
func (a lagAgg) avgIdx() float64 { return a.sumIdx / math.Max(1, float64(a.n)) }

func (a lagAgg) avgTrue() float64 { return a.sumTrue / math.Max(1, float64(a.n)) }

// analyze matches acknowledgements with arrivals.
func (r *result) analyze() {
	if r.analyzed {
		return
	}
	r.analyzed = true
	// The root merges the writes that arrive together into one batch: an
	// index may be acknowledged to several writers, and its watch line
	// carries all of them.
	acks := make(map[argent.Index][]int, len(r.writes))
	r.writeLat, r.late = newHist(), newHist()
	for i, w := range r.writes {
		acks[w.idx] = append(acks[w.idx], i)
		if len(acks[w.idx]) == 2 {
			r.merged += 2
		} else if len(acks[w.idx]) > 2 {
			r.merged++
		}
		record(r.writeLat, w.ack.Sub(w.sent))
		record(r.late, w.sent.Sub(w.due))
	}
	nwin := int((r.end.Sub(r.start) + r.cfg.window - 1) / r.cfg.window)
	r.windows = make([]windowStats, nwin)
	for i := range r.windows {
		ws := &r.windows[i]
		ws.from = r.start.Add(time.Duration(i) * r.cfg.window)
		ws.to = ws.from.Add(r.cfg.window)
		if ws.to.After(r.end) {
			ws.to = r.end
		}
		ws.fromAck = make([]*hdrhistogram.Histogram, len(r.watches))
		for j := range ws.fromAck {
			ws.fromAck[j] = newHist()
		}
		ws.lag = make([]lagAgg, r.cfg.depth)
	}
	win := func(t time.Time) int {
		i := int(t.Sub(r.start) / r.cfg.window)
		return min(max(i, 0), nwin-1)
	}
	for _, w := range r.writes {
		r.windows[win(w.due)].batches++
	}
	deepest := 0
	for j, wr := range r.watches {
		if wr.depth > r.watches[deepest].depth {
			deepest = j
		}
	}
	r.seconds = make([]*hdrhistogram.Histogram, int(math.Ceil(r.end.Sub(r.start).Seconds())))
	for i := range r.seconds {
		r.seconds[i] = newHist()
	}
	for j, wr := range r.watches {
		ds := depthStats{depth: wr.depth, node: wr.node, fromAck: newHist(), fromSend: newHist(), err: wr.err}
		for _, a := range wr.arr {
			is, ok := acks[a.idx]
			if !ok {
				ds.extra++
				continue
			}
			for _, i := range is {
				w := r.writes[i]
				ds.matched++
				d := a.at.Sub(w.ack)
				if d < 0 {
					ds.early++
				}
				record(ds.fromAck, d)
				record(ds.fromSend, a.at.Sub(w.sent))
				record(r.windows[win(w.due)].fromAck[j], d)
				if j == deepest {
					sec := min(max(int(w.due.Sub(r.start)/time.Second), 0), len(r.seconds)-1)
					record(r.seconds[sec], d)
				}
			}
		}
		r.depths = append(r.depths, ds)
	}
	for _, s := range r.lag {
		if s.at.Before(r.start) || !s.at.Before(r.end) {
			continue
		}
		r.windows[win(s.at)].lag[s.depth-1].add(s)
	}
	for i := range r.windows {
		ws := &r.windows[i]
		var first, last *benchnode.CPUSample
		for j := range r.cpuTicks {
			t := &r.cpuTicks[j]
			if t.At.Before(ws.from.Add(-r.cfg.sample/2)) || t.At.After(ws.to.Add(r.cfg.sample/2)) {
				continue
			}
			if first == nil {
				first = t
			}
			last = t
		}
		if first != nil && last != first {
			ws.cpu = benchnode.CPUBetween(*first, *last)
		}
	}
	for _, t := range r.sstTicks {
		// A tick counts what appeared since the previous one.
		at := t.at.Add(-r.cfg.sample / 2)
		if !at.Before(r.start) && at.Before(r.end) {
			r.windows[win(at)].sst += t.bytes
		}
	}
}

// complete reports whether every batch was acknowledged and seen at every
// watched depth.
func (r *result) complete() bool {
	r.analyze()
	if len(r.errs) > 0 {
		return false
	}
	for _, d := range r.depths {
		if d.matched != len(r.writes) || d.err != nil {
			return false
		}
	}
	return true
}

// lagBetween aggregates one replica's samples taken in [from, to).
func (r *result) lagBetween(depth int, from, to time.Time) lagAgg {
	var a lagAgg
	for _, s := range r.lag {
		if s.depth == depth && !s.at.Before(from) && s.at.Before(to) {
			a.add(s)
		}
	}
	return a
}

// What trend fits.
const (
	lagSeconds = iota // lag_seconds of /v1/status
	behindRoot        // the root's applied index minus the replica's
)

// trend fits y = a + b*t over one replica's samples in the run, t in
// minutes, and returns b: seconds of lag_seconds per minute, or indexes
// behind the root per minute.
func (r *result) trend(depth, what int) float64 {
	var n, st, sy, stt, sty float64
	for _, s := range r.lag {
		if s.depth != depth || s.failed || s.at.Before(r.start) || !s.at.Before(r.end) {
			continue
		}
		t := s.at.Sub(r.start).Minutes()
		y := s.lagSec
		if what == behindRoot {
			y = 0
			if s.rootApplied > s.applied {
				y = float64(s.rootApplied - s.applied)
			}
		}
		n++
		st += t
		sy += y
		stt += t * t
		sty += t * y
	}
	den := n*stt - st*st
	if n < 2 || den == 0 {
		return 0
	}
	return (n*sty - st*sy) / den
}

func (r *result) chain() string {
	parts := make([]string, len(r.nodes))
	for i, p := range r.nodes {
		parts[i] = fmt.Sprintf("%s %s (pid %d)", p.Name, p.Addr, p.PID())
	}
	return strings.Join(parts, " -> ")
}

func ms(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }

func msf(sec float64) string { return fmt.Sprintf("%.2f ms", sec*1000) }

// print writes the report as markdown.
func (r *result) print(w io.Writer) {
	r.analyze()
	cfg := r.cfg
	fmt.Fprintf(w, "### propagate: %.0f batches/s for %v, depth %d\n\n", cfg.rate, cfg.duration, cfg.depth)
	fmt.Fprintf(w, "%s UTC, loadavg %s. Chain: %s.\n", r.started.Format("2006-01-02 15:04:05"), r.loadavg, r.chain())
	fmt.Fprintf(w, "Open loop: %d writers, one PUT of %d B per batch, node args %q", cfg.writers, cfg.value, cfg.nodeArgs)
	if cfg.tmpdir != "" {
		fmt.Fprintf(w, ", data directories under %s", cfg.tmpdir)
	}
	fmt.Fprint(w, ".\n\n")

	fmt.Fprintln(w, "| delay to the watch line | node | batches seen / acknowledged | p50 | p90 | p99 | p99.9 | max |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, d := range r.depths {
		h := d.fromAck
		fmt.Fprintf(w, "| depth %d, from root ack | %s | %d / %d | %s | %s | %s | %s | %s |\n", d.depth, d.node, d.matched, len(r.writes),
			ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9)), ms(h.Max()))
	}
	for _, d := range r.depths {
		h := d.fromSend
		fmt.Fprintf(w, "| depth %d, from send | %s | %d / %d | %s | %s | %s | %s | %s |\n", d.depth, d.node, d.matched, len(r.writes),
			ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9)), ms(h.Max()))
	}
	h := r.writeLat
	fmt.Fprintf(w, "| (write: send to root ack) | root | %d | %s | %s | %s | %s | %s |\n\n", len(r.writes),
		ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9)), ms(h.Max()))

	wall := r.end.Sub(r.start).Seconds()
	fmt.Fprintf(w, "Writes: %d acknowledged in %.1f s (%.0f/s)", len(r.writes), wall, float64(len(r.writes))/wall)
	if len(r.errs) > 0 {
		kinds := make([]string, 0, len(r.errs))
		for k, n := range r.errs {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, ", errors: %s", strings.Join(kinds, ", "))
	} else {
		fmt.Fprint(w, ", 0 errors")
	}
	fmt.Fprintf(w, "; send behind schedule p99 %s, max %s.\n", ms(r.late.ValueAtQuantile(99)), ms(r.late.Max()))
	for _, d := range r.depths {
		var notes []string
		if d.early > 0 {
			notes = append(notes, fmt.Sprintf("%d seen before their ack was read (counted as 0)", d.early))
		}
		if d.extra > 0 {
			notes = append(notes, fmt.Sprintf("%d watch lines of unknown indexes", d.extra))
		}
		if d.err != nil {
			notes = append(notes, fmt.Sprintf("stream ended: %v", d.err))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "Depth %d: %s.\n", d.depth, strings.Join(notes, "; "))
		}
	}
	if r.merged > 0 {
		fmt.Fprintf(w, "%d writes shared their index with others (merged batches).\n", r.merged)
	}
	fmt.Fprintln(w)

	// Lag of every replica, first window against last.
	win := cfg.window
	fmt.Fprintf(w, "Lag, sampled every %v from /v1/status of the replica (lag_seconds; lag idx = its root_index - applied_index) and of the root at the same moment (behind root = the root's applied_index - the replica's):\n\n", cfg.sample)
	fmt.Fprintf(w, "| replica | first %v: lag_seconds / lag idx / behind root (avg) | last %v: same | max over run | trend of lag_seconds | trend of behind root | failed samples |\n", win, win)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for d := 1; d <= cfg.depth; d++ {
		first := r.lagBetween(d, r.start, r.start.Add(win))
		last := r.lagBetween(d, r.end.Add(-win), r.end)
		all := r.lagBetween(d, r.start, r.end)
		fmt.Fprintf(w, "| r%d | %s / %.2f / %.2f | %s / %.2f / %.2f | %s / %.0f / %.0f | %+.3f ms/min | %+.2f idx/min | %d |\n", d,
			msf(first.avgSec()), first.avgIdx(), first.avgTrue(), msf(last.avgSec()), last.avgIdx(), last.avgTrue(),
			msf(all.maxS), all.maxIx, all.maxTru, r.trend(d, lagSeconds)*1000, r.trend(d, behindRoot), all.failed)
	}
	fmt.Fprintln(w)

	// Over time.
	deep := cfg.depth
	fmt.Fprintf(w, "Over time (batches by due time; r%d lag from /v1/status):\n\n", deep)
	fmt.Fprint(w, "| window | batches |")
	for _, d := range r.depths {
		fmt.Fprintf(w, " depth %d p50 / p99 |", d.depth)
	}
	fmt.Fprintf(w, " r%d lag_seconds avg / max | r%d lag idx avg / max | r%d behind root avg / max | cores: nodes / benchmark / other | sstables written (flushes, compactions) |\n", deep, deep, deep)
	fmt.Fprint(w, "|---|---|")
	for range r.depths {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w, "---|---|---|---|---|")
	for _, ws := range r.windows {
		fmt.Fprintf(w, "| %.0f-%.0f s | %d |", ws.from.Sub(r.start).Seconds(), ws.to.Sub(r.start).Seconds(), ws.batches)
		for j := range r.depths {
			h := ws.fromAck[j]
			fmt.Fprintf(w, " %s / %s |", ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(99)))
		}
		l := ws.lag[deep-1]
		fmt.Fprintf(w, " %s / %s | %.2f / %.0f | %.2f / %.0f |", msf(l.avgSec()), msf(l.maxS), l.avgIdx(), l.maxIx, l.avgTrue(), l.maxTru)
		if u := ws.cpu; u.OK {
			var nodes float64
			for _, p := range u.PIDs {
				nodes += p
			}
			fmt.Fprintf(w, " %.2f / %.2f / %.2f |", nodes, u.Self, u.Other())
		} else {
			fmt.Fprint(w, " |")
		}
		fmt.Fprintf(w, " %.1f MB |\n", float64(ws.sst)/1e6)
	}
	fmt.Fprintln(w)

	// The slowest seconds.
	if len(r.seconds) > 1 && len(r.depths) > 0 {
		deep := r.depths[0].depth
		for _, d := range r.depths {
			deep = max(deep, d.depth)
		}
		secs := make([]int, len(r.seconds))
		for i := range secs {
			secs[i] = i
		}
		sort.SliceStable(secs, func(a, b int) bool {
			return r.seconds[secs[a]].ValueAtQuantile(99) > r.seconds[secs[b]].ValueAtQuantile(99)
		})
		parts := make([]string, 0, 3)
		for _, sec := range secs[:min(3, len(secs))] {
			h := r.seconds[sec]
			parts = append(parts, fmt.Sprintf("%d-%d s: p50 %s, p99 %s, max %s (%d batches)", sec, sec+1,
				ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(99)), ms(h.Max()), h.TotalCount()))
		}
		fmt.Fprintf(w, "Slowest seconds at depth %d, by p99 from root ack: %s.\n\n", deep, strings.Join(parts, "; "))
	}

	// CPU.
	if !r.cpu.OK {
		fmt.Fprintln(w, "CPU: /proc not readable.")
		return
	}
	fmt.Fprintf(w, "CPU during the writes (%.1f s):\n\n", r.cpu.Wall)
	fmt.Fprintln(w, "| process | cores | CPU-us per batch |")
	fmt.Fprintln(w, "|---|---|---|")
	perBatch := func(cores float64) float64 {
		if len(r.writes) == 0 {
			return 0
		}
		return cores * r.cpu.Wall * 1e6 / float64(len(r.writes))
	}
	var nodes float64
	for i, p := range r.nodes {
		if i < len(r.cpu.PIDs) {
			fmt.Fprintf(w, "| %s | %.3f | %.0f |\n", p.Name, r.cpu.PIDs[i], perBatch(r.cpu.PIDs[i]))
			nodes += r.cpu.PIDs[i]
		}
	}
	fmt.Fprintf(w, "| all nodes | %.3f | %.0f |\n", nodes, perBatch(nodes))
	fmt.Fprintf(w, "| this benchmark (writers, watchers) | %.3f | %.0f |\n", r.cpu.Self, perBatch(r.cpu.Self))
	fmt.Fprintf(w, "| other processes | %.3f | |\n", r.cpu.Other())
	fmt.Fprintf(w, "| machine (2 cores = 2.0) | %.3f | |\n\n", r.cpu.Machine)
}

// writeCSV writes one line per acknowledged batch, in index order: the
// index, then the due, send and acknowledgement times and the arrival at
// each watched depth (empty if it never arrived), in microseconds from the
// start of the schedule.
func (r *result) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprint(bw, "index,due_us,send_us,ack_us")
	arr := make([]map[argent.Index]time.Time, len(r.watches))
	for i, wr := range r.watches {
		fmt.Fprintf(bw, ",depth%d_us", wr.depth)
		arr[i] = make(map[argent.Index]time.Time, len(wr.arr))
		for _, a := range wr.arr {
			arr[i][a.idx] = a.at
		}
	}
	fmt.Fprintln(bw)
	ws := slices.Clone(r.writes)
	slices.SortFunc(ws, func(a, b write) int { return cmp.Compare(a.idx, b.idx) })
	us := func(t time.Time) int64 { return t.Sub(r.start).Microseconds() }
	for _, w := range ws {
		fmt.Fprintf(bw, "%d,%d,%d,%d", w.idx, us(w.due), us(w.sent), us(w.ack))
		for i := range arr {
			if t, ok := arr[i][w.idx]; ok {
				fmt.Fprintf(bw, ",%d", us(t))
			} else {
				fmt.Fprint(bw, ",")
			}
		}
		fmt.Fprintln(bw)
	}
	if err := bw.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
