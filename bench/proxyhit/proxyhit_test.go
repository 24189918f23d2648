package main

import (
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/cachetrace"
)

// unit returns n weights of 1.
func unit(n int) []int64 {
	w := make([]int64, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// tr turns "ABAC" into key numbers 0, 1, 0, 2.
func tr(s string) []int32 {
	out := make([]int32, len(s))
	for i, c := range s {
		out[i] = int32(c - 'A')
	}
	return out
}

// TestBaselines_BruteForce checks on random small traces that the online
// baselines never score above the optimum.
func TestBaselines_BruteForce(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 200 {
		keys := 2 + r.IntN(4)
		trace := make([]int32, 4+r.IntN(11))
		for i := range trace {
			trace[i] = int32(r.IntN(keys))
		}
		w := unit(keys)
		for i := range w {
			w[i] = int64(1 + r.IntN(3))
		}
		budget := int64(1 + r.IntN(2*keys))
		want := cachetrace.BruteForce(trace, w, budget)
		if s := staticBest(trace, w, budget, len(trace)).All; s > want {
			t.Fatalf("trace %v, weights %v, budget %d: static best %d hits, above the optimum %d", trace, w, budget, s, want)
		}
		if l := lru(trace, w, budget, len(trace)).All; l > want {
			t.Fatalf("trace %v, weights %v, budget %d: LRU %d hits, above the optimum %d", trace, w, budget, l, want)
		}
	}
}

func TestStaticBest(t *testing.T) {
	// Counts: A 3, B 2, C 4; room for two: C and A, minus first reads.
	trace := tr("AAABBCCCC")
	if got := staticBest(trace, unit(3), 2, 4); got != (cachetrace.Hits{All: 5, Late: 3}) {
		t.Errorf("staticBest = %+v, want 5 hits, 3 late (C at 6, 7, 8)", got)
	}
	// By reads per byte: C weighs 4 (1 read per byte), A and B 1.
	if got := staticBest(trace, []int64{1, 1, 4}, 4, 9); got.All != 3 {
		t.Errorf("staticBest weighted = %+v, want 3 hits (A and B)", got)
	}
}

func TestLRU(t *testing.T) {
	// Room for two: A, B miss; A hits; C evicts B; B misses, evicts A.
	if got := lru(tr("ABACBA"), unit(3), 2, 6); got.All != 1 {
		t.Errorf("lru = %+v, want 1 hit", got)
	}
	if got := lru(tr("ABAB"), []int64{1, 3}, 2, 4); got.All != 1 {
		t.Errorf("lru with a key above the budget = %+v, want 1 hit", got)
	}
}

func TestMakeTrace(t *testing.T) {
	const keys, reads = 500, 100_000
	hottest := func(trace []int32) int32 {
		c := make([]int, keys)
		best := int32(0)
		for _, k := range trace {
			if k < 0 || k >= keys {
				t.Fatalf("key %d out of range", k)
			}
			c[k]++
			if c[k] > c[best] {
				best = k
			}
		}
		return best
	}
	spec := traceSpec{Name: "zipf", Theta: 0.99, Reads: reads, Phases: 1, Seed: 7}
	a, b := makeTrace(keys, spec), makeTrace(keys, spec)
	if len(a) != reads || hottest(a) != hottest(b) || distinct(a, keys) != distinct(b, keys) {
		t.Fatal("makeTrace is not deterministic for a seed")
	}
	// Shifting: each half is one phase; the hottest key of the second
	// half is the key of rank Shift in the first.
	shift := traceSpec{Name: "zipf-shift", Theta: 0.99, Reads: reads, Phases: 2, Shift: 50, Seed: 7}
	s := makeTrace(keys, shift)
	h0, h1 := hottest(s[:reads/2]), hottest(s[reads/2:])
	if h0 == h1 {
		t.Fatalf("the hot key did not move: %d", h0)
	}
	// Keys by frequency in the first half: h1 should be about 51st.
	c := make([]int, keys)
	for _, k := range s[:reads/2] {
		c[k]++
	}
	above := 0
	for k := range c {
		if c[k] > c[h1] {
			above++
		}
	}
	if above < 35 || above > 70 {
		t.Errorf("second half's hottest key was %dth in the first half, want about the 51st", above+1)
	}
	if d := distinct(tr("ABAC"), 3); d != 3 {
		t.Errorf("distinct = %d", d)
	}
}

func TestValueSizes(t *testing.T) {
	f, err := valueSizes(10, "fixed", 256, 1)
	if err != nil || f[0] != 256 || f[9] != 256 {
		t.Fatalf("fixed: %v, %v", f, err)
	}
	l, err := valueSizes(20_001, "lognormal", 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	below := 0
	for _, v := range l {
		if v < 8 || v > 64<<10 {
			t.Fatalf("size %d out of bounds", v)
		}
		if v < 256 {
			below++
		}
	}
	if below < 9_500 || below > 10_500 {
		t.Errorf("%d of 20,001 sizes below the median 256", below)
	}
	if _, err := valueSizes(1, "zipf", 1, 1); err == nil {
		t.Error("unknown distribution accepted")
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{fmtInt(1234567), "1,234,567"}, {fmtInt(12), "12"}, {fmtInt(-1000), "-1,000"},
		{fmtBytes(512), "512 B"}, {fmtBytes(3 << 20), "3.00 MiB"}, {fmtBytes(int64(307 << 10)), "307 KiB"},
		{budgetLabel(0.01), "1%"}, {budgetLabel(0.125), "12.5%"}, {budgetLabel(0.2), "20%"},
		{fmtUs(int64(48)), "48 µs"}, {fmtUs(int64(4420)), "4.42 ms"},
		{pct(0.5618), "56.2%"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func sampleResults() *results {
	return &results{
		Started: time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC), WallSeconds: 150, Command: "cd bench && go run ./proxyhit",
		Machine:  benchnode.Machine{NProc: 2, CPUModel: "AMD EPYC", Tree: "abc1234"},
		Settings: settings{Keys: 100_000, Values: "fixed 256 B", Overhead: 48, DataWeight: 31_400_000, Optimum: "Belady", Traces: []string{"zipf: Zipf(0.99)"}},
		Sim: []simResult{
			{Trace: "zipf", Budget: 0.01, BudgetBytes: 314_000, Entries: 1000, Reads: 2_000_000, Ceiling: 0.95,
				Proxycache: policyResult{HitRate: 0.56}, Optimum: policyResult{HitRate: 0.65}, Ratio: 0.56 / 0.65, RatioLate: 0.85},
			{Trace: "zipf", Budget: 0.2, BudgetBytes: 6_280_000, Entries: 20_000, Reads: 2_000_000, Ceiling: 0.95,
				Proxycache: policyResult{HitRate: 0.82}, Optimum: policyResult{HitRate: 0.89}, Ratio: 0.82 / 0.89, RatioLate: 0.92},
		},
		Live: &liveResult{Keys: 100_000, Value: 256, DataBytes: 26_600_000, CacheSize: 3_140_000, CacheFraction: 0.1, WindowBytes: "64KiB",
			HotKeys: 1000, Conns: 1, WarmTiers: map[string]int{"cache": 1000},
			Classes: []classResult{{Class: "hit", Expected: "cache", Reads: 20_000, Tiers: map[string]int{"cache": 19_997, "replica": 3},
				Lat: latency{P50: 48, P90: 102, P99: 171, P999: 501, Max: 4420, Mean: 61}}},
			Disk: diskResult{Proxy: 1 << 20, Replica: 10 << 20, Root: 10 << 20, ProxyAlloc: 1 << 20, ReplicaAlloc: 100 << 20}},
		Problems: []string{"hit reads: 3 of 20000 answered by another tier | x"},
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	writeMarkdown(&b, sampleResults())
	md := b.String()
	for _, want := range []string{
		markBegin + "\n", markEnd + "\n",
		"| zipf | 1% (307 KiB, 1,000 entries) | 56.0% |",
		"| **0.862** | 0.850 | 95.0% | no |",
		"| **0.921** | 0.920 | 95.0% | yes |",
		"| hit | 20,000 | cache 19,997, replica 3 | 48 µs | 102 µs | 171 µs | 501 µs | 4.42 ms | 61 µs | 0 |",
		"| proxy | 1.00 MiB | 1.00 MiB |",
		"| 0.100 | 0.010 |",
		`another tier \| x`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.HasPrefix(md, markBegin) || !strings.HasSuffix(md, markEnd+"\n") {
		t.Error("markdown is not enclosed in the markers")
	}
}

func TestReplaceSection(t *testing.T) {
	section := markBegin + "\nnew\n" + markEnd + "\n"
	doc := "# B\n\nbefore\n" + markBegin + "\nold\n" + markEnd + "\nafter\n"
	if got, want := replaceSection(doc, section), "# B\n\nbefore\n"+markBegin+"\nnew\n"+markEnd+"\nafter\n"; got != want {
		t.Errorf("replace:\n%q\nwant\n%q", got, want)
	}
	if got, want := replaceSection("# B", section), "# B\n\n"+section; got != want {
		t.Errorf("append:\n%q\nwant\n%q", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-reads", "1000"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if c.keys != 20_000 || c.reads != 1000 || c.count != 2_000 || c.shift != 200 || len(c.budgets) != 3 || c.budgets[1] != 0.10 {
		t.Errorf("quick: %+v", c)
	}
	if len(c.traces()) != 2 || c.traces()[1].Shift != 200 {
		t.Errorf("traces: %+v", c.traces())
	}
	c, err = parseFlags(nil, &strings.Builder{})
	if err != nil || c.keys != 100_000 || c.reads != 2_000_000 || c.shift != 1000 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-budgets", "0.1,2"}, {"-theta", "0"}, {"extra"}, {"-conns", "0"}} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
