package main

import "fmt"

// target is one aim, checked against the results.
type target struct {
	Aim      string `json:"aim"`
	Measured string `json:"measured"`
	// Met is "yes", "no", "–" when not measured, or metInfo for a figure
	// shown without an aim.
	Met string `json:"met"`
}

// Measured and Met of a target whose figures did not run, and Met of a
// figure shown for information.
const (
	notMeasured = "not measured"
	metInfo     = "info"
)

// ratioTarget checks a/b against want: at least want when atLeast, else
// at most.
func ratioTarget(aim string, a, b, want float64, atLeast bool, what string) target {
	t := target{Aim: aim, Met: "–", Measured: notMeasured}
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

// buildTargets checks the aims of reads and writes against etcd and Redis on the first data set (100k keys
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

// durableAimsNote says where the figures of the durable aims come from.
func durableAimsNote(conns int) string {
	return fmt.Sprintf("SET: redis-benchmark -c %d -d %d -r %d -t set against the --resp-listen port of an argent root with no children and against Redis with appendonly yes and appendfsync always (table \"Durable SET\"). "+
		"PUT: the runs with the most writers of \"Durable writes at the root\". Bulk load: \"Loading the data sets\" (argent-solo is the root alone). "+
		"A row marked %s has no aim: it is shown beside the others for information.", conns, durableSetValue, durableSetKeys, metInfo)
}

// buildDurableTargets checks the aims of the durable write path: the
// durable SETs against Redis with appendfsync always, PUT at a root alone
// against etcd and at a root with a replica against the root alone, the
// bulk load of every data set of -values against etcd's, and, with no aim,
// the propagation p99 through three hops beside one hop at the highest
// rate. It returns nil when none of those figures was measured.
func buildDurableTargets(res *results) []target {
	var out []target
	for _, pl := range rbPipelines {
		a, r := res.findRB(rbID(durableSetCmd.name, pl, rbArgentRoot)), res.findRB(rbID(durableSetCmd.name, pl, rbRedisAOF))
		rps := func(x *rbResult) float64 { return x.RPS }
		ar, rr := rbFig(a, rps), rbFig(r, rps)
		out = append(out, ratioTarget(fmt.Sprintf("RESP SET at a root alone ≥ 1× Redis appendfsync always, redis-benchmark -P %d", pl), ar, rr, 1, true,
			fmt.Sprintf("%s vs %s requests/s", fmtCount(ar), fmtCount(rr))))
	}
	fig := func(id string) float64 {
		if r := res.find(id); r != nil {
			return r.OpsPerSec
		}
		return 0
	}
	dss := valueDatasets(res.Settings)
	if w := maxOf(res.Settings.Writers); w > 0 {
		for _, ds := range dss {
			id := func(sys string) string { return fmt.Sprintf("writes/%s/w%d/%s", ds.Slug, w, sys) }
			solo, both, etcd := fig(id("argent-solo")), fig(id("argent")), fig(id("etcd"))
			out = append(out,
				ratioTarget(fmt.Sprintf("PUT at a root alone ≥ 3× etcd's, %d writers, %s", w, ds.Name), solo, etcd, 3, true,
					fmt.Sprintf("%s vs %s writes/s", fmtCount(solo), fmtCount(etcd))),
				ratioTarget(fmt.Sprintf("PUT at a root with one replica ≥ 0.8× the root alone, %d writers, %s", w, ds.Name), both, solo, 0.8, true,
					fmt.Sprintf("%s vs %s writes/s; argent ÷ argent", fmtCount(both), fmtCount(solo))))
		}
	}
	for _, ds := range dss {
		a, e := res.loadRate(ds, "argent-solo"), res.loadRate(ds, "etcd")
		out = append(out, ratioTarget(fmt.Sprintf("bulk load at a root alone ≥ 2× etcd's keys/s, %s", ds.Name), a, e, 2, true,
			fmt.Sprintf("%s vs %s keys/s", fmtCount(a), fmtCount(e))))
	}
	if rate := maxOf(res.Settings.PropRates); rate > 0 {
		out = append(out, propDepthTarget(res, rate))
	}
	for _, t := range out {
		if t.Measured != notMeasured {
			return out
		}
	}
	return nil
}

// propDepthTarget shows the propagation p99 through three hops beside one
// hop at rate, with no aim.
func propDepthTarget(res *results, rate float64) target {
	t := target{Aim: fmt.Sprintf("propagation p99 through 3 hops (root → r1 → r2 → r3), beside 1 hop, %s writes/s", fmtCount(rate)),
		Measured: notMeasured, Met: "–"}
	three, one := res.findProp(fmt.Sprintf("propagate/%g/argent-r3", rate)), res.findProp(fmt.Sprintf("propagate/%g/argent-r1", rate))
	switch {
	case three == nil || three.Delay.Count == 0:
	case one == nil || one.Delay.Count == 0:
		t.Measured, t.Met = fmt.Sprintf("%s ms at 3 hops; 1 hop not measured", fmtMs(three.Delay.P99)), metInfo
	default:
		t.Measured = fmt.Sprintf("%s (%s ms at 3 hops vs %s ms at 1 hop; 3 hops ÷ 1 hop)",
			fmtRatio(three.Delay.P99, one.Delay.P99), fmtMs(three.Delay.P99), fmtMs(one.Delay.P99))
		t.Met = metInfo
	}
	return t
}

// valueDatasets are the data sets of -keys keys, one for each of -values,
// as the phases name them.
func valueDatasets(s settings) []datasetInfo {
	out := make([]datasetInfo, len(s.Values))
	for i, v := range s.Values {
		out[i] = datasetInfo{Slug: countSlug(s.Keys) + "-" + sizeSlug(v), Name: countName(s.Keys) + " × " + sizeName(v), Keys: s.Keys, Value: v}
	}
	return out
}

// maxOf is the largest of xs, 0 for none.
func maxOf[T int | float64](xs []T) T {
	var m T
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
