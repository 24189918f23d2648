package main

import (
	"strings"
	"testing"
)

func TestBuildDurableTargets(t *testing.T) {
	const (
		set1   = "RESP SET at a root alone ≥ 1× Redis appendfsync always, redis-benchmark -P 1"
		set16  = "RESP SET at a root alone ≥ 1× Redis appendfsync always, redis-benchmark -P 16"
		solo   = "PUT at a root alone ≥ 3× etcd's, 50 writers, 100k × 256 B"
		both   = "PUT at a root with one replica ≥ 0.8× the root alone, 50 writers, 100k × 256 B"
		load   = "bulk load at a root alone ≥ 2× etcd's keys/s, 100k × 256 B"
		prop   = "propagation p99 through 3 hops (root → r1 → r2 → r3), beside 1 hop, 100 writes/s"
		notRun = "not measured"
	)
	tests := []struct {
		name   string
		edit   func(res *results) // of fakeResults
		met    map[string]string  // aim: Met
		shown  map[string]string  // aim: what Measured holds
		absent bool               // no table
	}{
		{
			name: "Full",
			edit: func(*results) {},
			met:  map[string]string{set1: "no", set16: "yes", solo: "yes", both: "yes", load: "yes", prop: metInfo},
			shown: map[string]string{
				set1:  "0.75× (30,000 vs 40,000 requests/s)",
				solo:  "3.00× (12,000 vs 4,000 writes/s)",
				both:  "0.83× (10,000 vs 12,000 writes/s; argent ÷ argent)",
				load:  "4.00× (200,000 vs 50,000 keys/s)",
				prop:  "2.00× (4.00 ms at 3 hops vs 2.00 ms at 1 hop; 3 hops ÷ 1 hop)",
				set16: "1.33×",
			},
		},
		{
			name:   "NothingRan",
			edit:   func(res *results) { res.Runs, res.RedisBenchmark, res.Loads, res.Propagation = nil, nil, nil, nil },
			absent: true,
		},
		{
			name: "OnlySET",
			edit: func(res *results) { res.Runs, res.Loads, res.Propagation = nil, nil, nil },
			met:  map[string]string{set1: "no", set16: "yes", solo: "–", both: "–", load: "–", prop: "–"},
			shown: map[string]string{
				solo: notRun,
				prop: notRun,
			},
		},
		{
			name: "NoOneHopNoEtcd",
			edit: func(res *results) {
				res.Propagation = res.Propagation[1:] // argent-r3 and etcd only
				res.Loads = res.Loads[:2]             // no etcd load
			},
			met:   map[string]string{prop: metInfo, load: "–", solo: "yes"},
			shown: map[string]string{prop: "4.00 ms at 3 hops; 1 hop not measured", load: notRun},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := fakeResults()
			tt.edit(res)
			got := buildDurableTargets(res)
			if tt.absent {
				if got != nil {
					t.Fatalf("targets %+v, want none", got)
				}
				return
			}
			if len(got) != 6 {
				t.Errorf("%d targets, want 6: %+v", len(got), got)
			}
			by := map[string]target{}
			for _, tg := range got {
				by[tg.Aim] = tg
			}
			for aim, want := range tt.met {
				if tg, ok := by[aim]; !ok || tg.Met != want {
					t.Errorf("%s: met %q (found %v), want %q", aim, tg.Met, ok, want)
				}
			}
			for aim, want := range tt.shown {
				if m := by[aim].Measured; !strings.HasPrefix(m, want) {
					t.Errorf("%s: measured %q, want %q", aim, m, want)
				}
			}
		})
	}
}

func TestDurableSetTable(t *testing.T) {
	tb := durableSetTable(fakeResults())
	want := [][]string{
		{"SET of 256 B, -P 1", "requests/s", "30,000", "40,000", "0.75×"},
		{"SET of 256 B, -P 1", "p50 / p99 ms", "1.50 / 3.00", "1.20 / 2.00", "1.25× / 1.50×"},
		{"SET of 256 B, -P 1", "server CPU-µs per SET", "30.0", "20.0", "1.50×"},
		{"SET of 256 B, -P 16", "requests/s", "200,000", "150,000", "1.33×"},
		{"SET of 256 B, -P 16", "p50 / p99 ms", "3.00 / 6.00", "4.00 / 8.00", "0.75× / 0.75×"},
		{"SET of 256 B, -P 16", "server CPU-µs per SET", "5.0", "6.0", "0.83×"},
	}
	if len(tb.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(tb.Rows), len(want), tb.Rows)
	}
	for i, r := range tb.Rows {
		got := append([]string{r.Workload, r.Metric}, append(r.Values, r.Ratios...)...)
		if strings.Join(got, " | ") != strings.Join(want[i], " | ") {
			t.Errorf("row %d:\n got %q\nwant %q", i, got, want[i])
		}
	}
	if !strings.Contains(tb.Note, "-c 50 -d 256 -r 100000 -t set") {
		t.Errorf("note %q does not give the command", tb.Note)
	}
	if empty := durableSetTable(&results{}); len(empty.Rows) != 0 {
		t.Errorf("rows without runs: %+v", empty.Rows)
	}
}

func TestRBRows_OneMissing(t *testing.T) {
	rows := rbRows("w", nil, &rbResult{RPS: 10, P50: 1, P99: 2}, false)
	if len(rows) != 2 || rows[0].Values[0] != "0" || rows[0].Ratios[0] != "–" || rows[1].Values[0] != "–" || rows[1].Ratios[0] != "– / –" {
		t.Errorf("rows %+v", rows)
	}
}

func TestValueDatasets(t *testing.T) {
	got := valueDatasets(settings{Keys: 20_000, Values: []int{256, 4096}})
	want := []datasetInfo{
		{Slug: "20k-256B", Name: "20k × 256 B", Keys: 20_000, Value: 256},
		{Slug: "20k-4KiB", Name: "20k × 4 KiB", Keys: 20_000, Value: 4096},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if d := newDataset(want[i].Keys, want[i].Value, 0.99, 1); got[i] != want[i] || d.slug != got[i].Slug || d.name != got[i].Name {
			t.Errorf("data set %d: got %+v, want %+v (phase: %s, %s)", i, got[i], want[i], d.slug, d.name)
		}
	}
}

func TestResults_LoadRate(t *testing.T) {
	res := fakeResults()
	ds := res.Datasets[0]
	tests := []struct {
		name, system string
		want         float64
	}{
		{"Solo", "argent-solo", 200_000}, // not the redis-benchmark keys' load
		{"Etcd", "etcd", 50_000},
		{"Absent", "redis", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := res.loadRate(ds, tt.system); got != tt.want {
				t.Errorf("loadRate(%s) = %v, want %v", tt.system, got, tt.want)
			}
		})
	}
}
