package main

import (
	"fmt"
	"strings"
)

// groupSetups are the argent group set-ups of the group table, each beside
// the etcd cluster and the single root.
var groupSetups = []struct{ system, label string }{
	{sysArgentGroup, "argent 3 members, writers spread over them"},
	{sysArgentGroupLeader, "argent 3 members, every writer at the leader"},
}

// groupTable is the group workload: each argent group set-up beside the
// three-member etcd and the single argent root.
func groupTable(res *results) table {
	t := table{
		Title:   "Replicated writes: three-member groups",
		Systems: []string{"argent group", "etcd, 3 members", "argent single root"},
	}
	g := res.Group
	if g == nil {
		return t
	}
	t.Note = fmt.Sprintf("%d writers, closed loop, overwrites of uniformly chosen existing keys of %s, %s per run in %d rounds interleaved with the other set-ups' rounds. "+
		"argent group: `argent root --id N --peers 1=A,2=B,3=C`, three members, PUT /v1/kv/{key} answered once the merged batch carrying it is committed by a quorum and applied at the member written to; "+
		"writers spread over the members (connection i at member i mod 3) or all at the leader (Raft ID %d). "+
		"etcd: three members, Put through go.etcd.io/etcd/client/v3, each writer's client given the three endpoints (it balances over them round-robin). "+
		"argent single root: `argent root` without --peers, PUT answered after its fsync. "+
		"Every member has its own data directory and fsyncs its own log; all run on 127.0.0.1 on the same cores as this program. Server CPU is that of all members together.",
		g.Writers, g.DatasetName, res.Settings.GroupDuration, res.Settings.Rounds, g.Leader)
	for _, setup := range groupSetups {
		runs := []*runResult{
			res.find(groupID(g.Dataset, g.Writers, setup.system)),
			res.find(groupID(g.Dataset, g.Writers, sysEtcdGroup)),
			res.find(groupID(g.Dataset, g.Writers, sysArgentSingle)),
		}
		w := fmt.Sprintf("%s, %d writers, %s", g.DatasetName, g.Writers, setup.label)
		t.add(numRow(w, "writes/s", runs, opsPerSec, false))
		t.add(roundsRow(w, runs))
		t.add(latRow(w, "p50 / p99 / p99.9 ms", runs, allLatency))
		t.add(numRow(w, "server CPU-µs per write", runs, cpuPerOp, true))
	}
	return t
}

// roundsRow gives the lowest and highest throughput of each run's rounds,
// the spread behind the median.
func roundsRow(workload string, runs []*runResult) (row, bool) {
	r := row{Workload: workload, Metric: "writes/s of the rounds, lowest–highest"}
	any := false
	for i, run := range runs {
		if i > 0 {
			r.Ratios = append(r.Ratios, "")
		}
		if run == nil || len(run.RoundOpsPerSec) == 0 {
			r.Values = append(r.Values, "–")
			continue
		}
		any = true
		lo, hi := run.RoundOpsPerSec[0], run.RoundOpsPerSec[0]
		for _, v := range run.RoundOpsPerSec[1:] {
			lo, hi = min(lo, v), max(hi, v)
		}
		r.Values = append(r.Values, fmtCount(lo)+"–"+fmtCount(hi))
	}
	return r, any
}

// groupAimsNote says what the aims of the group workload compare.
const groupAimsNote = "The table \"Replicated writes: three-member groups\": argent's root group against etcd's three members, both written by the same number of writers, and the group beside a single root. A row marked info has no aim."

// buildGroupTargets checks the aims of the replicated write path: the
// argent group's writes/s at least 4× the etcd cluster's and its p99 below
// etcd's, for each set-up, and shows the group beside the single root. It
// returns nil when the group workload did not run.
func buildGroupTargets(res *results) []target {
	g := res.Group
	if g == nil {
		return nil
	}
	etcd := res.find(groupID(g.Dataset, g.Writers, sysEtcdGroup))
	single := res.find(groupID(g.Dataset, g.Writers, sysArgentSingle))
	fig := func(r *runResult, f func(*runResult) float64) float64 {
		if r == nil {
			return 0
		}
		return f(r)
	}
	p99 := func(r *runResult) float64 { return r.Latency.P99 }
	var out []target
	for _, setup := range groupSetups {
		a := res.find(groupID(g.Dataset, g.Writers, setup.system))
		label := strings.TrimPrefix(setup.label, "argent 3 members, ")
		aw, ew := fig(a, opsPerSec), fig(etcd, opsPerSec)
		out = append(out, ratioTarget(fmt.Sprintf("PUT at a 3-member argent group ≥ 4× a 3-member etcd's, %d writers, %s", g.Writers, label), aw, ew, 4, true,
			fmt.Sprintf("%s vs %s writes/s", fmtCount(aw), fmtCount(ew))))
		ap, ep := fig(a, p99), fig(etcd, p99)
		t := ratioTarget(fmt.Sprintf("PUT p99 at a 3-member argent group < a 3-member etcd's, %d writers, %s", g.Writers, label), ap, ep, 1, false,
			fmt.Sprintf("%s vs %s ms", fmtMs(ap), fmtMs(ep)))
		if t.Met == "yes" && ap >= ep {
			t.Met = "no" // equal is not below
		}
		out = append(out, t)
		sw := fig(single, opsPerSec)
		t = ratioTarget(fmt.Sprintf("PUT at a 3-member argent group beside a single root, %s", label), aw, sw, 0, true,
			fmt.Sprintf("%s vs %s writes/s; argent ÷ argent", fmtCount(aw), fmtCount(sw)))
		if t.Measured != notMeasured {
			t.Met = metInfo
		}
		out = append(out, t)
	}
	return out
}

// groupProblems lists what puts the group workload's figures in doubt: a
// change of the argent group's leader during the runs.
func groupProblems(g *groupInfo) []string {
	if g == nil {
		return nil
	}
	if g.LeaderAfter == 0 {
		return []string{"group: the argent group had no leader that every member agreed on after the runs"}
	}
	if g.LeaderAfter != g.Leader || g.TermAfter != g.Term {
		return []string{fmt.Sprintf("group: the argent group's leader changed during the runs (member %d in term %d, then member %d in term %d); "+
			"the leader set-up wrote to a follower after the change", g.Leader, g.Term, g.LeaderAfter, g.TermAfter)}
	}
	return nil
}
