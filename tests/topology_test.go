package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// topology is the deployment of deploy/compose.yaml and
// deploy/local-tree.sh: a root group of three members, two replicas (each
// following the group, in a different order), a relay of DC dc1 over both
// replicas, and two proxies of dc1 behind the relay sharing the DC's L2
// shards.
type topology struct {
	group    *cluster.Group
	replicas []*cluster.Node
	relay    *cluster.Node
	proxies  []*cluster.Node
}

func startTopology(t *testing.T) *topology {
	t.Helper()
	topo := &topology{group: cluster.StartGroup(t, 3, cluster.GroupOptions{})}
	m := topo.group.Addrs()
	for _, ups := range [][]string{{m[0], m[1], m[2]}, {m[1], m[2], m[0]}} {
		topo.replicas = append(topo.replicas, cluster.StartReplica(t, ups, "--dc", "dc1"))
	}
	topo.relay = cluster.NewNode(t, "relay", "--upstream", topo.replicas[0].Addr+","+topo.replicas[1].Addr, "--dc", "dc1")
	topo.relay.Start()
	topo.relay.WaitReady(cluster.DefaultReadyTimeout)
	var addrs []string
	for range 2 {
		px := cluster.NewNode(t, "proxy", "--upstream", topo.relay.Addr, "--dc", "dc1", "--cache-size", "4MiB",
			"--window-bytes", "16KiB", "--free-disk-floor", "64MiB")
		topo.proxies = append(topo.proxies, px)
		addrs = append(addrs, px.Addr)
	}
	for _, px := range topo.proxies {
		px.Args = append(px.Args, "--dc-peers", strings.Join(addrs, ","))
		px.Start()
	}
	for _, px := range topo.proxies {
		px.WaitReady(cluster.DefaultReadyTimeout)
		px.WaitFirstState(cluster.DefaultReadyTimeout)
	}
	dumpOnFailure(t, topo.nodes()...)
	return topo
}

func (topo *topology) nodes() []*cluster.Node {
	ns := slices.Clone(topo.group.Members)
	ns = append(ns, topo.replicas...)
	return append(append(ns, topo.relay), topo.proxies...)
}

// readLoad reads the keys startPacedLoad writes at every proxy and
// replica until d has passed or the returned stop is called, so that
// rates and tiers show on the status page.
func readLoad(t *testing.T, topo *topology, d time.Duration) (stop func()) {
	var cs []*client.Client
	for _, n := range append(slices.Clone(topo.replicas), topo.proxies...) {
		cs = append(cs, newClient(t, n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	var wg sync.WaitGroup
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("load/%03d", i)) // startPacedLoad's keys
	}
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; ctx.Err() == nil; j++ {
				_, _ = c.Get(ctx, []byte(keys[j%len(keys)]), client.ReadOptions{})
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// TestTopology_Checker starts the deployment topology from the binary (the
// processes deploy/local-tree.sh starts) and runs the consistency checker
// over it: writers at a root member, readers spread over both replicas and
// both proxies, each node checked on its own. No node fails, so no read
// may fail but by a min_index wait running out. Then it checks that every
// metric the Grafana dashboard and the Prometheus rules query is exported
// by a node of the topology.
func TestTopology_Checker(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	topo := startTopology(t)
	var targets []readTarget
	for _, n := range append(slices.Clone(topo.replicas), topo.proxies...) {
		targets = append(targets, readTarget{node: n.Name, c: newClient(t, n)})
	}
	writeAt := topo.group.Members[0]
	w := newSpreadWorkload(seed, newClient(t, writeAt), targets, workloadConfig{
		writers: 3, readers: 6, rywReaders: 2, rootReaders: 1,
		duration: 6 * time.Second, maxOps: 3000,
	})
	w.start()
	defer w.halt()
	w.wait()
	w.logSummary(t)

	tr := finalTruth(t, w, writeAt)
	w.checkProblems(t)
	w.checkWrites(t, tr)
	nodes := []string{"root"}
	for _, tg := range targets {
		nodes = append(nodes, tg.node)
	}
	for _, node := range nodes {
		w.checkReads(t, tr, node)
		w.checkMonotonic(t, node)
	}
	w.mu.Lock()
	for _, node := range nodes {
		if len(w.mu.reads[node]) == 0 {
			t.Errorf("no read succeeded at the %s", node)
		}
	}
	for node, errs := range w.mu.readErrs {
		for class, n := range errs.counts {
			if class != "timeout" {
				t.Errorf("%d reads at the %s failed with %s (no node was killed): %v", n, node, class, errs)
			}
		}
	}
	w.mu.Unlock()
	waitAllApplied(t, topo.nodes(), tr.final(), 20*time.Second)

	checkDeployMetrics(t, topo)
}

// promMetric matches the argent metric names in PromQL expressions.
var promMetric = regexp.MustCompile(`\bargent_[a-z0-9_]+`)

// deployQueries returns, by file, the argent metric names that the
// dashboard's and the alert rules' PromQL expressions use.
func deployQueries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for f, exprs := range map[string][]string{
		"grafana/argent.json":   dashboardExprs(t),
		"prometheus/alerts.yml": ruleExprs(t),
	} {
		if len(exprs) == 0 {
			t.Fatalf("deploy/%s has no expression", f)
		}
		seen := map[string]bool{}
		for _, e := range exprs {
			for _, m := range promMetric.FindAllString(e, -1) {
				if !seen[m] {
					seen[m] = true
					out[f] = append(out[f], m)
				}
			}
		}
		sort.Strings(out[f])
	}
	return out
}

// dashboardExprs returns the PromQL expressions of the Grafana dashboard's
// panels.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "argent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/argent.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// ruleExprs returns the expressions of the alerting rules: each "expr:"
// line with the indented lines of a block scalar after it (promtool checks
// the file's syntax).
func ruleExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		_, e, ok := strings.Cut(lines[i], "expr:")
		if !ok {
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		for i+1 < len(lines) && len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent {
			i++
			e += " " + lines[i]
		}
		exprs = append(exprs, e)
	}
	return exprs
}

// metricRoles are the roles that must export the metrics whose names
// start with prefix, for the dashboard's panels and the alerts of that role
// to see every node of it.
var metricRoles = []struct {
	prefix string
	roles  []string
}{
	{"argent_proxy_", []string{"proxy"}},
	{"argent_relay_", []string{"relay"}},
	{"argent_group_", []string{"root"}},
	{"argent_root_commit_", []string{"root"}},
	{"argent_root_group_", []string{"root"}},
	{"argent_storage_failed", []string{"root", "replica"}},
	{"argent_disk_free", []string{"root", "replica", "proxy"}},
	{"argent_lag_", []string{"root", "replica", "relay", "proxy"}},
	{"argent_applied_index", []string{"root", "replica", "relay", "proxy"}},
	{"argent_upstream_failures_total", []string{"replica", "relay", "proxy"}},
}

// checkDeployMetrics checks that every metric deploy/ queries is exported
// by a node of the topology: the root members, replicas, relay and proxies
// together export every metric there is.
func checkDeployMetrics(t *testing.T, topo *topology) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	byRole := map[string]map[string]bool{}
	for _, n := range topo.nodes() {
		m, err := scrapeMetrics(hc, n)
		if err != nil {
			t.Fatal(err)
		}
		role := n.Args[0]
		if byRole[role] == nil {
			byRole[role] = map[string]bool{}
		}
		for name := range m {
			byRole[role][name] = true
		}
	}
	for f, names := range deployQueries(t) {
		for _, name := range names {
			var roles []string
			for role, have := range byRole {
				if have[name] {
					roles = append(roles, role)
				}
			}
			if len(roles) == 0 {
				t.Errorf("deploy/%s queries %s, which no node exports", f, name)
				continue
			}
			for _, mr := range metricRoles {
				if !strings.HasPrefix(name, mr.prefix) {
					continue
				}
				for _, want := range mr.roles {
					if !byRole[want][name] {
						t.Errorf("deploy/%s queries %s, which the %s does not export", f, name, want)
					}
				}
			}
			sort.Strings(roles)
			t.Logf("deploy/%s: %s on %s", f, name, strings.Join(roles, ", "))
		}
	}
}
