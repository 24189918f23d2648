package node_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/dcstream"
	"github.com/argent-kv/argent/internal/node"
)

// startRelayNode starts a relay (no data directory) until the test ends.
func startRelayNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	cfg.Role, cfg.Listen = node.RoleRelay, "127.0.0.1:0"
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// root -> replica -> relay -> proxy: the proxy follows the log through the
// relay and resolves its misses there; the relay publishes them; the
// proxy's cache answers once the relay is gone.
func TestNode_RelayBetweenProxyAndReplica(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	rc := newClient(t, root)
	last := write(t, rc, 20, "k")
	waitApplied(t, replica, last)
	rel := startRelayNode(t, node.Config{Upstreams: []string{replica.Addr()}, DC: "dc1"})
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{rel.Addr()}, DC: "dc1", CacheSize: 16 << 20, WindowBytes: 1 << 10})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	misses := make(chan dcstream.Miss, 100)
	go func() {
		for ctx.Err() == nil {
			_ = dcstream.Subscribe(ctx, rel.Addr(), func(m dcstream.Miss) { misses <- m })
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// A write at the root reaches the proxy through the relay.
	idx, err := rc.Put(context.Background(), []byte("fresh"), []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	pc := newClient(t, proxy)
	v, err := pc.Get(context.Background(), []byte("fresh"), client.ReadOptions{MinIndex: idx, Wait: 20 * time.Second})
	if err != nil || string(v.Value) != "v1" || v.Index < idx {
		t.Fatalf("proxy Get with min_index %d = %+v, %v", idx, v, err)
	}
	st := rel.Status()
	if st.Role != "relay" || st.Upstream != replica.Addr() || st.DC != "dc1" || st.AppliedIndex < idx || st.DatasetID != root.Status().DatasetID {
		t.Fatalf("relay status %+v", st)
	}
	if len(st.Children) != 1 || st.Children[0].Role != "proxy" || st.Children[0].DC != "dc1" || st.Children[0].Addr != proxy.Addr() {
		t.Fatalf("relay children %+v, want the proxy", st.Children)
	}
	if proxy.Status().Upstream != rel.Addr() {
		t.Fatalf("proxy follows %q, want the relay", proxy.Status().Upstream)
	}

	// A miss at the proxy goes through the relay, which publishes it.
	before := counter(t, rel.Registry(), "argent_relay_lookups_total")
	v, err = pc.Get(context.Background(), []byte("k/0005"), client.ReadOptions{})
	if err != nil || len(v.Value) != 100 {
		t.Fatalf("proxy Get of a miss = %+v, %v", v, err)
	}
	if got := counter(t, rel.Registry(), "argent_relay_lookups_total"); got <= before {
		t.Fatalf("relay lookups %v -> %v: the miss (answered by %s) did not go through the relay", before, got, v.Tier)
	}
	if counter(t, replica.Registry(), "argent_lookup_keys_total") < 1 {
		t.Fatal("the replica counted no lookup")
	}
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case m := <-misses:
			found = string(m.Key) == "k/0005" && !m.Absent && len(m.Value) == 100 && m.Index >= v.ModIndex && m.ModIndex == v.ModIndex
		case <-deadline:
			t.Fatal("the miss was not published on the relay's stream")
		}
	}
	if got := counter(t, rel.Registry(), "argent_relay_misses_published_total"); got < 1 {
		t.Fatalf("misses published %v", got)
	}

	// A relay serves no client reads, and says so without a 404.
	resp, err := http.Get("http://" + rel.Addr() + "/v1/kv/k/0005")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("client read at the relay: %d, want 405", resp.StatusCode)
	}

	// With the relay gone, what the proxy cached is still answered.
	cancel()
	rel.Close()
	for _, k := range []string{"fresh", "k/0005"} {
		v, err := pc.Get(context.Background(), []byte(k), client.ReadOptions{})
		if err != nil || v.Tier != "cache" && v.Tier != "window" {
			t.Fatalf("proxy Get %s after the relay closed = %+v, %v", k, v, err)
		}
	}
}

func TestNode_RelayConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  node.Config
		want string
	}{
		{"NoUpstream", node.Config{Role: node.RoleRelay, Listen: "127.0.0.1:0"}, "needs at least one --upstream"},
		{"DataDir", node.Config{Role: node.RoleRelay, Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1"}, DataDir: "/tmp/x"}, "takes no --data"},
		{"NegativeBuffer", node.Config{Role: node.RoleRelay, Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1"}, LogBuffer: -1}, "--log-buffer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// A write sent to a proxy that follows a relay reaches the root: the relay
// takes no writes, so the proxy forwards to a replica it knows of (the
// relay's upstream), which forwards on.
func TestNode_ProxyBehindRelayForwardsWrites(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	waitApplied(t, replica, write(t, newClient(t, root), 3, "w"))
	rel := startRelayNode(t, node.Config{Upstreams: []string{replica.Addr()}, DC: "dc1"})
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{rel.Addr()}, DC: "dc1", CacheSize: 16 << 20})
	pc := newClient(t, proxy)
	var idx argent.Index
	waitFor(t, 10*time.Second, func() error {
		var err error
		idx, err = pc.Put(context.Background(), []byte("via-proxy"), []byte("v"))
		return err
	})
	v, err := newClient(t, root).Get(context.Background(), []byte("via-proxy"), client.ReadOptions{})
	if err != nil || string(v.Value) != "v" || v.ModIndex != idx {
		t.Fatalf("root Get after a write at the proxy (index %d) = %+v, %v", idx, v, err)
	}
}
