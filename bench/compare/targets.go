package main

import "fmt"

// target is one aim of issue 5, checked against the results.
type target struct {
	Aim      string `json:"aim"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // "yes", "no", or "–" when not measured
}

// ratioTarget checks a/b against want: at least want when atLeast, else
// at most.
func ratioTarget(aim string, a, b, want float64, atLeast bool, what string) target {
	t := target{Aim: aim, Met: "–", Measured: "not measured"}
	if a <= 0 || b <= 0 {
		return t
	}
	r := a / b
	t.Measured = fmt.Sprintf("%s (%s)", fmtRatio(a, b), what)
	if atLeast && r >= want || !atLeast && r <= want {
		t.Met = "yes"
	} else {
		t.Met = "no"
	}
	return t
}

// buildTargets checks the aims of issue 5 on the first data set (100k keys
// of 256 B in a full run).
func buildTargets(res *results) []target {
	if len(res.Datasets) == 0 {
		return nil
	}
	ds := &dataset{slug: res.Datasets[0].Slug}
	fig := func(id string, f func(*runResult) float64) float64 {
		if r := res.find(id); r != nil {
			return f(r)
		}
		return 0
	}
	p99 := func(r *runResult) float64 { return r.Latency.P99 }
	var out []target
	for _, dist := range []string{distUniform, distZipf} {
		a := fig(readID(ds, dist, "closed", "argent"), opsPerSec)
		e := fig(readID(ds, dist, "closed", "etcd-ser"), opsPerSec)
		out = append(out, ratioTarget("replica point reads ≥ 4× etcd serializable reads/s ("+dist+")", a, e, 4, true,
			fmt.Sprintf("%s vs %s reads/s", fmtCount(a), fmtCount(e))))
		a = fig(readID(ds, dist, "open", "argent"), p99)
		e = fig(readID(ds, dist, "open", "etcd-ser"), p99)
		out = append(out, ratioTarget("replica read p99 ≤ ¼ of etcd serializable p99 (open loop, "+dist+")", a, e, 0.25, false,
			fmt.Sprintf("%s vs %s ms", fmtMs(a), fmtMs(e))))
	}
	for _, pl := range rbPipelines {
		a, r := res.findRB(rbID("get", pl, "argent")), res.findRB(rbID("get", pl, "redis"))
		if a != nil && r != nil {
			out = append(out, ratioTarget(fmt.Sprintf("RESP GET ≥ 0.8× Redis GET, redis-benchmark -P %d", pl), a.RPS, r.RPS, 0.8, true,
				fmt.Sprintf("%s vs %s requests/s", fmtCount(a.RPS), fmtCount(r.RPS))))
		}
	}
	a := fig("mget/"+ds.slug+"/argent", keysPerSec)
	r := fig("mget/"+ds.slug+"/redis", keysPerSec)
	out = append(out, ratioTarget(fmt.Sprintf("HTTP mget of %d keys at least as fast per key as Redis MGET", res.Settings.MGetKeys), a, r, 1, true,
		fmt.Sprintf("%s vs %s keys/s", fmtCount(a), fmtCount(r))))
	for _, pl := range rbPipelines {
		ar, rr := res.findRB(rbID("mget", pl, "argent")), res.findRB(rbID("mget", pl, "redis"))
		if ar != nil && rr != nil {
			out = append(out, ratioTarget(fmt.Sprintf("RESP MGET at least as fast per key as Redis, redis-benchmark -P %d", pl), ar.KeysPerSec, rr.KeysPerSec, 1, true,
				fmt.Sprintf("%s vs %s keys/s", fmtCount(ar.KeysPerSec), fmtCount(rr.KeysPerSec))))
		}
	}
	if n := res.Settings.Writers; len(n) > 0 {
		w := n[len(n)-1]
		e := fig(fmt.Sprintf("writes/%s/w%d/etcd", ds.slug, w), opsPerSec)
		for _, setup := range []struct{ system, label string }{{"argent-solo", "root alone"}, {"argent", "root + replica on the same cores"}} {
			a := fig(fmt.Sprintf("writes/%s/w%d/%s", ds.slug, w, setup.system), opsPerSec)
			out = append(out, ratioTarget(fmt.Sprintf("root writes ≥ 3× etcd's with %d writers (%s)", w, setup.label), a, e, 3, true,
				fmt.Sprintf("%s vs %s writes/s", fmtCount(a), fmtCount(e))))
		}
	}
	for _, rate := range res.Settings.PropRates {
		a, e := res.findProp(fmt.Sprintf("propagate/%g/argent-r1", rate)), res.findProp(fmt.Sprintf("propagate/%g/etcd-watch", rate))
		if a != nil && e != nil {
			out = append(out, ratioTarget(fmt.Sprintf("propagation p99 at one hop ≤ etcd watch p99, %s writes/s", fmtCount(rate)), a.Delay.P99, e.Delay.P99, 1, false,
				fmt.Sprintf("%s vs %s ms", fmtMs(a.Delay.P99), fmtMs(e.Delay.P99))))
		}
	}
	return out
}
