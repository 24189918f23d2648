package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/mdsection"
)

// Markers of the generated section of docs/benchmarks.md: a rerun replaces
// what lies between them and keeps the hand-written text around them.
const (
	markBegin = "<!-- proxyhit:begin -->"
	markEnd   = "<!-- proxyhit:end -->"
)

// aim is issue 6's target for hit rate / optimum.
const aim = 0.9

// results is everything one run measured; its JSON is
// bench/results/proxyhit-latest.json.
type results struct {
	Started     time.Time   `json:"started"`
	WallSeconds float64     `json:"wall_seconds"`
	Command     string      `json:"command"`
	Machine     machine     `json:"machine"`
	Settings    settings    `json:"settings"`
	Sim         []simResult `json:"hit_rate,omitempty"`
	Live        *liveResult `json:"running_proxy,omitempty"`
	Problems    []string    `json:"problems,omitempty"`
}

// settings is the part of the configuration a reader of the results needs.
type settings struct {
	Keys         int       `json:"keys"`
	Values       string    `json:"values"`
	Reads        int       `json:"reads_per_trace"`
	Theta        float64   `json:"theta"`
	Budgets      []float64 `json:"budgets"`
	Overhead     int64     `json:"entry_overhead_bytes"` // proxycache's, measured
	DataWeight   int64     `json:"data_weight_bytes"`
	EqualWeights bool      `json:"equal_weights"`
	Optimum      string    `json:"optimum"`
	Traces       []string  `json:"traces"`
	Seed         uint64    `json:"seed"`
	SimDir       string    `json:"replay_cache_dir"`
}

func settingsOf(c config) settings {
	s := settings{Keys: c.keys, Reads: c.reads, Theta: c.theta, Budgets: c.budgets, Overhead: c.overhead, Seed: c.seed}
	if c.valueDist == "fixed" {
		s.Values = fmt.Sprintf("fixed %d B", c.value)
		s.Optimum = "Belady's MIN with bypass (exact: every entry weighs the same)"
	} else {
		s.Values = fmt.Sprintf("log-normal, median %d B, sigma 1, cut to [8 B, 64 KiB]", c.value)
		s.Optimum = "Belady by bytes with bypass, a heuristic (evict the furthest next uses until the new entry fits, " +
			"only if all are read after it): a feasible policy, so a lower bound of the true optimum"
	}
	return s
}

// machine is what the results were measured on.
type machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Tree      string `json:"tree"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

func describeMachine(ctx context.Context) machine {
	m := machine{NProc: runtime.NumCPU(), CPUModel: cpuModel(), Kernel: firstLine(readFile("/proc/sys/kernel/osrelease")),
		Go: runtime.Version(), LoadStart: loadavg()}
	rev := firstLine(output(ctx, "git", "rev-parse", "--short", "HEAD"))
	if rev != "?" && strings.TrimSpace(output(ctx, "git", "status", "--porcelain", "--untracked-files=no")) != "" {
		rev += "+dirty"
	}
	m.Tree = rev
	return m
}

func loadavg() string { return benchnode.Loadavg() }

func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "?"
	}
	return line
}

// fmtInt writes n with thousands separators.
func fmtInt[T ~int | ~int64 | ~uint64](n T) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtBytes writes n in B, KiB, MiB or GiB with three significant digits.
func fmtBytes[T ~int | ~int64 | ~uint64 | ~float64](n T) string {
	v := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < 1024 || u == "GiB" {
			switch {
			case u == "B":
				return fmt.Sprintf("%.0f B", v)
			case v < 10:
				return fmt.Sprintf("%.2f %s", v, u)
			case v < 100:
				return fmt.Sprintf("%.1f %s", v, u)
			default:
				return fmt.Sprintf("%.0f %s", v, u)
			}
		}
		v /= 1024
	}
	return ""
}

// fmtUs writes a latency in microseconds as ms or µs.
func fmtUs[T ~int64 | ~float64](us T) string {
	v := float64(us)
	if v >= 1000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

// budgetLabel writes a budget fraction as a percentage ("1%", "12.5%").
func budgetLabel(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f*100), "0"), ".") + "%"
}

func met(ratio float64) string {
	if ratio >= aim {
		return "yes"
	}
	return "no"
}

// writeMarkdown writes the generated section, between the markers.
func writeMarkdown(w io.Writer, res *results) {
	m, s := res.Machine, res.Settings
	fmt.Fprintln(w, markBegin)
	fmt.Fprintln(w, "<!-- Generated by go run ./bench/proxyhit; a rerun replaces everything between the proxyhit markers. -->")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Results of %s UTC\n\n", res.Started.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(w, "Command: `%s` (wall time %.0f s). Full results: `bench/results/proxyhit-latest.json`.\n", res.Command, res.WallSeconds)
	fmt.Fprintf(w, "Machine: %d CPUs (%s), kernel %s, %s, tree %s, load average %s at the start and %s at the end.\n\n",
		m.NProc, m.CPUModel, m.Kernel, m.Go, m.Tree, m.LoadStart, m.LoadEnd)
	if len(res.Sim) > 0 {
		writeSim(w, res.Sim, s)
	}
	if res.Live != nil {
		writeLive(w, res.Live)
	}
	if len(res.Problems) > 0 {
		fmt.Fprintln(w, "#### Problems seen in this run")
		fmt.Fprintln(w)
		for _, p := range res.Problems {
			fmt.Fprintf(w, "- %s\n", cell(p))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, markEnd)
}

func writeSim(w io.Writer, sim []simResult, s settings) {
	fmt.Fprintln(w, "#### Hit rate against the offline optimum")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Data set: %s keys of 10 bytes, values %s; the cache weighs an entry as key + value + %d B (measured), %s in all. "+
		"Budgets are fractions of that weight. Traces:\n\n", fmtInt(s.Keys), s.Values, s.Overhead, fmtBytes(s.DataWeight))
	for _, t := range s.Traces {
		fmt.Fprintf(w, "- %s\n", t)
	}
	fmt.Fprintf(w, "\nproxycache: a real `proxycache.Cache` in a temporary directory under %s (default options but the budget), "+
		"driven as the proxy drives it: `Get`, and on a miss `Admit(key, entry, cache.Applied())`. "+
		"otter: the same W-TinyLFU policy (otter v2, same weights and budget) without Pebble, with its maintenance on a new goroutine "+
		"as in proxycache (otter's default), and inline (`Executor` running it on the caller's goroutine). "+
		"LRU: admits every miss. Static best: the best fixed set of keys for the trace, chosen knowing every key's read count "+
		"(what a perfect LFU converges to on a stationary trace; greedy by reads per byte). Optimum: %s. Ceiling: 1 − distinct keys / reads, the hit rate if only first reads missed. "+
		"Ratio: proxycache ÷ optimum (issue 6 aims at ≥ %.1f); the second half counts only the reads of the trace's second half, "+
		"when the caches are warm.\n\n", s.SimDir, s.Optimum, aim)
	fmt.Fprintln(w, "| trace | budget | proxycache | otter | otter, inline | LRU | static best | optimum | ratio | ratio, 2nd half | ceiling | ≥ 0.9 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range sim {
		entries := ""
		if r.Entries > 0 {
			entries = ", " + fmtInt(r.Entries) + " entries"
		}
		fmt.Fprintf(w, "| %s | %s (%s%s) | %s | %s | %s | %s | %s | %s | **%.3f** | %.3f | %s | %s |\n",
			r.Trace, budgetLabel(r.Budget), fmtBytes(r.BudgetBytes), entries, pct(r.Proxycache.HitRate), pct(r.Otter.HitRate),
			pct(r.OtterSync.HitRate), pct(r.LRU.HitRate), pct(r.Static.HitRate), pct(r.Optimum.HitRate), r.Ratio, r.RatioLate, pct(r.Ceiling), met(r.Ratio))
	}
	fmt.Fprintln(w)
}

func writeLive(w io.Writer, l *liveResult) {
	fmt.Fprintln(w, "#### Read latency at a running proxy")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "root → replica → proxy, separate processes on 127.0.0.1, each with its own data directory. "+
		"%s keys x %d B written through the root (`POST /v1/txn`, 1,000 keys per txn; %.1f s until the proxy applied index %d). "+
		"Proxy: `--cache-size %d` (%s, %.0f%% of the data set as the cache weighs it), `--window-bytes %s`. "+
		"Its filter answered absent keys %.1f s after it caught up (%d probes of absent keys, every 100 ms: %s); then %s hot keys were read twice (second read: %s), "+
		"and %s read in a closed loop, taking the classes in turn, for %.1f s: "+
		"hits (random hot keys), misses (keys never read before, each once), negative lookups (keys never written, each once). "+
		"Latency from sending the request to the end of the answer, by this program's raw HTTP client.\n\n",
		fmtInt(l.Keys), l.Value, l.PrefillSecs, l.LastIndex, l.CacheSize, fmtBytes(l.CacheSize),
		100*l.CacheFraction, l.WindowBytes,
		l.FilterSecs, l.Probes, sortedTiers(l.ProbeTiers), fmtInt(l.HotKeys), sortedTiers(l.WarmTiers), plural(l.Conns, "connection"), l.MeasureSecs)
	fmt.Fprintln(w, "| class | reads | Argent-Tier | p50 | p90 | p99 | p99.9 | max | mean | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range l.Classes {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", c.Class, fmtInt(c.Reads), sortedTiers(c.Tiers),
			fmtUs(c.Lat.P50), fmtUs(c.Lat.P90), fmtUs(c.Lat.P99), fmtUs(c.Lat.P999), fmtUs(c.Lat.Max), fmtUs(c.Lat.Mean), c.Errors)
	}
	fmt.Fprintln(w)
	d := l.Disk
	fmt.Fprintln(w, "#### Bytes on disk after the run")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Each node's data directory after the run: the sum of its files' sizes, the blocks allocated to them (`du`), "+
		"and what the node reports as `argent_disk_bytes` (Pebble's account). "+
		"Replica and root hold all %s keys (%s of keys and values) and their log; the proxy holds what its cache kept "+
		"(`argent_proxy_cache_bytes` %s of a %s budget).\n\n", fmtInt(l.Keys), fmtBytes(l.DataBytes), fmtBytes(d.ProxyCache), fmtBytes(l.CacheSize))
	fmt.Fprintln(w, "| node | file sizes | du | argent_disk_bytes | file sizes ÷ replica's | du ÷ replica's |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	ratio := func(v, of int64) string {
		if of <= 0 || v <= 0 {
			return "?"
		}
		return fmt.Sprintf("%.3f", float64(v)/float64(of))
	}
	alloc := func(v int64) string {
		if v <= 0 {
			return "?"
		}
		return fmtBytes(v)
	}
	fmt.Fprintf(w, "| proxy | %s | %s | %s | %s | %s |\n", fmtBytes(d.Proxy), alloc(d.ProxyAlloc), fmtBytes(d.ProxyPebble),
		ratio(d.Proxy, d.Replica), ratio(d.ProxyAlloc, d.ReplicaAlloc))
	fmt.Fprintf(w, "| replica | %s | %s | %s | 1 | 1 |\n", fmtBytes(d.Replica), alloc(d.ReplicaAlloc), fmtBytes(d.ReplicaPebble))
	fmt.Fprintf(w, "| root | %s | %s | | %s | %s |\n", fmtBytes(d.Root), alloc(d.RootAlloc), ratio(d.Root, d.Replica), ratio(d.RootAlloc, d.ReplicaAlloc))
	fmt.Fprintln(w)
}

// cell makes s safe inside a markdown table cell or list item.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (res *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// updateDocs replaces the proxyhit section of the markdown file at path.
func updateDocs(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(replaceSection(string(b), section)), 0o644)
}

// replaceSection returns doc with its generated section replaced by
// section (see mdsection.Replace).
func replaceSection(doc, section string) string {
	return mdsection.Replace(doc, markBegin, markEnd, section)
}

// plural writes "1 connection" or "2 connections".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmtInt(n) + " " + what + "s"
}
