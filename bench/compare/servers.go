package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// envSpec says which servers one phase of the comparison needs.
type envSpec struct {
	depth    int  // argent replicas in a chain below the root
	resp     bool // the first replica also serves the Redis protocol
	rootRESP bool // the root also serves the Redis protocol
	etcd     bool
	redis    bool // a Redis primary and a replica of it
	redisAOF bool // a standalone Redis with appendfsync always
	// soloRoot: a second argent root with no children, for writes measured
	// the way a one-member etcd takes them.
	soloRoot bool
}

// env is the servers of one phase, every one a process of c, stopped by
// PID when the phase ends.
type env struct {
	c        *benchnode.Cluster
	root     *benchnode.Proc
	replicas []*benchnode.Proc // replicas[0] is one hop below the root
	solo     *benchnode.Proc   // a root without children (envSpec.soloRoot)
	respAddr string            // replicas[0]'s Redis-protocol address
	rootRESP string            // the root's Redis-protocol address (envSpec.rootRESP)
	etcd     *benchnode.Proc
	etcdSpec benchnode.Spec  // to start it again on the same data and ports
	redisP   *benchnode.Proc // Redis primary
	redisR   *benchnode.Proc // Redis replica of redisP
	redisAOF *benchnode.Proc // Redis with appendfsync always
}

// bins are the programs a comparison runs.
type bins struct {
	argent         string
	etcd           string
	redisServer    string
	redisBenchmark string
}

// argentNodeArgs are the extra arguments of every argent node: defaults
// apart from a quiet log.
var argentNodeArgs = []string{"--log-level", "warn"}

// startEnv starts the servers of spec with their data under dir.
func startEnv(ctx context.Context, b bins, dir string, spec envSpec) (e *env, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	e = &env{c: &benchnode.Cluster{Bin: b.argent, Dir: dir}}
	defer func() {
		if err != nil {
			e.c.Close(false)
		}
	}()
	rootArgs := argentNodeArgs
	if spec.rootRESP {
		if e.rootRESP, err = benchnode.FreeAddr(); err != nil {
			return nil, err
		}
		rootArgs = append([]string{"--resp-listen", e.rootRESP}, argentNodeArgs...)
	}
	if e.root, err = e.c.Start(ctx, "argent-root", "root", rootArgs...); err != nil {
		return nil, err
	}
	up := e.root
	for d := 1; d <= spec.depth; d++ {
		args := append([]string{"--upstream", up.Addr}, argentNodeArgs...)
		if d == 1 && spec.resp {
			if e.respAddr, err = benchnode.FreeAddr(); err != nil {
				return nil, err
			}
			args = append(args, "--resp-listen", e.respAddr)
		}
		r, err := e.c.Start(ctx, fmt.Sprintf("argent-r%d", d), "replica", args...)
		if err != nil {
			return nil, err
		}
		e.replicas = append(e.replicas, r)
		up = r
	}
	if spec.soloRoot {
		if e.solo, err = e.c.Start(ctx, "argent-solo", "root", argentNodeArgs...); err != nil {
			return nil, err
		}
	}
	if spec.etcd {
		if e.etcdSpec, err = etcdSpec(e.c, b.etcd); err != nil {
			return nil, err
		}
		if e.etcd, err = e.c.StartProcess(ctx, e.etcdSpec); err != nil {
			return nil, err
		}
	}
	if spec.redis {
		// No delay before a diskless full sync, so the replica attaches at once.
		if e.redisP, err = benchnode.StartRedis(ctx, e.c, b.redisServer, "redis-primary", "--appendonly", "no", "--repl-diskless-sync-delay", "0"); err != nil {
			return nil, err
		}
		host, port, _ := strings.Cut(e.redisP.Addr, ":")
		if e.redisR, err = benchnode.StartRedis(ctx, e.c, b.redisServer, "redis-replica", "--appendonly", "no", "--replicaof", host, port); err != nil {
			return nil, err
		}
	}
	if spec.redisAOF {
		if e.redisAOF, err = benchnode.StartRedis(ctx, e.c, b.redisServer, "redis-aof", "--appendonly", "yes", "--appendfsync", "always"); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// close stops every server of the phase by PID and removes its data
// unless keep is set.
func (e *env) close(keep bool) { e.c.Close(keep) }

// argentPIDs are the PIDs of the root and the replicas.
func (e *env) argentPIDs() []int {
	pids := []int{e.root.PID()}
	for _, r := range e.replicas {
		pids = append(pids, r.PID())
	}
	return pids
}

// redisPIDs are the PIDs of the Redis primary and replica.
func (e *env) redisPIDs() []int { return []int{e.redisP.PID(), e.redisR.PID()} }

// restartEtcd stops the etcd member by PID and starts it again on the
// same data directory and ports.
//
// etcd 3.4 (Debian's etcd-server) copies its backend's read buffer for
// every read, and that copy is as large as the buffer ever grew: after a
// bulk load of thousands of keys per 100 ms commit interval, each
// serializable Range allocated and copied hundreds of kilobytes
// (mvcc/backend bucketBuffer.Copy took 39 % of etcd's CPU in a profile,
// reads fell from about 9,300/s to 3,800/s on this machine). A restart
// starts with a small buffer, which is the state of a member that was not
// just bulk-loaded. Writes during later runs grow it again, as they would.
func (e *env) restartEtcd(ctx context.Context) error {
	e.etcd.Stop()
	p, err := e.c.StartProcess(ctx, e.etcdSpec)
	if err != nil {
		return fmt.Errorf("restart etcd: %w", err)
	}
	e.etcd = p
	return nil
}

// etcdSpec describes one etcd member with its own data directory, client
// and peer URLs on free loopback ports, and default durability (every
// write fsynced by Raft's WAL before it is acknowledged). The backend
// quota is raised to 8 GiB so that no data set of the comparison reaches
// it.
func etcdSpec(c *benchnode.Cluster, bin string) (benchnode.Spec, error) {
	client, err := benchnode.FreeAddr()
	if err != nil {
		return benchnode.Spec{}, err
	}
	peer, err := benchnode.FreeAddr()
	if err != nil {
		return benchnode.Spec{}, err
	}
	dir, err := c.NewDir("etcd")
	if err != nil {
		return benchnode.Spec{}, err
	}
	args := etcdArgs("compare", filepath.Join(dir, "data"), client, peer, "compare=http://"+peer)
	return benchnode.Spec{Name: "etcd", Bin: bin, Args: args, Addr: client, Ready: etcdReady(client)}, nil
}

// etcdArgs are the arguments of the etcd member name of the cluster
// initial (name=http://PEER, comma-separated), serving clients at client
// and peers at peer, with its data in dataDir: default settings apart from
// a backend quota of 8 GiB and a quiet log.
func etcdArgs(name, dataDir, client, peer, initial string) []string {
	return []string{
		"--name", name,
		"--data-dir", dataDir,
		"--listen-client-urls", "http://" + client,
		"--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer,
		"--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", initial,
		"--initial-cluster-state", "new",
		"--quota-backend-bytes", "8589934592",
		"--logger", "zap",
		"--log-level", "warn",
	}
}
