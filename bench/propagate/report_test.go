package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
)

// TestAnalyze checks the matching of acknowledgements with watch lines, the
// windows and the lag trend on a made-up run.
func TestAnalyze(t *testing.T) {
	start := time.Unix(1000, 0)
	cfg := config{depth: 3, watch: []int{1, 3}, rate: 10, duration: 20 * time.Second, writers: 1,
		sample: time.Second, window: 10 * time.Second}
	r := &result{cfg: cfg, start: start, end: start.Add(cfg.duration)}
	var d1, d3 []arrival
	for i := range 200 {
		due := start.Add(time.Duration(i) * 100 * time.Millisecond)
		w := write{idx: argent.Index(i + 1), due: due, sent: due, ack: due.Add(time.Millisecond)}
		r.writes = append(r.writes, w)
		d1 = append(d1, arrival{idx: w.idx, at: w.ack.Add(2 * time.Millisecond)})
		if i != 7 { // one batch never reaches depth 3
			d3 = append(d3, arrival{idx: w.idx, at: w.ack.Add(time.Duration(3+i/100) * time.Millisecond)})
		}
	}
	d1[0].at = r.writes[0].ack.Add(-time.Microsecond) // seen before its ack
	d3 = append(d3, arrival{idx: 9999, at: start})    // not written by us
	r.watches = []watchResult{{depth: 1, node: "r1", arr: d1}, {depth: 3, node: "r3", arr: d3}}
	for s := range 20 {
		at := start.Add(time.Duration(s) * time.Second)
		r.lag = append(r.lag, lagSample{at: at, depth: 3, applied: 10, root: 10, rootApplied: argent.Index(10 + s), lagSec: float64(s) / 1000})
	}

	if r.complete() {
		t.Fatal("complete() with a batch missing at depth 3")
	}
	if len(r.depths) != 2 {
		t.Fatalf("%d depths", len(r.depths))
	}
	one, three := r.depths[0], r.depths[1]
	if one.matched != 200 || one.early != 1 || one.extra != 0 {
		t.Errorf("depth 1: matched %d early %d extra %d, want 200 1 0", one.matched, one.early, one.extra)
	}
	if three.matched != 199 || three.early != 0 || three.extra != 1 {
		t.Errorf("depth 3: matched %d early %d extra %d, want 199 0 1", three.matched, three.early, three.extra)
	}
	if got := one.fromAck.ValueAtQuantile(50); got < 1990 || got > 2010 {
		t.Errorf("depth 1 p50 = %d us, want 2000", got)
	}
	if len(r.windows) != 2 || r.windows[0].batches != 100 || r.windows[1].batches != 100 {
		t.Fatalf("windows: %+v", r.windows)
	}
	if got := r.windows[1].fromAck[1].ValueAtQuantile(50); got < 3990 || got > 4010 {
		t.Errorf("second window depth 3 p50 = %d us, want 4000", got)
	}
	if got := r.trend(3, lagSeconds) * 1000; got < 59.9 || got > 60.1 {
		t.Errorf("lag_seconds trend = %v ms/min, want 60", got)
	}
	if got := r.trend(3, behindRoot); got < 59.9 || got > 60.1 {
		t.Errorf("behind-root trend = %v idx/min, want 60", got)
	}
	first := r.lagBetween(3, start, start.Add(10*time.Second))
	if first.n != 10 || first.avgTrue() != 4.5 {
		t.Errorf("first window: n %d avg behind %v, want 10 4.5", first.n, first.avgTrue())
	}

	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{"| depth 1, from root ack | r1 | 200 / 200 |", "| depth 3, from root ack | r3 | 199 / 200 |", "1 seen before their ack"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	path := filepath.Join(t.TempDir(), "b.csv")
	if err := r.writeCSV(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 201 || lines[0] != "index,due_us,send_us,ack_us,depth1_us,depth3_us" || lines[8] != "8,700000,700000,701000,703000," {
		t.Errorf("csv: %d lines, header %q, line 8 %q", len(lines), lines[0], lines[8])
	}
}

func TestParseFlags(t *testing.T) {
	var errs bytes.Buffer
	for _, bad := range [][]string{{"-watch", "4"}, {"-watch", "1,1"}, {"-rate", "0"}, {"-depth", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &errs); err == nil {
			t.Errorf("parseFlags(%q) = nil error", bad)
		}
	}
	c, err := parseFlags([]string{"-depth", "4", "-watch", "2, 4"}, &errs)
	if err != nil || len(c.watch) != 2 || c.watch[1] != 4 {
		t.Errorf("parseFlags: %+v, %v", c.watch, err)
	}
}

// TestAnalyze_MergedBatches checks that one watch line of an index the
// root gave several writes (a merged batch) counts for each of them.
func TestAnalyze_MergedBatches(t *testing.T) {
	start := time.Unix(1000, 0)
	cfg := config{depth: 1, watch: []int{1}, rate: 10, duration: time.Second, writers: 3,
		sample: time.Second, window: time.Second}
	r := &result{cfg: cfg, start: start, end: start.Add(cfg.duration)}
	for i := range 3 {
		r.writes = append(r.writes, write{idx: 5, due: start, sent: start, ack: start.Add(time.Duration(i+1) * time.Millisecond)})
	}
	r.writes = append(r.writes, write{idx: 6, due: start, sent: start, ack: start.Add(time.Millisecond)})
	r.watches = []watchResult{{depth: 1, node: "r1", arr: []arrival{{idx: 5, at: start.Add(5 * time.Millisecond)}, {idx: 6, at: start.Add(5 * time.Millisecond)}}}}
	if !r.complete() {
		t.Fatalf("complete() = false: %+v", r.depths)
	}
	if d := r.depths[0]; d.matched != 4 || d.extra != 0 {
		t.Fatalf("matched %d extra %d, want 4 0", d.matched, d.extra)
	}
	if r.merged != 3 {
		t.Fatalf("merged = %d, want 3", r.merged)
	}
}
