package main

import (
	"strings"
	"testing"
)

// fakeGroupResults is a comparison whose only workload is the group one.
func fakeGroupResults() *results {
	res := &results{Settings: settings{GroupDuration: "10s", Rounds: 3, Conns: 50}}
	res.Group = &groupInfo{Dataset: "100k-256B", DatasetName: "100k × 256 B", Writers: 50, Leader: 2, Term: 2, LeaderAfter: 2, TermAfter: 2}
	add := func(sys string, ops, p99 float64, rounds ...float64) {
		res.Runs = append(res.Runs, &runResult{ID: groupID("100k-256B", 50, sys), OpsPerSec: ops, RoundOpsPerSec: rounds,
			Latency: latency{Count: 10, P50: p99 / 4, P99: p99, P999: 2 * p99}, ServerUsPerOp: 1e6 / ops})
	}
	add(sysArgentGroup, 8_000, 20, 7_000, 8_000, 9_500)
	add(sysArgentGroupLeader, 12_000, 10, 12_000)
	add(sysArgentSingle, 16_000, 8, 16_000)
	add(sysEtcdGroup, 2_000, 40, 1_500, 2_000, 2_100)
	res.Tables = buildTables(res)
	res.GroupTargets = buildGroupTargets(res)
	res.Problems = res.problems()
	return res
}

func TestGroupTable(t *testing.T) {
	res := fakeGroupResults()
	if len(res.Tables) != 1 || res.Tables[0].Title != "Replicated writes: three-member groups" {
		t.Fatalf("tables %+v", res.Tables)
	}
	tb := res.Tables[0]
	if len(tb.Rows) != 8 {
		t.Fatalf("%d rows, want 8: %+v", len(tb.Rows), tb.Rows)
	}
	for _, r := range tb.Rows {
		if len(r.Values) != 3 || len(r.Ratios) != 2 {
			t.Errorf("%s / %s: %d values and %d ratios", r.Workload, r.Metric, len(r.Values), len(r.Ratios))
		}
	}
	tests := []struct {
		row                int
		metric, value, div string // the first value and its ratio to etcd
	}{
		{0, "writes/s", "8,000", "4.00×"},
		{1, "writes/s of the rounds, lowest–highest", "7,000–9,500", ""},
		{2, "p50 / p99 / p99.9 ms", "5.00 / 20.0 / 40.0", "0.50× / 0.50× / 0.50×"},
		{4, "writes/s", "12,000", "6.00×"},
	}
	for _, tt := range tests {
		r := tb.Rows[tt.row]
		if r.Metric != tt.metric || r.Values[0] != tt.value || r.Ratios[0] != tt.div {
			t.Errorf("row %d: %s %q, ratio %q; want %s %q, %q", tt.row, r.Metric, r.Values[0], r.Ratios[0], tt.metric, tt.value, tt.div)
		}
	}
	if got := tb.Rows[1].Values[1]; got != "1,500–2,100" {
		t.Errorf("etcd rounds %q", got)
	}
	if !strings.Contains(tb.Note, "at the leader (Raft ID 2)") || !strings.Contains(tb.Note, "10s per run in 3 rounds") {
		t.Errorf("note %q", tb.Note)
	}
}

func TestBuildGroupTargets(t *testing.T) {
	res := fakeGroupResults()
	got := map[string]string{}
	for _, tg := range res.GroupTargets {
		got[tg.Aim] = tg.Met + ": " + tg.Measured
	}
	for aim, want := range map[string]string{
		"PUT at a 3-member argent group ≥ 4× a 3-member etcd's, 50 writers, writers spread over them":    "yes: 4.00× (8,000 vs 2,000 writes/s)",
		"PUT p99 at a 3-member argent group < a 3-member etcd's, 50 writers, writers spread over them":   "yes: 0.50× (20.0 vs 40.0 ms)",
		"PUT at a 3-member argent group beside a single root, writers spread over them":                  "info: 0.50× (8,000 vs 16,000 writes/s; argent ÷ argent)",
		"PUT at a 3-member argent group ≥ 4× a 3-member etcd's, 50 writers, every writer at the leader":  "yes: 6.00× (12,000 vs 2,000 writes/s)",
		"PUT p99 at a 3-member argent group < a 3-member etcd's, 50 writers, every writer at the leader": "yes: 0.25× (10.0 vs 40.0 ms)",
		"PUT at a 3-member argent group beside a single root, every writer at the leader":                "info: 0.75× (12,000 vs 16,000 writes/s; argent ÷ argent)",
	} {
		if got[aim] != want {
			t.Errorf("%s: got %q, want %q", aim, got[aim], want)
		}
	}
	if len(res.Problems) != 0 {
		t.Errorf("problems %q", res.Problems)
	}
	if buildGroupTargets(&results{}) != nil {
		t.Error("aims of a run without the group workload")
	}
}

func TestGroupProblems(t *testing.T) {
	tests := []struct {
		name string
		g    *groupInfo
		want string // in the one problem; "" for none
	}{
		{"NotRun", nil, ""},
		{"Steady", &groupInfo{Leader: 1, Term: 2, LeaderAfter: 1, TermAfter: 2}, ""},
		{"NewTerm", &groupInfo{Leader: 1, Term: 2, LeaderAfter: 1, TermAfter: 3}, "leader changed"},
		{"NewLeader", &groupInfo{Leader: 1, Term: 2, LeaderAfter: 3, TermAfter: 3}, "member 3 in term 3"},
		{"NoLeaderAfter", &groupInfo{Leader: 1, Term: 2}, "no leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := groupProblems(tt.g)
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("problems %q, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("problems %q, want one with %q", got, tt.want)
			}
		})
	}
}

func TestWriteMarkdown_Group(t *testing.T) {
	var b strings.Builder
	writeMarkdown(&b, fakeGroupResults())
	md := b.String()
	for _, want := range []string{"#### Replicated writes: aims", "the group workload's 10s",
		"| argent group ÷ etcd, 3 members | argent group ÷ argent single root |",
		"| 100k × 256 B, 50 writers, argent 3 members, every writer at the leader | writes/s | 12,000 | 2,000 | 16,000 | 6.00× | 0.75× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
