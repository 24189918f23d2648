package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtMs(0.1234), "0.123"},
		{fmtMs(1.234), "1.23"},
		{fmtMs(12.34), "12.3"},
		{fmtMs(123.4), "123"},
		{fmtCount(0), "0"},
		{fmtCount(999.6), "1,000"},
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(-4500), "-4,500"},
		{fmtRatio(4, 1), "4.00×"},
		{fmtRatio(1, 3), "0.33×"},
		{fmtRatio(25, 2), "12.5×"},
		{fmtRatio(500, 2), "250×"},
		{fmtRatio(1, 0), "–"},
		{fmtRatio(0, 1), "–"},
		{fmtTriple(latency{Count: 1, P50: 0.5, P99: 2, P999: 30}), "0.500 / 2.00 / 30.0"},
		{fmtTriple(latency{}), "–"},
		{fmtTripleRatio(latency{Count: 1, P50: 1, P99: 2, P999: 4}, latency{Count: 1, P50: 2, P99: 2, P999: 1}), "0.50× / 1.00× / 4.00×"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestOpenRate(t *testing.T) {
	for _, tt := range []struct{ slowest, share, want float64 }{
		{23_456, 0.5, 11_000},
		{9_999, 0.5, 4_900},
		{150, 0.5, 75},
		{0, 0.5, 0},
	} {
		if got := openRate(tt.slowest, tt.share); got != tt.want {
			t.Errorf("openRate(%v, %v) = %v, want %v", tt.slowest, tt.share, got, tt.want)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	sec := markBegin + "\nnew\n" + markEnd + "\n"
	tests := []struct {
		name, doc, want string
		stable          bool // a second replace changes nothing
	}{
		{"Empty", "", sec, true},
		{"Append", "# Title\n\ntext", "# Title\n\ntext\n\n" + sec, true},
		{"Replace", "# T\n\n" + markBegin + "\nold\nold\n" + markEnd + "\n\n## After\n", "# T\n\n" + markBegin + "\nnew\n" + markEnd + "\n\n## After\n", true},
		{"EndBeforeBegin", markEnd + "\n" + markBegin + "\n", markEnd + "\n" + markBegin + "\n\n" + sec, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replaceSection(tt.doc, sec)
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if again := replaceSection(got, sec); tt.stable && again != got {
				t.Errorf("a second replace changed the document:\n%q", again)
			}
		})
	}
}

// fakeResults is a comparison with one data set and a few runs of each
// kind, as the table builders see it.
func fakeResults() *results {
	res := &results{
		Started:   time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Command:   "cd bench && go run ./compare",
		Settings:  settings{Duration: "5s", PropDuration: "15s", Conns: 50, Keys: 100_000, Values: []int{256}, ZipfTheta: 0.99, OpenShare: 0.5, MGetKeys: 100, Writers: []int{1, 50}, PropRates: []float64{100}},
		Datasets:  []datasetInfo{{Slug: "100k-256B", Name: "100k × 256 B", Keys: 100_000, Value: 256}},
		OpenRates: map[string]float64{"100k-256B/uniform": 5000},
	}
	ds := &dataset{slug: "100k-256B"}
	lat := func(p99 float64) latency { return latency{Count: 10, P50: p99 / 4, P99: p99, P999: 2 * p99} }
	add := func(id string, ops, p99 float64) {
		res.Runs = append(res.Runs, &runResult{ID: id, OpsPerSec: ops, KeysPerSec: ops * 100, Latency: lat(p99), ServerUsPerOp: 1e6 / ops, OtherCores: 0.1})
	}
	add(readID(ds, distUniform, "closed", "argent"), 40_000, 2)
	add(readID(ds, distUniform, "closed", "etcd-ser"), 10_000, 8)
	add(readID(ds, distUniform, "closed", "etcd-lin"), 8_000, 9)
	add(readID(ds, distUniform, "closed", "redis"), 80_000, 1)
	add(readID(ds, distUniform, "open", "argent"), 5000, 1)
	add(readID(ds, distUniform, "open", "etcd-ser"), 5000, 4)
	add("mget/100k-256B/argent", 2000, 30)
	add("mget/100k-256B/redis", 1000, 30)
	add("writes/100k-256B/w50/argent", 10_000, 10)
	add("writes/100k-256B/w50/argent-solo", 12_000, 10)
	add("writes/100k-256B/w50/etcd", 4_000, 20)
	res.RedisBenchmark = []*rbResult{
		{ID: rbID("get", 1, "argent"), RPS: 45_000, P50: 0.6, P99: 1.2},
		{ID: rbID("get", 1, "redis"), RPS: 50_000, P50: 0.5, P99: 1.0},
		{ID: rbID("set", 1, rbArgentRoot), RPS: 30_000, P50: 1.5, P99: 3, Requests: 30_000, Wall: 1, ServerCores: 0.9},
		{ID: rbID("set", 1, rbRedisAOF), RPS: 40_000, P50: 1.2, P99: 2, Requests: 40_000, Wall: 1, ServerCores: 0.8},
		{ID: rbID("set", 16, rbArgentRoot), RPS: 200_000, P50: 3, P99: 6, Requests: 200_000, Wall: 1, ServerCores: 1},
		{ID: rbID("set", 16, rbRedisAOF), RPS: 150_000, P50: 4, P99: 8, Requests: 150_000, Wall: 1, ServerCores: 0.9},
	}
	res.Loads = []loadResult{
		{Dataset: "100k-256B", System: "argent", What: "100k × 256 B", Keys: 100_000, Seconds: 1},
		{Dataset: "100k-256B", System: "argent-solo", What: "100k × 256 B", Keys: 100_000, Seconds: 0.5},
		{Dataset: "100k-256B", System: "etcd", What: "100k × 256 B", Keys: 100_000, Seconds: 2},
		{Dataset: "100k-256B", System: "argent-solo", What: "redis-benchmark keys", Keys: 100_000, Seconds: 10},
	}
	res.Propagation = []*propResult{
		{ID: "propagate/100/argent-r1", Delay: lat(2), Seen: 10, Written: 10},
		{ID: "propagate/100/argent-r3", Delay: lat(4), Seen: 10, Written: 10},
		{ID: "propagate/100/etcd-watch", Delay: lat(3), Seen: 10, Written: 10},
	}
	res.Tables = buildTables(res)
	res.Targets = buildTargets(res)
	res.DurableTargets = buildDurableTargets(res)
	return res
}

func TestBuildTables(t *testing.T) {
	res := fakeResults()
	var titles []string
	for _, tb := range res.Tables {
		titles = append(titles, tb.Title)
		for _, r := range tb.Rows {
			if len(r.Values) != len(tb.Systems) || len(r.Ratios) != len(tb.Systems)-1 {
				t.Errorf("%s / %s / %s: %d values and %d ratios for %d systems", tb.Title, r.Workload, r.Metric, len(r.Values), len(r.Ratios), len(tb.Systems))
			}
		}
	}
	// No YCSB runs: no YCSB table.
	if got := strings.Join(titles, "; "); strings.Contains(got, "YCSB") || !strings.Contains(got, "Point reads") || !strings.Contains(got, "Propagation") {
		t.Errorf("tables %q", got)
	}
	if note := res.Tables[0].Note; !strings.Contains(note, "took 0.10 cores on average") {
		t.Errorf("reads note %q does not give the other processes' CPU", note)
	}
	reads := res.Tables[0].Rows[0]
	if reads.Metric != "reads/s, closed loop" || reads.Values[0] != "40,000" || reads.Ratios[0] != "4.00×" || reads.Ratios[1] != "5.00×" || reads.Ratios[2] != "0.50×" {
		t.Errorf("first read row %+v", reads)
	}
	open := res.Tables[0].Rows[1]
	if !strings.Contains(open.Metric, "5,000/s") || open.Values[2] != "–" || open.Ratios[0] != "0.25× / 0.25× / 0.25×" {
		t.Errorf("open-loop row %+v", open)
	}
}

func TestBuildTargets(t *testing.T) {
	met := map[string]string{}
	for _, tg := range fakeResults().Targets {
		met[tg.Aim] = tg.Met
	}
	for aim, want := range map[string]string{
		"replica point reads ≥ 4× etcd serializable reads/s (uniform)":               "yes",
		"replica read p99 ≤ ¼ of etcd serializable p99 (open loop, uniform)":         "yes",
		"replica point reads ≥ 4× etcd serializable reads/s (zipf)":                  "–",
		"RESP GET ≥ 0.8× Redis GET, redis-benchmark -P 1":                            "yes",
		"HTTP mget of 100 keys at least as fast per key as Redis MGET":               "yes",
		"root writes ≥ 3× etcd's with 50 writers (root alone)":                       "yes",
		"root writes ≥ 3× etcd's with 50 writers (root + replica on the same cores)": "no",
		"propagation p99 at one hop ≤ etcd watch p99, 100 writes/s":                  "yes",
	} {
		if met[aim] != want {
			t.Errorf("%s: met %q, want %q", aim, met[aim], want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	res := fakeResults()
	var b strings.Builder
	writeMarkdown(&b, res)
	md := b.String()
	for _, want := range []string{markBegin, markEnd, "| workload | metric | argent | etcd serializable |", "| 100k × 256 B, uniform | reads/s, closed loop | 40,000 |", "argent RESP ÷ Redis", "0.10 / 0.10 (of 0)",
		"#### Durable writes: aims", "| RESP SET at a root alone ≥ 1× Redis appendfsync always, redis-benchmark -P 16 | 1.33× (200,000 vs 150,000 requests/s) | yes |",
		"argent root RESP ÷ Redis (appendfsync always)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.HasPrefix(md, markBegin) || !strings.HasSuffix(md, markEnd+"\n") {
		t.Error("the section does not start and end with the markers")
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-keys", "1000", "-docs", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.duration != time.Second || c.keys != 1000 || c.bigKeys != 50_000 || len(c.writers) != 2 || c.writers[1] != 50 || !c.workloads[wlPropagate] || !c.workloads[wlDurable] ||
		!c.workloads[wlGroup] || c.groupDuration != 2*time.Second || c.pprofDir != "" {
		t.Errorf("quick config %+v", c)
	}
	if c.command != "cd bench && go run ./compare -quick -keys 1000 -docs ''" {
		t.Errorf("command %q", c.command)
	}
	for _, args := range [][]string{
		{"-workloads", "reads,nope"},
		{"-zipf", "1.2"},
		{"-mget-keys", "200"},
		{"-writers", "1,500"},
		{"-values", ""},
		{"-group-duration", "0s"},
		{"-pprof-seconds", "0"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}
