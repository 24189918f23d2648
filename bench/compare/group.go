package main

// The group workload: the replicated write path. PUTs at a three-member
// argent root group (go.etcd.io/raft/v3 inside argent root --id/--peers)
// beside Puts at a three-member etcd, and at a single argent root, in the
// same interleaved rounds on this machine.

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// groupSize is the members of each group of the group workload.
const groupSize = 3

// The set-ups of the group workload, as system names in run IDs.
const (
	sysArgentGroup       = "argent-3"        // argent root group, writers spread over the members
	sysArgentGroupLeader = "argent-3-leader" // the same group, every writer at the leader
	sysArgentSingle      = "argent-1"        // a single argent root (no --peers)
	sysEtcdGroup         = "etcd-3"          // etcd cluster, each writer's client balancing over the members
)

// groupReadyTimeout bounds the wait for a group's first leader.
const groupReadyTimeout = 30 * time.Second

// groupInfo is what the results record of the group workload besides its
// runs: the data set, and the argent group's leader before and after the
// measured runs (a change means the leader set-up wrote to a follower for
// part of the time).
type groupInfo struct {
	Dataset     string `json:"dataset"` // slug
	DatasetName string `json:"dataset_name"`
	Writers     int    `json:"writers"`
	Leader      uint64 `json:"leader"` // Raft ID of the argent group's leader when the runs began
	Term        uint64 `json:"term"`
	LeaderAfter uint64 `json:"leader_after"` // and when they ended
	TermAfter   uint64 `json:"term_after"`
	// Profiles are the CPU profiles saved with -pprof.
	Profiles []groupProfile `json:"profiles,omitempty"`
}

// groupProfile is one CPU profile of an argent node under one set-up's
// load, and what the node's metrics say about the same seconds.
type groupProfile struct {
	System    string  `json:"system"` // the set-up whose load ran
	Node      string  `json:"node"`
	Role      string  `json:"role"` // leader, follower, single
	Path      string  `json:"path"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"` // of the whole set-up during the profile run
	// Cores is the node's CPU during the profile (process_cpu_seconds_total).
	Cores float64 `json:"cores"`
	// Proposals are this node's merged batches applied in the profile
	// (argent_root_group_batches_count), Batches the client batches in
	// them, CommitMs their mean time from the first writer's queueing to
	// the answer (argent_root_commit_seconds).
	Proposals float64 `json:"proposals"`
	Batches   float64 `json:"batches"`
	CommitMs  float64 `json:"commit_ms"`
	// Entries is how far the node's argent index moved: the merged batches
	// of every member (each member applies all of them).
	Entries float64 `json:"entries"`
}

// groupEnv is the servers of the group workload, every one a process of
// c, stopped by PID when the workload ends.
type groupEnv struct {
	c       *benchnode.Cluster
	members []*benchnode.Proc // the argent root group; members[i] has Raft ID i+1
	single  *benchnode.Proc   // a single argent root
	etcd    []*benchnode.Proc // the etcd cluster
}

// runGroup starts a three-member argent root group, a single argent root
// and a three-member etcd, loads the first data set's keys into each, and
// runs closed loops of cfg.conns writers overwriting existing keys at each
// set-up in interleaved rounds; with -pprof it then profiles the argent
// nodes under each argent set-up's load.
func runGroup(ctx context.Context, cfg config, res *results, dir string, log io.Writer) error {
	fmt.Fprintln(log, "== group: starting a three-member argent root group, a single argent root and a three-member etcd")
	e, err := startGroupEnv(ctx, cfg.bins, filepath.Join(dir, "group"), cfg.pprofDir != "")
	if err != nil {
		return err
	}
	defer e.c.Close(cfg.keep)
	ds := newDataset(cfg.keys, cfg.values[0], cfg.theta, cfg.seed)
	lead, term, err := e.leader(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "argent group: leader %s (Raft ID %d, term %d)\n", e.members[lead].Addr, lead+1, term)
	if err := e.load(ctx, res, ds, lead, log); err != nil {
		return err
	}
	systems, closeAll, err := e.systems(ctx, cfg.conns, lead)
	if err != nil {
		return err
	}
	defer closeAll()
	gcfg := cfg
	gcfg.duration = cfg.groupDuration
	runs, err := measure(ctx, gcfg, systems, comparison{
		id:        func(s system) string { return groupID(ds.slug, cfg.conns, s.name) },
		workers:   cfg.conns,
		newWorker: func(s system) func(int, *mrand.Rand) worker { return writeWorkerOf(s, ds) },
	})
	if err != nil {
		return err
	}
	for _, r := range runs {
		res.Runs = append(res.Runs, r)
		fmt.Fprintln(log, r.line())
	}
	info := &groupInfo{Dataset: ds.slug, DatasetName: ds.name, Writers: cfg.conns, Leader: uint64(lead + 1), Term: term}
	res.Group = info
	if after, termAfter, err := e.leader(ctx); err == nil {
		info.LeaderAfter, info.TermAfter = uint64(after+1), termAfter
	} else {
		fmt.Fprintf(log, "argent group after the runs: %v\n", err)
	}
	if cfg.pprofDir == "" {
		return nil
	}
	return e.profile(ctx, cfg, info, systems, ds, log)
}

// groupID is the run ID of set-up sys in the group workload.
func groupID(slug string, writers int, sys string) string {
	return fmt.Sprintf("group/%s/w%d/%s", slug, writers, sys)
}

// writeWorkerOf makes the workers of s: overwrites of uniformly chosen
// existing keys of ds.
func writeWorkerOf(s system, ds *dataset) func(int, *mrand.Rand) worker {
	return func(conn int, r *mrand.Rand) worker {
		return &writeWorker{st: s.st, conn: conn, r: r, n: ds.keys, pool: ds.pool}
	}
}

// startGroupEnv starts the servers of the group workload with their data
// under dir; the argent nodes serve /debug/pprof/ when pprof is set. It
// returns once the argent group has a leader and its dataset ID and every
// etcd member answers.
func startGroupEnv(ctx context.Context, b bins, dir string, pprof bool) (e *groupEnv, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	e = &groupEnv{c: &benchnode.Cluster{Bin: b.argent, Dir: dir}}
	defer func() {
		if err != nil {
			e.c.Close(false)
		}
	}()
	args := append([]string(nil), argentNodeArgs...)
	if pprof {
		args = append(args, "--pprof")
	}
	addrs := make([]string, groupSize)
	peers := make([]string, groupSize)
	for i := range addrs {
		if addrs[i], err = benchnode.FreeAddr(); err != nil {
			return nil, err
		}
		peers[i] = fmt.Sprintf("%d=%s", i+1, addrs[i])
	}
	for i, addr := range addrs {
		margs := append([]string{"--id", strconv.Itoa(i + 1), "--peers", strings.Join(peers, ",")}, args...)
		m, err := e.c.StartOn(ctx, fmt.Sprintf("argent-g%d", i+1), addr, "root", margs...)
		if err != nil {
			return nil, err
		}
		e.members = append(e.members, m)
	}
	if e.single, err = e.c.Start(ctx, "argent-single", "root", args...); err != nil {
		return nil, err
	}
	if e.etcd, err = startEtcdCluster(ctx, e.c, b.etcd, groupSize); err != nil {
		return nil, err
	}
	if _, _, err := e.waitLeader(ctx, groupReadyTimeout); err != nil {
		return nil, err
	}
	return e, nil
}

// startEtcdCluster starts an etcd cluster of n members on free loopback
// ports, each with its own data directory (and so its own WAL, fsynced
// before every answer), and waits until each answers a serializable Get.
// The members are launched before any is waited for: an etcd member serves
// clients only once a quorum of the cluster runs.
func startEtcdCluster(ctx context.Context, c *benchnode.Cluster, bin string, n int) ([]*benchnode.Proc, error) {
	type member struct{ name, client, peer, dir string }
	ms := make([]member, n)
	initial := make([]string, n)
	for i := range ms {
		m := member{name: fmt.Sprintf("etcd-g%d", i+1)}
		var err error
		if m.client, err = benchnode.FreeAddr(); err != nil {
			return nil, err
		}
		if m.peer, err = benchnode.FreeAddr(); err != nil {
			return nil, err
		}
		if m.dir, err = c.NewDir(m.name); err != nil {
			return nil, err
		}
		ms[i], initial[i] = m, m.name+"=http://"+m.peer
	}
	procs := make([]*benchnode.Proc, 0, n)
	for _, m := range ms {
		args := etcdArgs(m.name, filepath.Join(m.dir, "data"), m.client, m.peer, strings.Join(initial, ","))
		p, err := c.LaunchProcess(benchnode.Spec{Name: m.name, Bin: bin, Args: args, Addr: m.client})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.WaitReady(ctx, etcdReady(p.Addr)); err != nil {
			return nil, err
		}
	}
	return procs, nil
}

// leader returns the argent group's leader, as an index into members, and
// its term, once every member names the same one.
func (e *groupEnv) leader(ctx context.Context) (int, uint64, error) {
	return e.waitLeader(ctx, groupReadyTimeout)
}

// waitLeader polls the members' /v1/status until every member knows the
// dataset ID and names the same leader in the same term, for at most
// timeout.
func (e *groupEnv) waitLeader(ctx context.Context, timeout time.Duration) (int, uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		lead, term, err := e.leaderNow(ctx)
		if err == nil {
			return lead, term, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var tails []string
			for _, m := range e.members {
				tails = append(tails, m.Name+":\n"+m.Tail())
			}
			return 0, 0, fmt.Errorf("argent group: no leader that every member agrees on in %v (%w); logs:\n%s", timeout, err, strings.Join(tails, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *groupEnv) leaderNow(ctx context.Context) (int, uint64, error) {
	var lead, term uint64
	for i, m := range e.members {
		st, err := m.Status(ctx)
		if err != nil {
			return 0, 0, err
		}
		g := st.Group
		switch {
		case g == nil:
			return 0, 0, fmt.Errorf("%s: no group in /v1/status", m.Name)
		case st.DatasetID == "" || g.Leader == 0:
			return 0, 0, fmt.Errorf("%s: no dataset ID or leader yet", m.Name)
		case i > 0 && (g.Leader != lead || g.Term != term):
			return 0, 0, fmt.Errorf("%s names leader %d in term %d, %s leader %d in term %d", m.Name, g.Leader, g.Term, e.members[0].Name, lead, term)
		}
		lead, term = g.Leader, g.Term
	}
	if lead < 1 || lead > uint64(len(e.members)) {
		return 0, 0, fmt.Errorf("argent group: leader %d is not one of members 1..%d", lead, len(e.members))
	}
	return int(lead - 1), term, nil
}

// load writes ds's keys into the argent group (through its leader, until
// every member applied them), the single root and the etcd cluster.
func (e *groupEnv) load(ctx context.Context, res *results, ds *dataset, lead int, log io.Writer) error {
	var others []*benchnode.Proc
	for i, m := range e.members {
		if i != lead {
			others = append(others, m)
		}
	}
	if err := loadStep(res, log, ds, sysArgentGroup, ds.name, func() error {
		return loadArgent(ctx, e.members[lead], others, ds.keys, keyString, ds.pool.of)
	}); err != nil {
		return err
	}
	if err := loadStep(res, log, ds, sysArgentSingle, ds.name, func() error {
		return loadArgent(ctx, e.single, nil, ds.keys, keyString, ds.pool.of)
	}); err != nil {
		return err
	}
	clis, err := newEtcdClients(ctx, 8, e.etcdAddrs()...)
	if err != nil {
		return err
	}
	defer closeEtcdClients(clis)
	return loadStep(res, log, ds, sysEtcdGroup, ds.name, func() error {
		return loadEtcd(ctx, clis, ds.keys, keyString, ds.pool.of)
	})
}

func (e *groupEnv) memberAddrs() []string {
	out := make([]string, len(e.members))
	for i, m := range e.members {
		out[i] = m.Addr
	}
	return out
}

func (e *groupEnv) memberPIDs() []int {
	out := make([]int, len(e.members))
	for i, m := range e.members {
		out[i] = m.PID()
	}
	return out
}

func (e *groupEnv) etcdAddrs() []string {
	out := make([]string, len(e.etcd))
	for i, p := range e.etcd {
		out[i] = p.Addr
	}
	return out
}

func (e *groupEnv) etcdPIDs() []int {
	out := make([]int, len(e.etcd))
	for i, p := range e.etcd {
		out[i] = p.PID()
	}
	return out
}

// systems are the set-ups measured, each with conns connections, in the
// order their rounds run; closeAll closes their connections. The CPU of a
// group set-up is that of all its members.
func (e *groupEnv) systems(ctx context.Context, conns, lead int) (_ []system, closeAll func(), err error) {
	spread := newArgentWriters(e.memberAddrs(), conns)
	atLeader := newArgentWriters([]string{e.members[lead].Addr}, conns)
	single := newArgentWriters([]string{e.single.Addr}, conns)
	etcd, err := newEtcdClients(ctx, conns, e.etcdAddrs()...)
	closeAll = func() {
		spread.close()
		atLeader.close()
		single.close()
		closeEtcdClients(etcd)
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return []system{
		{name: sysArgentGroup, st: spread, pids: e.memberPIDs()},
		{name: sysArgentGroupLeader, st: atLeader, pids: e.memberPIDs()},
		{name: sysArgentSingle, st: single, pids: []int{e.single.PID()}},
		{name: sysEtcdGroup, st: &etcdStore{clis: etcd}, pids: e.etcdPIDs()},
	}, closeAll, nil
}

// profile runs the load of each argent set-up once more, for
// cfg.pprofSeconds and a second before and after, while it saves a CPU
// profile of each of the set-up's nodes in cfg.pprofDir, named
// SETUP-NODE-ROLE.pprof, and reads their metrics before and after.
func (e *groupEnv) profile(ctx context.Context, cfg config, info *groupInfo, systems []system, ds *dataset, log io.Writer) error {
	if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
		return fmt.Errorf("-pprof: %w", err)
	}
	lead, _, err := e.leader(ctx)
	if err != nil {
		return err
	}
	pcfg := cfg
	pcfg.duration = time.Duration(cfg.pprofSeconds+2) * time.Second
	for _, s := range systems {
		type node struct {
			p    *benchnode.Proc
			role string
		}
		var nodes []node
		switch s.name {
		case sysArgentGroup, sysArgentGroupLeader:
			for i, m := range e.members {
				role := "follower"
				if i == lead {
					role = "leader"
				}
				nodes = append(nodes, node{m, role})
			}
		case sysArgentSingle:
			nodes = []node{{e.single, "single"}}
		default:
			continue
		}
		before := make([]map[string]float64, len(nodes))
		for i, n := range nodes {
			if before[i], err = n.p.Metrics(ctx); err != nil {
				return err
			}
		}
		errs := make(chan error, len(nodes))
		paths := make([]string, len(nodes))
		for i, n := range nodes {
			paths[i] = filepath.Join(cfg.pprofDir, fmt.Sprintf("%s-%s-%s.pprof", s.name, n.p.Name, n.role))
			go func() {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
				errs <- benchnode.SaveCPUProfile(ctx, n.p.Addr, cfg.pprofSeconds, paths[i])
			}()
		}
		r, err := runOn(ctx, pcfg, s, "profile/"+groupID(ds.slug, cfg.conns, s.name), cfg.conns, 0, nil, 0, writeWorkerOf(s, ds))
		var perr error
		for range nodes {
			perr = errors.Join(perr, <-errs)
		}
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		fmt.Fprintf(log, "profile run %s: %.0f writes/s, p99 %s ms\n", s.name, r.OpsPerSec, fmtMs(r.Latency.P99))
		for i, n := range nodes {
			after, err := n.p.Metrics(ctx)
			if err != nil {
				return err
			}
			gp := groupProfileOf(s.name, n.p.Name, n.role, paths[i], r, before[i], after)
			info.Profiles = append(info.Profiles, gp)
			fmt.Fprintf(log, "  %s (%s): %s; %.2f cores, %.0f argent entries/s, own merges %.0f/s of %.1f batches, answered %.2f ms after queueing\n",
				n.p.Name, n.role, gp.Path, gp.Cores, gp.Entries/gp.Seconds, gp.Proposals/gp.Seconds, perMerge(gp), gp.CommitMs)
		}
	}
	return nil
}

// groupProfileOf fills a groupProfile from the metrics of a node before and
// after the profile run r.
func groupProfileOf(sys, name, role, path string, r *runResult, before, after map[string]float64) groupProfile {
	d := func(k string) float64 { return after[k] - before[k] }
	gp := groupProfile{System: sys, Node: name, Role: role, Path: path, Seconds: r.Duration, OpsPerSec: r.OpsPerSec,
		Proposals: d("argent_root_group_batches_count"), Batches: d("argent_root_group_batches_sum"),
		Entries: d("argent_applied_index")}
	if r.Duration > 0 {
		gp.Cores = d("process_cpu_seconds_total") / r.Duration
	}
	if n := d("argent_root_commit_seconds_count"); n > 0 {
		gp.CommitMs = 1000 * d("argent_root_commit_seconds_sum") / n
	}
	return gp
}

// perMerge is the mean client batches per merged batch of a profile's node.
func perMerge(gp groupProfile) float64 {
	if gp.Proposals == 0 {
		return 0
	}
	return gp.Batches / gp.Proposals
}
