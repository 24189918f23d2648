package main

import (
	"fmt"
	"strconv"
)

// table is one group of the ratio tables: absolute figures of each system,
// then argent's figure divided by each peer's.
type table struct {
	Title   string   `json:"title"`
	Systems []string `json:"systems"` // value columns; the first is argent
	Note    string   `json:"note"`
	Rows    []row    `json:"rows"`
}

// row is one line of a table. Ratios[i] is Values[0] over Values[i+1].
type row struct {
	Workload string   `json:"workload"`
	Metric   string   `json:"metric"`
	Values   []string `json:"values"`
	Ratios   []string `json:"ratios"`
}

// datasetInfo names a data set that a comparison loaded.
type datasetInfo struct {
	Slug  string `json:"slug"`
	Name  string `json:"name"`
	Keys  int    `json:"keys"`
	Value int    `json:"value_bytes"`
}

// Figures of a run, for the row builders.
func opsPerSec(r *runResult) float64   { return r.OpsPerSec }
func keysPerSec(r *runResult) float64  { return r.KeysPerSec }
func cpuPerOp(r *runResult) float64    { return r.ServerUsPerOp }
func clientPerOp(r *runResult) float64 { return r.ClientUsPerOp }
func allLatency(r *runResult) latency  { return r.Latency }

func kindLatency(kind string) func(*runResult) latency {
	return func(r *runResult) latency { return r.ByKind[kind] }
}

// cpuPerKey is server CPU-µs per key read by an mget.
func cpuPerKey(keys int) func(*runResult) float64 {
	return func(r *runResult) float64 { return r.ServerUsPerOp / float64(keys) }
}

// numRow is a row of rates or counts: values rounded with thousands
// separators (or with one decimal when decimals is set), ratios over the
// first.
func numRow(workload, metric string, runs []*runResult, f func(*runResult) float64, decimals bool) (row, bool) {
	r := row{Workload: workload, Metric: metric}
	any := false
	vals := make([]float64, len(runs))
	for i, run := range runs {
		if run == nil {
			r.Values = append(r.Values, "–")
			continue
		}
		any = true
		vals[i] = f(run)
		if decimals {
			r.Values = append(r.Values, strconv.FormatFloat(vals[i], 'f', 1, 64))
		} else {
			r.Values = append(r.Values, fmtCount(vals[i]))
		}
	}
	for i := 1; i < len(runs); i++ {
		if runs[0] == nil || runs[i] == nil {
			r.Ratios = append(r.Ratios, "–")
			continue
		}
		r.Ratios = append(r.Ratios, fmtRatio(vals[0], vals[i]))
	}
	return r, any
}

// latRow is a row of p50 / p99 / p99.9 latencies.
func latRow(workload, metric string, runs []*runResult, f func(*runResult) latency) (row, bool) {
	r := row{Workload: workload, Metric: metric}
	any := false
	lats := make([]latency, len(runs))
	for i, run := range runs {
		if run != nil {
			lats[i] = f(run)
			any = true
		}
		r.Values = append(r.Values, fmtTriple(lats[i]))
	}
	for i := 1; i < len(runs); i++ {
		r.Ratios = append(r.Ratios, fmtTripleRatio(lats[0], lats[i]))
	}
	return r, any
}

// add appends r to t if it has any figure.
func (t *table) add(r row, ok bool) {
	if ok {
		t.Rows = append(t.Rows, r)
	}
}

// runsOf looks up the runs prefix+system for each system.
func (res *results) runsOf(prefix string, systems ...string) []*runResult {
	out := make([]*runResult, len(systems))
	for i, s := range systems {
		out[i] = res.find(prefix + s)
	}
	return out
}

// buildTables turns the results into the ratio tables, leaving out
// workloads that did not run.
func buildTables(res *results) []table {
	var out []table
	for _, t := range []struct {
		t      table
		prefix string // of the IDs of the runs the table shows
	}{
		{readsTable(res), "reads/"}, {respTable(res), ""}, {mgetTable(res), "mget/"},
		{ycsbTable(res), "ycsb-"}, {writesTable(res), "writes/"}, {durableSetTable(res), ""}, {propTable(res), ""},
		{groupTable(res), "group/"},
	} {
		if len(t.t.Rows) == 0 {
			continue
		}
		if mean, ok := res.otherCoresOf(t.prefix); ok {
			t.t.Note += fmt.Sprintf(" Other processes on the machine took %.2f cores on average during these runs.", mean)
		}
		out = append(out, t.t)
	}
	return out
}

func readsTable(res *results) table {
	t := table{
		Title:   "Point reads at a replica",
		Systems: []string{"argent", "etcd serializable", "etcd linearizable", "Redis"},
		Note: fmt.Sprintf("%d connections. argent: GET /v1/kv/{key} at a replica (HTTP/1.1); etcd: Range on its one member; Redis: GET at the replica. "+
			"Closed loop for throughput; open loop at one rate for every system (%.0f%% of the slowest closed-loop rate of the row) for latency, measured from each request's scheduled send time. "+
			"Server CPU counts every process of the system (argent root and replica, Redis primary and replica).", res.Settings.Conns, 100*res.Settings.OpenShare),
	}
	systems := []string{"argent", "etcd-ser", "etcd-lin", "redis"}
	for _, ds := range res.Datasets {
		for _, dist := range []string{distUniform, distZipf} {
			w := ds.Name + ", " + dist
			if dist == distZipf {
				w = fmt.Sprintf("%s, Zipf %.2f", ds.Name, res.Settings.ZipfTheta)
			}
			closed := res.runsOf(readID(&dataset{slug: ds.Slug}, dist, "closed", ""), systems...)
			t.add(numRow(w, "reads/s, closed loop", closed, opsPerSec, false))
			open := res.runsOf(readID(&dataset{slug: ds.Slug}, dist, "open", ""), systems...)
			rate := res.OpenRates[ds.Slug+"/"+dist]
			t.add(latRow(w, fmt.Sprintf("p50 / p99 / p99.9 ms, open loop at %s/s", fmtCount(rate)), open, allLatency))
			t.add(numRow(w, "server CPU-µs per read (closed loop)", closed, cpuPerOp, true))
			t.add(numRow(w, "client CPU-µs per read (closed loop)", closed, clientPerOp, true))
		}
	}
	return t
}

func respTable(res *results) table {
	t := table{
		Title:   "redis-benchmark against argent's RESP port and Redis",
		Systems: []string{"argent RESP", "Redis"},
		Note:    "The same redis-benchmark flags against the argent replica's --resp-listen port and the Redis replica: -c 50 -r KEYS, -t get or a custom MGET key:__rand_int__ x100, -P 1 or 16; the request count is calibrated to about -duration. redis-benchmark is one thread.",
	}
	for _, cmd := range []string{"get", "mget"} {
		for _, pl := range rbPipelines {
			a, r := res.findRB(rbID(cmd, pl, "argent")), res.findRB(rbID(cmd, pl, "redis"))
			if a == nil && r == nil {
				continue
			}
			w := fmt.Sprintf("GET, -P %d", pl)
			if cmd == "mget" {
				w = fmt.Sprintf("MGET of %d keys, -P %d", res.Settings.MGetKeys, pl)
			}
			t.Rows = append(t.Rows, rbRows(w, a, r, cmd == "mget")...)
		}
	}
	return t
}

// durableSetTable is the redis-benchmark SETs of the durable workload.
func durableSetTable(res *results) table {
	t := table{
		Title:   "Durable SET: redis-benchmark against an argent root alone and Redis with appendfsync always",
		Systems: []string{"argent root RESP", "Redis (appendfsync always)"},
		Note: fmt.Sprintf("The same redis-benchmark flags against the --resp-listen port of an argent root with no children and a standalone Redis with appendonly yes and appendfsync always: "+
			"-c %d -d %d -r %d -t set, -P 1 or 16; the request count is calibrated to about -duration. Both answer a SET once it is fsynced; both start empty. "+
			"redis-benchmark is one thread. Server CPU is that of the argent root or the Redis server.", res.Settings.Conns, durableSetValue, durableSetKeys),
	}
	for _, pl := range rbPipelines {
		a, r := res.findRB(rbID(durableSetCmd.name, pl, rbArgentRoot)), res.findRB(rbID(durableSetCmd.name, pl, rbRedisAOF))
		if a == nil && r == nil {
			continue
		}
		w := fmt.Sprintf("SET of %s, -P %d", sizeName(durableSetValue), pl)
		t.Rows = append(t.Rows, rbRows(w, a, r, false)...)
		t.Rows = append(t.Rows, rbRow(w, "server CPU-µs per SET", a, r, rbCPUPerRequest, func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }))
	}
	return t
}

// rbRows are the rows of one redis-benchmark command run against argent
// (a) and its peer (p), either of them nil when it did not run:
// requests/s, keys/s when perKey, and p50 / p99.
func rbRows(workload string, a, p *rbResult, perKey bool) []row {
	out := []row{rbRow(workload, "requests/s", a, p, func(x *rbResult) float64 { return x.RPS }, fmtCount)}
	if perKey {
		out = append(out, rbRow(workload, "keys/s", a, p, func(x *rbResult) float64 { return x.KeysPerSec }, fmtCount))
	}
	pair := func(x *rbResult) string {
		if x == nil {
			return "–"
		}
		return fmtMs(x.P50) + " / " + fmtMs(x.P99)
	}
	p50 := func(x *rbResult) float64 { return x.P50 }
	p99 := func(x *rbResult) float64 { return x.P99 }
	return append(out, row{Workload: workload, Metric: "p50 / p99 ms",
		Values: []string{pair(a), pair(p)},
		Ratios: []string{fmtRatio(rbFig(a, p50), rbFig(p, p50)) + " / " + fmtRatio(rbFig(a, p99), rbFig(p, p99))}})
}

// rbRow is one figure f of a and p, written by format, and a over p.
func rbRow(workload, metric string, a, p *rbResult, f func(*rbResult) float64, format func(float64) string) row {
	return row{Workload: workload, Metric: metric,
		Values: []string{format(rbFig(a, f)), format(rbFig(p, f))},
		Ratios: []string{fmtRatio(rbFig(a, f), rbFig(p, f))}}
}

// rbFig is f of x, 0 when x is nil.
func rbFig(x *rbResult, f func(*rbResult) float64) float64 {
	if x == nil {
		return 0
	}
	return f(x)
}

// rbCPUPerRequest is the server CPU-µs per request of a redis-benchmark
// run, 0 when it was not measured.
func rbCPUPerRequest(x *rbResult) float64 {
	if x.Requests == 0 {
		return 0
	}
	return x.ServerCores * x.Wall * 1e6 / float64(x.Requests)
}

func mgetTable(res *results) table {
	k := res.Settings.MGetKeys
	t := table{
		Title:   fmt.Sprintf("Multi-key reads, %d keys per request", k),
		Systems: []string{"argent", "etcd", "Redis"},
		Note: fmt.Sprintf("%d connections, closed loop, keys chosen uniformly. argent: POST /v1/mget at a replica (one index for all keys); "+
			"etcd: a Txn of %d serializable Gets (one revision); Redis: MGET at the replica.", res.Settings.Conns, k),
	}
	for _, ds := range res.Datasets {
		runs := res.runsOf("mget/"+ds.Slug+"/", "argent", "etcd-ser", "redis")
		t.add(numRow(ds.Name, "requests/s", runs, opsPerSec, false))
		t.add(numRow(ds.Name, "keys/s", runs, keysPerSec, false))
		t.add(numRow(ds.Name, "server CPU-µs per key", runs, cpuPerKey(k), true))
		t.add(latRow(ds.Name, "p50 / p99 / p99.9 ms", runs, allLatency))
	}
	return t
}

func ycsbTable(res *results) table {
	t := table{
		Title:   "YCSB-style mixes",
		Systems: []string{"argent", "etcd", "Redis"},
		Note: fmt.Sprintf("%d connections, closed loop. B: 95%% reads, 5%% updates, keys by Zipf %.2f. D: 95%% reads of recently inserted keys (YCSB's latest distribution), 5%% inserts of new keys. "+
			"Reads at a replica (etcd: serializable), writes at the root (Redis: the primary, no persistence). A D read of a key inserted at the root but not yet at the replica answers not found and counts as a read.",
			res.Settings.Conns, res.Settings.ZipfTheta),
	}
	for _, ds := range res.Datasets {
		for _, mix := range []string{ycsbB, ycsbD} {
			runs := res.runsOf("ycsb-"+mix+"/"+ds.Slug+"/", "argent", "etcd-ser", "redis")
			w := mix + ", " + ds.Name
			write := "update"
			if mix == ycsbD {
				write = "insert"
			}
			t.add(numRow(w, "ops/s", runs, opsPerSec, false))
			t.add(latRow(w, "read p50 / p99 / p99.9 ms", runs, kindLatency("read")))
			t.add(latRow(w, write+" p50 / p99 / p99.9 ms", runs, kindLatency(write)))
			if mix == ycsbD {
				t.add(missRow(w, runs))
			}
		}
	}
	return t
}

func writesTable(res *results) table {
	t := table{
		Title:   "Durable writes at the root",
		Systems: []string{"argent", "etcd", "Redis (no persistence)", "Redis (appendfsync always)"},
		Note: "Closed loop, overwrites of uniformly chosen existing keys. argent: PUT /v1/kv/{key} at the root, answered once fsynced, in two set-ups: the root whose replica serves the other workloads (the replica applies every write on the same two cores) and a root with no children (as the one etcd member has no followers); etcd: Put (Raft WAL fsynced). " +
			"Redis without persistence (SET at a primary with a replica attached) is a reference, not a durable store; Redis with appendonly yes and appendfsync always (standalone) is durable.",
	}
	for _, ds := range res.Datasets {
		for _, n := range res.Settings.Writers {
			for _, setup := range []struct{ system, label string }{{"argent", "root + replica"}, {"argent-solo", "root alone"}} {
				runs := res.runsOf(fmt.Sprintf("writes/%s/w%d/", ds.Slug, n), setup.system, "etcd", "redis", "redis-aof")
				if runs[0] == nil {
					continue // a result file from before root-alone runs
				}
				w := fmt.Sprintf("%s, %d writer", ds.Name, n)
				if n > 1 {
					w += "s"
				}
				w += ", argent " + setup.label
				t.add(numRow(w, "writes/s", runs, opsPerSec, false))
				t.add(latRow(w, "p50 / p99 / p99.9 ms", runs, allLatency))
				t.add(numRow(w, "server CPU-µs per write", runs, cpuPerOp, true))
			}
		}
	}
	return t
}

func propTable(res *results) table {
	t := table{
		Title:   "Propagation: write to visible at a replica",
		Systems: []string{"argent", "etcd watch", "Redis replica"},
		Note: "One key per write, open loop at a fixed rate; delay from the start of the write request to the moment the observer read it. argent: a watch stream (GET /v1/watch) on the replica of a root with that one replica (1 hop), or on the last replica of a chain root -> r1 -> r2 -> r3 (3 hops), which sends a batch once the replica has applied and synced it; " +
			"etcd: a watch on the one member; Redis: keyspace notifications (notify-keyspace-events K$) subscribed at the replica, published when it applies the SET.",
	}
	for _, rate := range res.Settings.PropRates {
		for _, hop := range []struct {
			label string
			obs   string
		}{{"1 hop", "argent-r1"}, {"3 hops", "argent-r3"}} {
			ps := []*propResult{
				res.findProp(fmt.Sprintf("propagate/%g/%s", rate, hop.obs)),
				res.findProp(fmt.Sprintf("propagate/%g/etcd-watch", rate)),
				res.findProp(fmt.Sprintf("propagate/%g/redis-replica", rate)),
			}
			runs := make([]*runResult, len(ps))
			for i, p := range ps {
				if p != nil {
					runs[i] = &runResult{Latency: p.Delay, Ops: int64(p.Seen)}
				}
			}
			w := fmt.Sprintf("%s writes/s, argent %s", fmtCount(rate), hop.label)
			t.add(latRow(w, "delay p50 / p99 / p99.9 ms", runs, allLatency))
			if hop.obs == "argent-r1" {
				t.add(propCPURow(w, ps))
			}
			if hop.obs == "argent-r1" && (ps[0] != nil || ps[1] != nil || ps[2] != nil) {
				seen := row{Workload: w, Metric: "writes seen / acknowledged"}
				for _, p := range ps {
					if p == nil {
						seen.Values = append(seen.Values, "–")
					} else {
						seen.Values = append(seen.Values, fmt.Sprintf("%d / %d", p.Seen, p.Written))
					}
				}
				seen.Ratios = []string{"", ""}
				t.Rows = append(t.Rows, seen)
			}
		}
	}
	return t
}

// missRow is the share of a D run's requests that read a key the system
// had acknowledged at the root but the replica did not have yet.
func missRow(workload string, runs []*runResult) (row, bool) {
	r := row{Workload: workload, Metric: "reads not found at the replica yet (% of requests)"}
	any := false
	for i, run := range runs {
		if i > 0 {
			r.Ratios = append(r.Ratios, "")
		}
		if run == nil || run.Ops == 0 {
			r.Values = append(r.Values, "–")
			continue
		}
		any = true
		r.Values = append(r.Values, strconv.FormatFloat(100*float64(run.Misses)/float64(run.Ops), 'f', 2, 64)+" %")
	}
	return r, any
}

// propCPURow gives the cores of each system's processes during a
// propagation run, and those of other processes, which explain a tail.
func propCPURow(workload string, ps []*propResult) (row, bool) {
	r := row{Workload: workload, Metric: "cores: system / other processes"}
	any := false
	for i, p := range ps {
		if i > 0 {
			r.Ratios = append(r.Ratios, "")
		}
		if p == nil {
			r.Values = append(r.Values, "–")
			continue
		}
		any = true
		r.Values = append(r.Values, fmt.Sprintf("%.2f / %.2f", p.ServerCores, p.OtherCores))
	}
	return r, any
}
