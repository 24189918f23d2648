package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/statustree"
)

// TestNode_StatusPage: every role serves /ui, and a root's /ui/tree.json is
// the tree below it (root, replica, relay, proxy) with the counters.
func TestNode_StatusPage(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	rep := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
	rl, err := node.Start(t.Context(), node.Config{Role: node.RoleRelay, Listen: "127.0.0.1:0", Upstreams: []string{rep.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	px := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{rl.Addr()}, CacheSize: 1 << 20})
	idx, err := newClient(t, root).Put(t.Context(), []byte("k"), []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		st, err := newClient(t, px).Status(t.Context())
		if err == nil && st.AppliedIndex < idx {
			err = fmt.Errorf("proxy at %d, want %d", st.AppliedIndex, idx)
		}
		return err
	})

	for _, n := range []*node.Node{root, rep, rl, px} {
		body := get(t, "http://"+n.Addr()+"/ui", "text/html; charset=utf-8")
		if !strings.Contains(body, "/ui/tree.json") {
			t.Errorf("%s /ui: not the status page: %.200s", n.Role(), body)
		}
	}
	var tr statustree.Tree
	if err := json.Unmarshal([]byte(get(t, "http://"+root.Addr()+"/ui/tree.json", "application/json")), &tr); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for n := range walk(tr.Roots) {
		if n.Status == nil {
			t.Fatalf("%s did not answer: %s", n.Addr, n.Error)
		}
		if n.Counters == nil {
			t.Errorf("%s: no counters", n.Addr)
		}
		roles = append(roles, n.Status.Role)
	}
	if got := strings.Join(roles, " "); got != "root replica relay proxy" {
		t.Errorf("tree roles %q, want root replica relay proxy", got)
	}
}

// walk yields the nodes of a tree depth first.
func walk(ns []*statustree.Node) func(func(*statustree.Node) bool) {
	return func(yield func(*statustree.Node) bool) {
		var rec func([]*statustree.Node) bool
		rec = func(ns []*statustree.Node) bool {
			for _, n := range ns {
				if !yield(n) || !rec(n.Children) {
					return false
				}
			}
			return true
		}
		rec(ns)
	}
}

// TestNode_OpsGauges: the gauges the alerts use are exported by the roles
// that have them.
func TestNode_OpsGauges(t *testing.T) {
	root := start(t, node.Config{Role: node.RoleRoot})
	px := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{root.Addr()}, CacheSize: 1 << 20, FreeDiskFloor: 5 << 20})
	for _, tc := range []struct {
		n    *node.Node
		want []string
	}{
		{root, []string{"argent_storage_failed 0", "argent_disk_free_bytes ", "argent_disk_free_floor_bytes 0"}},
		{px, []string{"argent_disk_free_bytes ", "argent_disk_free_floor_bytes 5.24288e+06"}},
	} {
		body := get(t, "http://"+tc.n.Addr()+"/metrics", "")
		for _, w := range tc.want {
			if !strings.Contains(body, "\n"+w) {
				t.Errorf("%s /metrics lacks %q", tc.n.Role(), w)
			}
		}
		if strings.Contains(body, "\nargent_disk_free_bytes -1") {
			t.Errorf("%s: free disk unknown", tc.n.Role())
		}
	}
}

func get(t *testing.T, url, ctype string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if ctype != "" && resp.Header.Get("Content-Type") != ctype {
		t.Errorf("GET %s: Content-Type %q, want %q", url, resp.Header.Get("Content-Type"), ctype)
	}
	return string(b)
}
