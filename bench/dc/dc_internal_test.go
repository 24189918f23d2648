package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

func TestMakeTraces(t *testing.T) {
	const keys, proxies, reads = 1000, 4, 20_000
	pop := newPopularity(keys, 0.99, 7)
	a, b := makeTraces(pop, proxies, reads, 7), makeTraces(newPopularity(keys, 0.99, 7), proxies, reads, 7)
	if len(a) != proxies {
		t.Fatalf("%d traces, want %d", len(a), proxies)
	}
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
	for p := range a {
		if len(a[p]) != reads || !slices.Equal(a[p], b[p]) {
			t.Fatalf("trace %d: not %d reads, or not the same for the same seed", p, reads)
		}
		if p > 0 && slices.Equal(a[p][:100], a[0][:100]) {
			t.Errorf("traces 0 and %d start with the same draws: not independent", p)
		}
		// One popularity: every proxy's hottest key is rank 0's key.
		if h := hottest(a[p]); h != pop.perm[0] {
			t.Errorf("trace %d: hottest key %d, want rank 0's key %d", p, h, pop.perm[0])
		}
	}
	if c := makeTraces(newPopularity(keys, 0.99, 8), 1, 100, 8); slices.Equal(c[0], a[0][:100]) {
		t.Error("another seed gave the same trace")
	}
}

func TestDistinct(t *testing.T) {
	for _, tt := range []struct {
		name   string
		traces [][]int32
		want   int
	}{
		{"Empty", nil, 0},
		{"One", [][]int32{{0, 1, 0, 2}}, 3},
		{"Union", [][]int32{{0, 1}, {1, 2}, {3}}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := distinct(4, tt.traces...); got != tt.want {
				t.Errorf("distinct = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAppendKeyName(t *testing.T) {
	for _, i := range []int{0, 7, 12345, 99_999_999} {
		if got, want := string(appendKeyName(nil, i)), keyName(i); got != want {
			t.Errorf("appendKeyName(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestLevelOf(t *testing.T) {
	for _, tt := range []struct {
		tier string
		want int
	}{
		{"window", levelL1}, {"cache", levelL1}, {"filter", levelL1},
		{"l2", levelL2}, {"l3", levelL3}, {"replica", levelL3},
		{"root", levelOther}, {"", levelOther}, {tierError, levelOther},
	} {
		if got := levelOf(tt.tier); got != tt.want {
			t.Errorf("levelOf(%q) = %d, want %d", tt.tier, got, tt.want)
		}
	}
}

func TestTally(t *testing.T) {
	a, b := newTally(), newTally()
	for _, r := range []struct {
		status int
		tier   string
		err    error
		us     int64
	}{
		{200, "cache", nil, 50}, {200, "window", nil, 40}, {200, "l2", nil, 300},
		{200, "l3", nil, 900}, {200, "replica", nil, 800},
	} {
		a.record(r.status, r.tier, r.err, r.us)
	}
	b.record(200, "cache", nil, 60)
	b.record(503, "cache", nil, 10)       // not 200: a failure, whatever the tier
	b.record(0, "", errors.New("eof"), 0) // no answer
	b.record(200, "filter", nil, 0)       // below the histogram's floor
	a.merge(b)
	if a.reads != 9 {
		t.Fatalf("reads = %d, want 9", a.reads)
	}
	want := map[string]int64{"cache": 2, "window": 1, "filter": 1, "l2": 1, "l3": 1, "replica": 1, tierError: 2}
	for k, v := range want {
		if a.tiers[k] != v {
			t.Errorf("tiers[%s] = %d, want %d (all: %v)", k, a.tiers[k], v, a.tiers)
		}
	}
	if a.statuses[503] != 1 {
		t.Errorf("statuses = %v, want one 503", a.statuses)
	}
	if got := a.level(levelL3); got != 2 {
		t.Errorf("L3 answers = %d, want 2 (l3 and replica)", got)
	}
	l1, l12 := a.rates()
	if l1 != 4.0/9 || l12 != 5.0/9 {
		t.Errorf("rates = %v, %v, want 4/9, 5/9", l1, l12)
	}
	lat := a.latencies()
	if lat["cache"].N != 2 || lat["l2"].P50 < 299 || lat["l2"].P50 > 301 || lat[tierError].N != 2 {
		t.Errorf("latencies = %+v", lat)
	}
	pr := proxyResultOf("p", a)
	if pr.Reads != 9 || pr.L3Answers != 2 || pr.Errors != 2 || pr.L1 != l1 {
		t.Errorf("proxyResultOf = %+v", pr)
	}
}

func TestTierOrder(t *testing.T) {
	got := []string{tierError, "root", "l3", "cache", "l2", "window"}
	tierOrder(got)
	if want := []string{"window", "cache", "l2", "l3", "root", tierError}; !slices.Equal(got, want) {
		t.Errorf("tierOrder = %v, want %v", got, want)
	}
}

func TestL3Lookups(t *testing.T) {
	rep := func(v float64) map[string]float64 { return map[string]float64{metricReplicaLookups: v} }
	relay := func(v float64) map[string]float64 { return map[string]float64{metricRelayUpstream: v} }
	for _, tt := range []struct {
		name           string
		before, after  []map[string]float64
		relayB, relayA map[string]float64
		answers        int64
		want           float64
		source         string
	}{
		{"Replicas", []map[string]float64{rep(10), rep(5)}, []map[string]float64{rep(110), rep(25)}, relay(0), relay(999), 7, 120, "replicas'"},
		{"OneReplicaWithout", []map[string]float64{rep(10), {}}, []map[string]float64{rep(110), {}}, relay(1), relay(51), 7, 50, "relay's"},
		{"ScrapeFailed", []map[string]float64{rep(10), nil}, []map[string]float64{rep(110), rep(3)}, nil, nil, 7, 7, "reads answered"},
		{"Fallback", []map[string]float64{{}, {}}, []map[string]float64{{}, {}}, nil, nil, 7, 7, "reads answered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := l3Lookups(tt.before, tt.after, tt.relayB, tt.relayA, tt.answers)
			if got.Lookups != tt.want || !strings.Contains(got.Source, tt.source) {
				t.Errorf("l3Lookups = %+v, want %v from %q", got, tt.want, tt.source)
			}
		})
	}
}

func TestCounterDeltas(t *testing.T) {
	before := []map[string]float64{{"argent_proxy_reads_cache_total": 5, "other": 1}, nil}
	after := []map[string]float64{{"argent_proxy_reads_cache_total": 15, "argent_proxy_reads_l2_total": 3, "other": 9}, {"argent_proxy_reads_cache_total": 100}}
	got := counterDeltas(before, after, "argent_proxy_reads_")
	if len(got) != 2 || got["argent_proxy_reads_cache_total"] != 10 || got["argent_proxy_reads_l2_total"] != 3 {
		t.Errorf("counterDeltas = %v", got)
	}
	if got := counterDeltas(nil, nil, "x"); got != nil {
		t.Errorf("counterDeltas of nothing = %v, want nil", got)
	}
}

// TestOptimumOf checks the optimum over a DC's merged trace: reads of
// several proxies interleaved share one cache of the combined budget.
func TestOptimumOf(t *testing.T) {
	for _, tt := range []struct {
		name   string
		merged []int32
		budget int64 // in entries of 10 B
		hits   int
	}{
		// Two proxies each reading 0 and 1 twice: room for both, so every
		// second read hits wherever it was sent.
		{"SharedRoom", []int32{0, 1, 1, 0, 0, 1, 1, 0}, 2, 6},
		// Room for one: keep the key read next (bypass the other).
		{"OneSlot", []int32{0, 1, 0, 1, 0}, 1, 2},
		{"NoRoom", []int32{0, 0, 0}, 0, 0},
		{"Empty", nil, 4, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := optimumOf(tt.merged, 4, 10, tt.budget*10)
			if got.Hits != tt.hits || got.Reads != len(tt.merged) || got.Entries != tt.budget {
				t.Errorf("optimumOf = %+v, want %d hits", got, tt.hits)
			}
			if len(tt.merged) > 0 && got.HitRate != float64(tt.hits)/float64(len(tt.merged)) {
				t.Errorf("hit rate %v", got.HitRate)
			}
		})
	}
}

func TestExitReason(t *testing.T) {
	for _, tt := range []struct{ name, log, want string }{
		{"UnknownSubcommand", "argent: unexpected argument relay (see argent --help)", "argent: unexpected argument relay (see argent --help)"},
		{"UnknownFlag", "usage...\nargent: error: unknown flag --dc-peers\n", "argent: error: unknown flag --dc-peers"},
		{"LastLine", "starting\nbind: address in use", "bind: address in use"},
		{"Nothing", "", "no output"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitReason(tt.log); got != tt.want {
				t.Errorf("exitReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProxyArgs(t *testing.T) {
	peers := []string{"a:1", "b:2"}
	got := proxyArgs(modeV15, 1000, "64KiB", "r1:1,r2:2", "", peers)
	want := []string{"--upstream", "r1:1,r2:2", "--cache-size", "1000", "--window-bytes", "64KiB"}
	if !slices.Equal(got, want) {
		t.Errorf("v1.5: %q, want %q", got, want)
	}
	got = proxyArgs(modeV2, 1000, "64KiB", "r1:1,r2:2", "relay:3", peers)
	want = []string{"--upstream", "relay:3", "--dc", "dc1", "--dc-peers", "a:1,b:2", "--cache-size", "1000", "--window-bytes", "64KiB"}
	if !slices.Equal(got, want) {
		t.Errorf("v2: %q, want %q", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-reads", "1000", "-modes", "v2"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if c.keys != 20_000 || c.reads != 1000 || c.lightReads != 300 || c.limit != time.Minute || !slices.Equal(c.modes, []string{"v2"}) {
		t.Errorf("quick: %+v", c)
	}
	c, err = parseFlags(nil, &strings.Builder{})
	if err != nil || c.keys != 200_000 || c.value != 100 || c.proxies != 8 || c.budget != 0.05 ||
		!slices.Equal(c.modes, []string{"v1.5", "v2"}) {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-modes", "v3"}, {"-budget", "0"}, {"-proxies", "0"}, {"extra"}, {"-light-rate", "0"}} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestShellJoin(t *testing.T) {
	if got, want := shellJoin([]string{"-docs", "", "-modes", "v1.5", "a b"}), `-docs '' -modes v1.5 'a b'`; got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}

func sampleResults() *results {
	v15 := &modeResult{Mode: modeV15, Reads: 80_000, ReplaySecs: 10, ReadsPerSec: 8000, Distinct: 10_000,
		DC: proxyResult{Name: "DC", Reads: 80_000, Distinct: 10_000, Tiers: map[string]int64{"cache": 60_000, "replica": 20_000},
			L1: 0.75, L12: 0.75, L3Answers: 20_000},
		Proxies: []proxyResult{{Name: "proxy1", Reads: 10_000, Distinct: 3000, Tiers: map[string]int64{"cache": 7500, "replica": 2500},
			L1: 0.75, L12: 0.75, L3Answers: 2500}},
		Latency:       map[string]latency{"cache": {N: 60_000, P50: 48, P99: 1500}, "replica": {N: 20_000, P50: 400, P99: 4420}},
		L3:            l3Count{Lookups: 20_000, Source: "reads answered l3 or replica at the proxies"},
		L3PerDistinct: 2,
		Optimum:       optimumResult{Reads: 80_000, Hits: 68_000, HitRate: 0.85, Entries: 8000},
		Ratio:         0.75 / 0.85,
		Light:         &lightResult{Reads: 100, Rate: 200, Tiers: map[string]int64{"cache": 100}, Latency: map[string]latency{"cache": {N: 100, P50: 30, P99: 90}}},
		Problems:      []string{"proxy3 exited | oops"},
	}
	v2 := &modeResult{Mode: modeV2, Unavailable: "relay exited at start: argent: unexpected argument relay"}
	return &results{Started: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC), WallSeconds: 120, Command: "cd bench && go run ./dc",
		Machine:  benchnode.Machine{NProc: 2, CPUModel: "AMD EPYC", Tree: "abc1234"},
		Settings: settings{Keys: 200_000, Value: 100, Proxies: 8, Budget: 0.05, CacheSize: 1_580_000, Entry: 158, Overhead: 48, Readers: 3, Reads: 10_000, Theta: 0.99, WindowBytes: "64KiB", LightReads: 100, LightRate: 200},
		Modes:    []*modeResult{v15, v2}}
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	writeMarkdown(&b, sampleResults())
	md := b.String()
	for _, want := range []string{
		"**v2: not available in this build** (relay exited at start: argent: unexpected argument relay).",
		"| figure | goal | v1.5 | v2 |",
		"| L3 lookups per distinct key, per DC | v2 ≤ 1.1 (v1.5: up to 1) | 2.00 | – |",
		"| L1+L2 hit rate ÷ optimum | ≥ 0.95 | 0.882 (not met) | – |",
		"| l2 p99 at light load, paced | < 1.00 ms | no l2 answers | – |",
		"| v1.5 | 80,000 | 8,000 | 75.0% | 75.0% | 20,000 | 20,000 | 10,000 | **2.00** | 85.0% | **0.882** | 0 |",
		"| v1.5 | proxy1 | 10,000 | 3,000 | 75.0% | 75.0% | 2,500 | 0 | cache 7,500, replica 2,500 |",
		"| v1.5 | **DC** | 80,000 |",
		"| v1.5 | replica | 20,000 | 400 µs |",
		"| v1.5 | cache | 100 | 30 µs |",
		"- v1.5: L3 lookups from reads answered l3 or replica at the proxies.",
		`- v1.5: proxy3 exited \| oops`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.HasPrefix(md, markBegin) || !strings.HasSuffix(md, markEnd+"\n") {
		t.Error("markdown is not enclosed in the markers")
	}
}

// TestWriteMarkdown_Goals checks the goals' verdicts when v2 ran.
func TestWriteMarkdown_Goals(t *testing.T) {
	res := sampleResults()
	v2 := *res.Modes[0]
	v2.Mode, v2.L3PerDistinct, v2.Ratio = modeV2, 1.04, 0.97
	v2.Light = &lightResult{Reads: 100, Latency: map[string]latency{"l2": {N: 40, P50: 300, P99: 800}}}
	res.Modes[1] = &v2
	var b strings.Builder
	writeMarkdown(&b, res)
	md := b.String()
	for _, want := range []string{
		"| 2.00 | 1.04 (met) |",
		"| 0.882 (not met) | 0.970 (met) |",
		"| no l2 answers | 800 µs (met) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "not available") {
		t.Error("v2 said to be unavailable")
	}
}

// TestWriteDisk compares each mode's proxies with a DC of full replicas.
func TestWriteDisk(t *testing.T) {
	var b strings.Builder
	writeDisk(&b, []*modeResult{{Mode: modeV15, Disk: 4 << 20}, {Mode: modeV2, Disk: 8 << 20}}, 10<<20, 8)
	for _, want := range []string{"| 8 full replicas | 80.0 MiB | 1 |", "| v1.5: 8 proxies | 4.00 MiB | 0.050 |", "| v2: 8 proxies | 8.00 MiB | 0.100 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("disk table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeDisk(&b, nil, 0, 8)
	if b.Len() != 0 {
		t.Errorf("a table without the replica's size: %q", b.String())
	}
}
