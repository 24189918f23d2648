package main

import (
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/cachetrace"
	"github.com/argent-kv/argent/bench/internal/numfmt"
)

// Markers of the generated section of docs/benchmarks.md: a rerun replaces
// what lies between them and keeps the hand-written text around them.
const (
	markBegin = "<!-- dc:begin -->"
	markEnd   = "<!-- dc:end -->"
)

// Goals the figures are printed beside.
const (
	goalL3PerDistinct = 1.1  // v2: L3 lookups per distinct key per DC, at most
	goalRatio         = 0.95 // L1+L2 hit rate over the optimum, at least
	goalL2P99         = 1000 // µs: l2 p99 at light load, below
)

// results is everything one run measured; its JSON is
// bench/results/dc-latest.json.
type results struct {
	Started     time.Time         `json:"started"`
	WallSeconds float64           `json:"wall_seconds"`
	Command     string            `json:"command"`
	Machine     benchnode.Machine `json:"machine"`
	Settings    settings          `json:"settings"`
	LoadSecs    float64           `json:"load_seconds"`
	LastIndex   uint64            `json:"last_index"`
	Modes       []*modeResult     `json:"modes"`
	// ReplicaDisk is the bytes of one full replica's data directory at the
	// end of the run: a DC of full replicas holds that many per server.
	ReplicaDisk int64    `json:"replica_disk_bytes"`
	Problems    []string `json:"problems,omitempty"`
}

// settings is the part of the configuration a reader of the results needs.
type settings struct {
	Keys        int     `json:"keys"`
	Value       int     `json:"value_bytes"`
	Proxies     int     `json:"proxies"`
	Budget      float64 `json:"budget_fraction"`   // of DataWeight, per proxy
	CacheSize   int64   `json:"cache_size"`        // each proxy's --cache-size
	Overhead    int64   `json:"entry_overhead"`    // proxycache's, measured
	Entry       int64   `json:"entry_weight"`      // key + value + overhead
	DataWeight  int64   `json:"data_weight_bytes"` // Keys × Entry
	Reads       int     `json:"reads_per_proxy"`   // trace length
	Readers     int     `json:"readers_per_proxy"` // concurrent
	Theta       float64 `json:"theta"`             // Zipf exponent
	Seed        uint64  `json:"seed"`              // of traces and values
	WindowBytes string  `json:"window_bytes"`      // each proxy's --window-bytes
	Distinct    int     `json:"distinct_keys"`     // in all the traces
	LightReads  int     `json:"light_reads"`       // of the light-load phase
	LightRate   float64 `json:"light_rate"`        // its reads per second
	Limit       string  `json:"replay_limit"`      // per mode
}

// modeResult is one mode's DC on the traces.
type modeResult struct {
	Mode        string `json:"mode"`
	Unavailable string `json:"unavailable,omitempty"` // why this build cannot run the mode
	Error       string `json:"error,omitempty"`       // why the mode's nodes did not start

	Reads         int64              `json:"reads"`
	ReplaySecs    float64            `json:"replay_seconds"`
	ReadsPerSec   float64            `json:"reads_per_second"`
	DC            proxyResult        `json:"dc"`
	Proxies       []proxyResult      `json:"proxies"`
	Latency       map[string]latency `json:"latency_us_by_tier"`
	Distinct      int                `json:"distinct_keys"` // read by the DC in the replay
	L3            l3Count            `json:"l3"`
	L3PerDistinct float64            `json:"l3_lookups_per_distinct_key"`
	Optimum       optimumResult      `json:"optimum"`
	Ratio         float64            `json:"ratio"` // L1+L2 hit rate / optimum's
	// Deltas over the replay of the proxies' argent_proxy_reads_* (summed)
	// and of the relay's argent_relay_* counters.
	ProxyMetrics map[string]float64 `json:"proxy_metrics,omitempty"`
	RelayMetrics map[string]float64 `json:"relay_metrics,omitempty"`
	Light        *lightResult       `json:"light_load,omitempty"`
	Closed       *lightResult       `json:"one_at_a_time,omitempty"`
	// QuietWait is how long the light load waited for the DC's processes
	// to go quiet, and QuietCores what they used in the last second.
	QuietWait  float64 `json:"quiet_wait_seconds,omitempty"`
	QuietCores float64 `json:"quiet_cores,omitempty"`
	// Disk is the bytes of the proxies' data directories after the replay
	// (a relay keeps nothing on disk).
	Disk     int64    `json:"disk_bytes"`
	Problems []string `json:"problems,omitempty"`
}

// proxyResult is one proxy's reads, or the DC's.
type proxyResult struct {
	Name      string           `json:"name"`
	Addr      string           `json:"addr,omitempty"`
	Reads     int64            `json:"reads"`
	Distinct  int              `json:"distinct_keys"`
	Tiers     map[string]int64 `json:"tiers"`
	L1        float64          `json:"l1_hit_rate"`  // window + cache + filter, of all reads
	L12       float64          `json:"l12_hit_rate"` // the same and l2
	L3Answers int64            `json:"l3_answers"`   // l3 + replica
	Errors    int64            `json:"errors"`
	Statuses  map[int]int64    `json:"statuses,omitempty"` // other than 200
}

func proxyResultOf(name string, t *tally) proxyResult {
	l1, l12 := t.rates()
	return proxyResult{Name: name, Reads: t.reads, Tiers: t.tiers, L1: l1, L12: l12, L3Answers: t.level(levelL3),
		Errors: t.tiers[tierError], Statuses: t.statuses}
}

// optimumResult is Belady's MIN over the DC's merged trace.
type optimumResult struct {
	Reads       int     `json:"reads"`
	Hits        int     `json:"hits"`
	HitRate     float64 `json:"hit_rate"`
	BudgetBytes int64   `json:"budget_bytes"`
	Entries     int64   `json:"entries"` // that fit
}

// optimumOf replays merged (key numbers below keys, each weighing entry
// bytes) against Belady's MIN with one cache of budget bytes. With equal
// weights it is the exact optimum.
func optimumOf(merged []int32, keys int, entry, budget int64) optimumResult {
	w := make([]int64, keys)
	for i := range w {
		w[i] = entry
	}
	h := cachetrace.Belady(merged, w, budget, len(merged))
	rate, _ := h.Rates(len(merged), len(merged))
	return optimumResult{Reads: len(merged), Hits: h.All, HitRate: rate, BudgetBytes: budget, Entries: budget / entry}
}

// lightResult is the light-load phase.
type lightResult struct {
	Reads   int64              `json:"reads"`
	Rate    float64            `json:"rate"`
	Tiers   map[string]int64   `json:"tiers"`
	Latency map[string]latency `json:"latency_us_by_tier"`
	// Peer is Redis's GET latency on the same keys at the same pace,
	// measured right after; nil without Redis.
	Peer *latency `json:"redis_get_latency_us,omitempty"`
}

// withPeer returns lr's latency by tier with Redis's GETs as one more row.
func (lr *lightResult) withPeer() map[string]latency {
	if lr == nil {
		return nil
	}
	if lr.Peer == nil {
		return lr.Latency
	}
	out := maps.Clone(lr.Latency)
	out[tierRedis] = *lr.Peer
	return out
}

// counterDeltas returns, for every sample whose name starts with prefix,
// the sum over the nodes of after - before. A node without a scrape (nil)
// is left out.
func counterDeltas(before, after []map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for i := range min(len(before), len(after)) {
		if before[i] == nil || after[i] == nil {
			continue
		}
		for k, v := range after[i] {
			if strings.HasPrefix(k, prefix) {
				out[k] += v - before[i][k]
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Formatting of the report's figures: thousands, bytes, latencies in µs,
// shares, table cells and budgets as percentages.
func fmtInt[T ~int | ~int64 | ~uint64](n T) string    { return numfmt.Thousands(int64(n)) }
func fmtBytes[T ~int | ~int64 | ~float64](n T) string { return numfmt.Bytes(float64(n)) }
func fmtUs[T ~int64 | ~float64](us T) string          { return numfmt.Micros(float64(us)) }
func pct(f float64) string                            { return fmt.Sprintf("%.1f%%", f*100) }
func cell(s string) string                            { return strings.ReplaceAll(s, "|", `\|`) }
func budgetLabel(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f*100), "0"), ".") + "%"
}

// tierList writes tier counts down the read path: "cache 9,120, l3 880".
func tierList(m map[string]int64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	tierOrder(names)
	parts := make([]string, len(names))
	for i, k := range names {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = name + " " + fmtInt(m[k])
	}
	return strings.Join(parts, ", ")
}

// available returns the modes that ran.
func (res *results) available() []*modeResult {
	var out []*modeResult
	for _, m := range res.Modes {
		if m.Unavailable == "" && m.Error == "" {
			out = append(out, m)
		}
	}
	return out
}

// writeMarkdown writes the generated section, between the markers.
func writeMarkdown(w io.Writer, res *results) {
	m, s := res.Machine, res.Settings
	fmt.Fprintln(w, markBegin)
	fmt.Fprintln(w, "<!-- Generated by bench/dc; a rerun replaces everything between the dc markers. -->")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Results of %s UTC\n\n", res.Started.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(w, "Command: `%s` (wall time %.0f s). Full results: `bench/results/dc-latest.json`.\n", res.Command, res.WallSeconds)
	fmt.Fprintf(w, "%s\n\n", m.Line())
	fmt.Fprintf(w, "%s keys of 10 B with values of %d B, written through the root (%.1f s to index %d) and applied by two replicas. "+
		"The cache weighs a key at %d B (key, value and %d B of proxycache's overhead), %s in all; each of the %d proxies has "+
		"`--cache-size %d` (%s, %s) and `--window-bytes %s`. "+
		"Each proxy reads %s keys drawn from one Zipf(%.2f) popularity (the same ranking for all, independent draws; %s distinct keys in all), "+
		"%d readers per proxy at once, at most %s per mode. "+
		"L1: answers from the proxy's own window, cache or filter (`Argent-Tier` window, cache, filter). L2: a DC peer's shard (`l2`). "+
		"L3: a replica (`l3`; `replica` from a proxy that predates the DC tier). Failed reads count as misses. "+
		"Optimum: Belady's MIN over the DC's reads merged in the order they were sent, with one cache of the DC's combined budget "+
		"(%d × %s = %s, every entry the same weight, so exact).\n\n",
		fmtInt(s.Keys), s.Value, res.LoadSecs, res.LastIndex, s.Entry, s.Overhead, fmtBytes(s.DataWeight), s.Proxies,
		s.CacheSize, fmtBytes(s.CacheSize), budgetLabel(s.Budget), s.WindowBytes,
		fmtInt(s.Reads), s.Theta, fmtInt(s.Distinct), s.Readers, s.Limit,
		s.Proxies, fmtBytes(s.CacheSize), fmtBytes(int64(s.Proxies)*s.CacheSize))
	for _, mr := range res.Modes {
		switch {
		case mr.Unavailable != "":
			fmt.Fprintf(w, "**%s: not available in this build** (%s).\n\n", mr.Mode, cell(mr.Unavailable))
		case mr.Error != "":
			fmt.Fprintf(w, "**%s: did not start**: %s\n\n", mr.Mode, cell(firstLine(mr.Error)))
		}
	}
	ran := res.available()
	if len(ran) > 0 {
		writeGoals(w, res.Modes)
		writeDC(w, ran)
		writeProxies(w, ran)
		writeLatency(w, ran)
		writeLight(w, ran, s)
		writeDisk(w, ran, res.ReplicaDisk, s.Proxies)
	}
	var problems []string
	problems = append(problems, res.Problems...)
	for _, mr := range res.Modes {
		for _, p := range mr.Problems {
			problems = append(problems, mr.Mode+": "+p)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(w, "#### Problems seen in this run")
		fmt.Fprintln(w)
		for _, p := range problems {
			fmt.Fprintf(w, "- %s\n", cell(p))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, markEnd)
}

// writeGoals writes the goals beside each mode's figures; a mode that did
// not run gets a dash and says why below the table.
func writeGoals(w io.Writer, modes []*modeResult) {
	fmt.Fprintln(w, "#### Goals")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| figure | goal |")
	for _, mr := range modes {
		fmt.Fprintf(w, " %s |", mr.Mode)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|---|")
	for range modes {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	row := func(name, goal string, fig func(mr *modeResult) string) {
		fmt.Fprintf(w, "| %s | %s |", name, goal)
		for _, mr := range modes {
			if mr.Unavailable != "" || mr.Error != "" {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %s |", fig(mr))
		}
		fmt.Fprintln(w)
	}
	row("L3 lookups per distinct key, per DC", fmt.Sprintf("v2 ≤ %.1f (v1.5: up to %d)", goalL3PerDistinct, maxProxies(modes)), func(mr *modeResult) string {
		if mr.Mode != modeV2 {
			return fmt.Sprintf("%.2f", mr.L3PerDistinct)
		}
		return fmt.Sprintf("%.2f (%s)", mr.L3PerDistinct, met(mr.L3PerDistinct <= goalL3PerDistinct))
	})
	row("L1+L2 hit rate ÷ optimum", fmt.Sprintf("≥ %.2f", goalRatio), func(mr *modeResult) string {
		return fmt.Sprintf("%.3f (%s)", mr.Ratio, met(mr.Ratio >= goalRatio))
	})
	l2p99 := func(phase func(mr *modeResult) *lightResult) func(mr *modeResult) string {
		return func(mr *modeResult) string {
			lr := phase(mr)
			if lr == nil {
				return "not run"
			}
			l, ok := lr.Latency[tierL2]
			if !ok || l.N == 0 {
				return "no l2 answers"
			}
			fig := fmt.Sprintf("%s (%s)", fmtUs(l.P99), met(l.P99 < goalL2P99))
			if lr.Peer != nil {
				fig += fmt.Sprintf("; Redis GET, same pace: %s", fmtUs(lr.Peer.P99))
			}
			return fig
		}
	}
	row("l2 p99 at light load, paced", fmt.Sprintf("< %s", fmtUs(int64(goalL2P99))), l2p99(func(mr *modeResult) *lightResult { return mr.Light }))
	row("l2 p99 at light load, one at a time", fmt.Sprintf("< %s", fmtUs(int64(goalL2P99))), l2p99(func(mr *modeResult) *lightResult { return mr.Closed }))
	fmt.Fprintln(w)
}

// met says whether a goal is met.
func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func maxProxies(modes []*modeResult) int {
	n := 0
	for _, mr := range modes {
		n = max(n, len(mr.Proxies))
	}
	return n
}

func writeDC(w io.Writer, modes []*modeResult) {
	fmt.Fprintln(w, "#### The DC")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | reads | reads/s | L1 | L1+L2 | L3 answers | L3 lookups | distinct keys | L3 lookups ÷ distinct | optimum | L1+L2 ÷ optimum | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, mr := range modes {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | **%.2f** | %s | **%.3f** | %s |\n", mr.Mode, fmtInt(mr.Reads),
			fmtInt(int64(mr.ReadsPerSec)), pct(mr.DC.L1), pct(mr.DC.L12), fmtInt(mr.DC.L3Answers), fmtInt(int64(mr.L3.Lookups)),
			fmtInt(mr.Distinct), mr.L3PerDistinct, pct(mr.Optimum.HitRate), mr.Ratio, fmtInt(mr.DC.Errors))
	}
	fmt.Fprintln(w)
	for _, mr := range modes {
		fmt.Fprintf(w, "- %s: L3 lookups from %s. Optimum: %s hits of %s reads with room for %s entries.\n",
			mr.Mode, mr.L3.Source, fmtInt(mr.Optimum.Hits), fmtInt(mr.Optimum.Reads), fmtInt(mr.Optimum.Entries))
	}
	fmt.Fprintln(w)
}

func writeProxies(w io.Writer, modes []*modeResult) {
	fmt.Fprintln(w, "#### Each proxy")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | proxy | reads | distinct keys | L1 | L1+L2 | L3 answers | errors | Argent-Tier |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, mr := range modes {
		for _, p := range append(append([]proxyResult{}, mr.Proxies...), mr.DC) {
			name := p.Name
			if name == "DC" {
				name = "**DC**"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mr.Mode, name, fmtInt(p.Reads), fmtInt(p.Distinct),
				pct(p.L1), pct(p.L12), fmtInt(p.L3Answers), fmtInt(p.Errors), tierList(p.Tiers))
		}
	}
	fmt.Fprintln(w)
}

func writeLatency(w io.Writer, modes []*modeResult) {
	fmt.Fprintln(w, "#### Latency by tier, under the replay's load")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "From sending the request to the end of the answer, by this program's raw HTTP client, all readers at once.")
	fmt.Fprintln(w)
	writeLatencyTable(w, modes, func(mr *modeResult) map[string]latency { return mr.Latency })
}

func writeLatencyTable(w io.Writer, modes []*modeResult, of func(*modeResult) map[string]latency) {
	fmt.Fprintln(w, "| mode | tier | reads | p50 | p90 | p99 | max | mean |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, mr := range modes {
		lat := of(mr)
		names := make([]string, 0, len(lat))
		for k := range lat {
			names = append(names, k)
		}
		tierOrder(names)
		for _, k := range names {
			l := lat[k]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", mr.Mode, k, fmtInt(l.N), fmtUs(l.P50), fmtUs(l.P90),
				fmtUs(l.P99), fmtUs(l.Max), fmtUs(l.Mean))
		}
	}
	fmt.Fprintln(w)
}

func writeLight(w io.Writer, modes []*modeResult, s settings) {
	var ran []*modeResult
	for _, mr := range modes {
		if mr.Light != nil {
			ran = append(ran, mr)
		}
	}
	if len(ran) == 0 {
		return
	}
	fmt.Fprintln(w, "#### Latency by tier at light load")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "After the replay, once the DC's processes are quiet (under %.2f cores together, waiting at most %s): one reader, %s reads at %.0f per second, from the proxies in turn, keys drawn from the same popularity. "+
		"Right after, the same keys at the same pace as GETs to a Redis holding them (`%s`): one round trip into one process, what the machine lets any read cost; an L1 hit crosses one process, an L2 hit two.\n\n",
		quietCores, quietLimit, fmtInt(s.LightReads), s.LightRate, tierRedis)
	writeLatencyTable(w, ran, func(mr *modeResult) map[string]latency { return mr.Light.withPeer() })
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Then the same %s reads one at a time, each sent as soon as the last was answered. On a machine whose idle CPUs wake slowly (a VM), the pauses of the paced phase cost every read a wake-up in each process it crosses, and this phase shows the tiers without that cost.\n\n", fmtInt(s.LightReads))
	writeLatencyTable(w, ran, func(mr *modeResult) map[string]latency { return mr.Closed.withPeer() })
}

// writeDisk compares the disk the DC's servers take with a DC whose
// servers each hold a full replica, what a DC took before proxies.
func writeDisk(w io.Writer, modes []*modeResult, replica int64, proxies int) {
	if replica <= 0 {
		return
	}
	fmt.Fprintln(w, "#### Disk per DC")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The data directories of the DC's %d servers after the replay, against %d full replicas (one replica's directory, %s, times %d).\n\n",
		proxies, proxies, fmtBytes(replica), proxies)
	fmt.Fprintln(w, "| DC | disk | ÷ full replicas |")
	fmt.Fprintln(w, "|---|---|---|")
	full := replica * int64(proxies)
	fmt.Fprintf(w, "| %d full replicas | %s | 1 |\n", proxies, fmtBytes(full))
	for _, mr := range modes {
		fmt.Fprintf(w, "| %s: %d proxies | %s | %.3f |\n", mr.Mode, proxies, fmtBytes(mr.Disk), float64(mr.Disk)/float64(full))
	}
	fmt.Fprintln(w)
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
