package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// startGroup starts a root group of n members in this process; tweak, if
// set, changes each member's configuration.
func startGroup(t *testing.T, n int, tweak ...func(*node.Config)) []*node.Node {
	t.Helper()
	var peers []group.Peer
	for i := range n {
		peers = append(peers, group.Peer{ID: uint64(i + 1), Addr: cluster.FreeAddr(t)})
	}
	var nodes []*node.Node
	for _, p := range peers {
		cfg := node.Config{Role: node.RoleRoot, Listen: p.Addr, GroupID: p.ID, GroupPeers: peers, DataDir: t.TempDir()}
		for _, f := range tweak {
			f(&cfg)
		}
		nodes = append(nodes, start(t, cfg))
	}
	// Until every member applied the initial configuration and knows the
	// leader, its view of the group is partial.
	waitFor(t, 10*time.Second, func() error {
		for i, n := range nodes {
			if g := n.Status().Group; g == nil || len(g.Members) != len(peers) || g.Leader == 0 {
				return fmt.Errorf("member %d: group %+v", i+1, g)
			}
		}
		return nil
	})
	return nodes
}

// A write at any member is acknowledged once applied there; a linearizable
// read at another member sees it; replicas follow any member; every member
// reports the same leader and dataset.
func TestGroup_WriteAnywhereReadAnywhere(t *testing.T) {
	nodes := startGroup(t, 3)
	ctx := context.Background()
	for i, n := range nodes {
		c := newClient(t, n)
		idx, err := c.Put(ctx, []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("v", i)))
		if err != nil {
			t.Fatalf("put at member %d: %v", i+1, err)
		}
		other := nodes[(i+1)%len(nodes)]
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/kv/k%d?linearizable=true", other.Addr(), i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprint("v", i) {
			t.Fatalf("linearizable read at member %s after a put acknowledged at %d: %d %q", other.Addr(), idx, resp.StatusCode, body)
		}
	}
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{nodes[2].Addr(), nodes[0].Addr()}})
	if _, err := replica.Store().WaitApplied(ctx, 10*time.Second, 3); err != nil {
		t.Fatalf("replica below the group: %v", err)
	}
	var leader uint64
	var dataset string
	for i, n := range nodes {
		st := n.Status()
		if st.Group == nil || len(st.Group.Members) != 3 {
			t.Fatalf("member %d status has no group of 3: %+v", i+1, st.Group)
		}
		if i == 0 {
			leader, dataset = st.Group.Leader, st.DatasetID
		}
		if st.Group.Leader != leader || leader == 0 || st.DatasetID != dataset || dataset == "" {
			t.Fatalf("member %d: leader %d dataset %q; member 1: %d %q", i+1, st.Group.Leader, st.DatasetID, leader, dataset)
		}
	}
	if replica.Store().Dataset().String() != dataset {
		t.Fatalf("replica dataset %s, group %s", replica.Store().Dataset(), dataset)
	}
}

// A replica cannot serve a linearizable read: it says so.
func TestReadBarrier_ReplicaRefuses(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	if _, err := replica.ReadBarrier(context.Background()); !errors.Is(err, argent.ErrInvalid) {
		t.Fatalf("replica ReadBarrier: %v, want ErrInvalid", err)
	}
	if at, err := root.ReadBarrier(context.Background()); err != nil || at != root.Store().Applied() {
		t.Fatalf("single root ReadBarrier = %d, %v", at, err)
	}
}

// The membership endpoints refuse bad input with a JSON error and change
// nothing; a node outside a group refuses them.
func TestMembersAPI_BadInput(t *testing.T) {
	nodes := startGroup(t, 3)
	single := start(t, node.Config{Role: node.RoleRoot})
	tests := []struct {
		name, method, addr, path, body string
		want                           int
	}{
		{"NotANumber", "DELETE", nodes[0].Addr(), "/v1/members/abc", "", 400},
		{"Zero", "DELETE", nodes[0].Addr(), "/v1/members/0", "", 400},
		{"Unknown", "DELETE", nodes[0].Addr(), "/v1/members/9", "", 404},
		{"AddExisting", "POST", nodes[0].Addr(), "/v1/members", `{"id":2,"addr":"127.0.0.1:1"}`, 400},
		{"AddNoAddr", "POST", nodes[0].Addr(), "/v1/members", `{"id":7}`, 400},
		{"AddBadJSON", "POST", nodes[0].Addr(), "/v1/members", `{"id":`, 400},
		{"WrongMethod", "GET", nodes[0].Addr(), "/v1/members", "", 405},
		{"TransferUnknown", "POST", nodes[0].Addr(), "/v1/members/9/leader", "", 404},
		{"OtherAction", "POST", nodes[0].Addr(), "/v1/members/2/nope", "", 404},
		{"SingleRoot", "DELETE", single.Addr(), "/v1/members/1", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://"+tt.addr+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), `"error"`) {
				t.Fatalf("%s %s = %d %s, want %d with a JSON error", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
		})
	}
	if got := nodes[1].Status().Group.Members; len(got) != 3 {
		t.Fatalf("members after refused changes: %v", got)
	}
}

// TestGroup_DiskAlarmAnswers507 starts a group whose member 2 has a floor
// of free disk space above any disk's: it raises its disk alarm, and every
// member answers writes (HTTP and RESP) with 507 insufficient_storage
// naming it, says so in /v1/status and argent_disk_full, and goes on
// serving reads. Restarted without the floor, member 2 clears the alarm
// and every member takes writes again.
func TestGroup_DiskAlarmAnswers507(t *testing.T) {
	var cfg2 node.Config
	nodes := startGroup(t, 3, func(c *node.Config) {
		c.RESPListen = "127.0.0.1:0"
		if c.GroupID == 2 {
			c.MinFreeDisk = 1 << 62
			cfg2 = *c
		}
	})
	alarms := func(want ...uint64) func() error {
		return func() error {
			for i, n := range nodes {
				var st apiwire.StatusResponse
				a := do(t, "GET", n.Addr(), "/v1/status", "")
				if err := json.Unmarshal(a.body, &st); err != nil || st.Group == nil {
					return fmt.Errorf("member %d: status %v", i+1, a)
				}
				if !slices.Equal(st.Group.DiskAlarms, want) || st.DiskFull != (len(want) > 0) {
					return fmt.Errorf("member %d: disk_alarms %v, disk_full %v; want %v", i+1, st.Group.DiskAlarms, st.DiskFull, want)
				}
				gauge := fmt.Sprintf("\nargent_disk_full %d\n", min(len(want), 1))
				if a := do(t, "GET", n.Addr(), "/metrics", ""); !strings.Contains(string(a.body), gauge) {
					return fmt.Errorf("member %d: /metrics has no %q", i+1, strings.TrimSpace(gauge))
				}
			}
			return nil
		}
	}
	waitFor(t, 10*time.Second, alarms(2))
	why := fmt.Sprintf("root group member 2 (%s)", nodes[1].Addr())
	ctx := context.Background()
	for _, n := range nodes {
		checkWrites507(t, n.Addr(), why)
		rc := redis.NewClient(&redis.Options{Addr: n.RESPAddr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
		if err := rc.Set(ctx, "a", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("RESP SET at %s during the alarm: %v; want an error naming %s", n.Addr(), err, why)
		}
		rc.Close()
		if a := do(t, "GET", n.Addr(), "/v1/kv/a?linearizable=true", ""); a.status != http.StatusNotFound {
			t.Errorf("linearizable read at %s during the alarm = %v, want 404", n.Addr(), a)
		}
	}

	nodes[1].Close()
	cfg2.MinFreeDisk = 0
	nodes[1] = start(t, cfg2)
	waitFor(t, 10*time.Second, alarms())
	for i, n := range nodes {
		if _, err := newClient(t, n).Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
			t.Errorf("put at member %d after the alarm cleared: %v", i+1, err)
		}
	}
}
