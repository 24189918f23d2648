package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

func start(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newClient(t *testing.T, n *node.Node) *client.Client {
	t.Helper()
	c, err := client.New(n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls f until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitApplied(t *testing.T, n *node.Node, i argent.Index) {
	t.Helper()
	waitFor(t, 20*time.Second, func() error {
		if got := n.Store().Applied(); got < i {
			return fmt.Errorf("node %s at %d, want %d", n.Addr(), got, i)
		}
		return nil
	})
}

// stateHash hashes every live key and value of s at its applied index.
func stateHash(t *testing.T, s *kv.Store) (argent.Index, [32]byte) {
	t.Helper()
	at := s.Applied()
	h := sha256.New()
	var after []byte
	for {
		items, more, err := s.Scan(context.Background(), nil, after, 1000, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			fmt.Fprintf(h, "%q=%q@%d\n", it.Key, it.Value.Value, it.ModIndex)
		}
		if !more {
			break
		}
		after = items[len(items)-1].Key
	}
	var out [32]byte
	h.Sum(out[:0])
	return at, out
}

func write(t *testing.T, c *client.Client, n int, prefix string) argent.Index {
	t.Helper()
	var last argent.Index
	for i := 0; i < n; i++ {
		b := argent.Batch{Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte(fmt.Sprintf("%s/%04d", prefix, i)), Value: bytes.Repeat([]byte{byte(i)}, 100)},
			{Type: argent.OpPut, Key: []byte(fmt.Sprintf("%s/last", prefix)), Value: []byte(fmt.Sprint(i))},
		}}
		if i%7 == 3 {
			b.Ops = append(b.Ops, argent.Op{Type: argent.OpDelete, Key: []byte(fmt.Sprintf("%s/%04d", prefix, i-1))})
		}
		idx, err := c.Txn(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	return last
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				total += m.Counter.GetValue()
			}
			if m.Gauge != nil {
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

func TestNode_ReplicaFollowsRoot(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	last := write(t, newClient(t, root), 200, "a")
	waitApplied(t, replica, last)
	ri, rh := stateHash(t, root.Store())
	pi, ph := stateHash(t, replica.Store())
	if ri != pi || rh != ph {
		t.Fatalf("root %d %x, replica %d %x", ri, rh[:4], pi, ph[:4])
	}
	if root.Store().State().Chain != replica.Store().State().Chain {
		t.Fatal("chain hashes differ at the same index")
	}
	st := replica.Status()
	if st.Role != "replica" || st.AppliedIndex != last || st.RootIndex < last || st.DatasetID != root.Status().DatasetID {
		t.Fatalf("replica status %+v", st)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(root.Status().Children) != 1 {
			return fmt.Errorf("root children %+v", root.Status().Children)
		}
		return nil
	})

	// A write sent to the replica is forwarded to the root.
	rc := newClient(t, replica)
	idx, err := rc.Put(context.Background(), []byte("fwd"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := rc.Get(context.Background(), []byte("fwd"), client.ReadOptions{MinIndex: idx})
	if err != nil || string(v.Value) != "x" || v.Index < idx || v.Tier != "replica" {
		t.Fatalf("Get after forwarded write = %+v, %v", v, err)
	}
	// A failed condition forwarded through the replica keeps its 409.
	_, err = rc.Txn(context.Background(), argent.Batch{Conditions: []argent.Condition{{Key: []byte("fwd"), ModIndex: 0}}, Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("fwd"), Value: []byte("y")}}})
	var ce *argent.ConditionError
	if !errors.As(err, &ce) || ce.Got != idx {
		t.Fatalf("forwarded failed condition = %v", err)
	}
}

// Corrupted bytes on the link are detected by the CRC, counted, and the
// replica converges anyway by fetching again.
func TestNode_CorruptLink(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	p := faultproxy.Start(t, root.Addr())
	p.Seed(1)
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{p.Addr()}})
	c := newClient(t, root)
	write(t, c, 20, "warm")
	waitApplied(t, replica, root.Store().Applied())
	p.SetCorruptRate(0.3)
	last := write(t, c, 300, "b")
	waitFor(t, 10*time.Second, func() error {
		if p.Stats().Corrupted == 0 {
			return fmt.Errorf("nothing corrupted yet")
		}
		return nil
	})
	p.SetCorruptRate(0)
	waitApplied(t, replica, last)
	_, rh := stateHash(t, root.Store())
	_, ph := stateHash(t, replica.Store())
	if rh != ph {
		t.Fatal("replica state differs from the root after corruption")
	}
	if got := counter(t, replica.Registry(), "argent_corrupt_frames_total"); got == 0 {
		t.Fatalf("argent_corrupt_frames_total = 0 after %d corrupted chunks", p.Stats().Corrupted)
	}
}

// A replica whose next index the root no longer has bootstraps from a
// snapshot, then follows the log.
func TestNode_SnapshotBootstrap(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot, LogBytes: 2000, TrimInterval: 20 * time.Millisecond})
	c := newClient(t, root)
	write(t, c, 300, "c")
	waitFor(t, 10*time.Second, func() error {
		if root.Store().LogFirst() <= 1 {
			return fmt.Errorf("log not trimmed yet")
		}
		return nil
	})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	last := write(t, c, 10, "d")
	waitApplied(t, replica, last)
	_, rh := stateHash(t, root.Store())
	_, ph := stateHash(t, replica.Store())
	if rh != ph {
		t.Fatal("replica state differs from the root after a snapshot")
	}
	if got := counter(t, replica.Registry(), "argent_snapshots_loaded_total"); got != 1 {
		t.Fatalf("snapshots loaded = %v, want 1", got)
	}
}

// A replica refuses to follow a root of another dataset, and a node refuses
// to follow itself.
func TestNode_RefusesForeignUpstream(t *testing.T) {
	rootA := start(t, node.Config{Role: node.RoleRoot})
	rootB := start(t, node.Config{Role: node.RoleRoot})
	dir := t.TempDir()
	replica := start(t, node.Config{Role: node.RoleReplica, DataDir: dir, Upstreams: []string{rootA.Addr()}})
	write(t, newClient(t, rootA), 5, "a")
	waitApplied(t, replica, 5)
	replica.Close()

	replica = start(t, node.Config{Role: node.RoleReplica, DataDir: dir, Upstreams: []string{rootB.Addr()}, StallTimeout: time.Second})
	write(t, newClient(t, rootB), 10, "b")
	time.Sleep(500 * time.Millisecond)
	if got := replica.Store().Applied(); got != 5 {
		t.Fatalf("replica of dataset A applied %d from root B", got)
	}
	if replica.Status().DatasetID != rootA.Status().DatasetID {
		t.Fatal("replica changed dataset")
	}
	waitFor(t, 5*time.Second, func() error {
		if counter(t, replica.Registry(), "argent_upstream_failures_total") == 0 {
			return fmt.Errorf("no upstream failure counted")
		}
		return nil
	})

	// Following itself: the parent refuses a child with its own node ID.
	req, _ := http.NewRequest(http.MethodGet, "http://"+rootA.Addr()+"/internal/v1/log?from=1", nil)
	req.Header.Set("Argent-Protocol", "1")
	req.Header.Set("Argent-Node", rootA.NodeID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "own log") {
		t.Fatalf("self-follow answered %d %q", resp.StatusCode, body)
	}
}

// A replica restarted on its data dir resumes from its applied index and
// never serves an older index.
func TestNode_ReplicaRestartResumes(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	dir := t.TempDir()
	replica := start(t, node.Config{Role: node.RoleReplica, DataDir: dir, Upstreams: []string{root.Addr()}})
	c := newClient(t, root)
	first := write(t, c, 50, "a")
	waitApplied(t, replica, first)
	replica.Close()
	second := write(t, c, 50, "b")
	replica = start(t, node.Config{Role: node.RoleReplica, DataDir: dir, Upstreams: []string{root.Addr()}})
	if got := replica.Store().Applied(); got < first {
		t.Fatalf("restarted replica at %d, had %d", got, first)
	}
	waitApplied(t, replica, second)
	if got := counter(t, replica.Registry(), "argent_snapshots_loaded_total"); got != 0 {
		t.Fatalf("restart took a snapshot instead of resuming the log")
	}
}

// A snapshot transfer cut half-way resumes after the last key loaded, even
// though the root moved on meanwhile, and ends at the root's exact state.
func TestNode_SnapshotResumesAfterCut(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot, LogBytes: 4000, TrimInterval: 20 * time.Millisecond, SnapshotRate: 1 << 20})
	c := newClient(t, root)
	const keys = 3000
	value := bytes.Repeat([]byte("v"), 1000)
	for i := 0; i < keys; i += 100 {
		b := argent.Batch{}
		for j := i; j < i+100; j++ {
			b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("k/%05d", j)), Value: value})
		}
		if _, err := c.Txn(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		if root.Store().LogFirst() <= 1 {
			return fmt.Errorf("log not trimmed yet")
		}
		return nil
	})
	p := faultproxy.Start(t, root.Addr())
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{p.Addr()}, StallTimeout: 2 * time.Second})
	// At 1 MiB/s the 3 MB snapshot takes about 3 s: cut it in the middle.
	waitFor(t, 10*time.Second, func() error {
		if n := counter(t, replica.Registry(), "argent_snapshot_records_received_total"); n < 500 {
			return fmt.Errorf("%v records received", n)
		}
		return nil
	})
	p.Cut()
	if replica.Store().Applied() != 0 {
		// Nothing may be served from a half-loaded store.
		t.Fatalf("replica serves index %d during the load", replica.Store().Applied())
	}
	// The root moves on while the link is down: the rest of the load comes
	// from a newer state, and the keys already loaded are caught up by the log.
	last := write(t, c, 20, "k")
	if _, err := c.Put(context.Background(), []byte("k/00000"), []byte("changed")); err != nil {
		t.Fatal(err)
	}
	last++
	p.Restore()
	waitApplied(t, replica, last)
	_, rh := stateHash(t, root.Store())
	_, ph := stateHash(t, replica.Store())
	if rh != ph {
		t.Fatal("replica state differs from the root after a resumed snapshot")
	}
	t.Logf("records %v, resumes %v, loads %v, root log starts at %d",
		counter(t, replica.Registry(), "argent_snapshot_records_received_total"),
		counter(t, replica.Registry(), "argent_snapshot_resumes_total"),
		counter(t, replica.Registry(), "argent_snapshots_loaded_total"), root.Store().LogFirst())
	if got := counter(t, replica.Registry(), "argent_snapshot_resumes_total"); got < 1 {
		t.Fatalf("snapshot resumes = %v, want >= 1", got)
	}
	if got := counter(t, replica.Registry(), "argent_snapshot_records_received_total"); got > keys*1.5 {
		t.Fatalf("%v records received for %d keys: the load restarted instead of resuming", got, keys)
	}
}

// A proxy whose disk has less free space than its floor says so in its
// status, and still serves.
func TestNode_ProxyBelowDiskFloorSaysSo(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	waitApplied(t, replica, write(t, newClient(t, root), 3, "f"))
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{replica.Addr()}, CacheSize: 1 << 20,
		FreeDiskFloor: 1 << 62}) // more than any disk has free
	waitFor(t, 10*time.Second, func() error {
		_, err := newClient(t, proxy).Get(context.Background(), []byte("f/0000"), client.ReadOptions{})
		return err
	})
	if !proxy.Status().DiskFull {
		t.Fatal("a proxy below its free-disk floor does not say so in its status")
	}
	other := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{replica.Addr()}, CacheSize: 1 << 20})
	if other.Status().DiskFull {
		t.Fatal("a proxy without a floor says its disk is full")
	}
}
