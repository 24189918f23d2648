package statustree_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/statustree"
)

func TestParseCounters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		want    statustree.Counters
		wantErr bool
	}{
		{name: "empty", text: "", want: statustree.Counters{}},
		{name: "reads and writes by route and code", text: `# HELP argent_http_requests_total x
# TYPE argent_http_requests_total counter
argent_http_requests_total{code="200",route="get"} 10
argent_http_requests_total{code="404",route="get"} 5
argent_http_requests_total{code="503",route="get"} 7
argent_http_requests_total{code="200",route="mget"} 2
argent_http_requests_total{code="200",route="scan"} 1
argent_http_requests_total{code="200",route="put"} 3
argent_http_requests_total{code="409",route="txn"} 4
argent_http_requests_total{code="200",route="txn"} 6
argent_http_requests_total{code="200",route="status"} 100
`, want: statustree.Counters{Reads: 18, Writes: 9}},
		{name: "labels in any order", text: `argent_http_requests_total{route="get",code="200"} 4
argent_http_requests_total{route="put",code="200",zone="a"} 2
`, want: statustree.Counters{Reads: 4, Writes: 2}},
		{name: "proxy tiers", text: `argent_proxy_reads_window_total 1
argent_proxy_reads_cache_total 2
argent_proxy_reads_filter_total 3
argent_proxy_reads_l2_total 4
argent_proxy_reads_l3_total{dc="a"} 5
argent_proxy_reads_l3_total{dc="b"} 1
argent_proxy_miss_failures_total 9
`, want: statustree.Counters{Tiers: map[string]float64{"window": 1, "cache": 2, "filter": 3, "l2": 4, "l3": 6}}},
		{name: "not the text format", text: "argent_http_requests_total{code=\"200\",route=\"get\"} x\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statustree.ParseCounters(strings.NewReader(tc.text))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", *got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

// fakeNode serves a /v1/status and a /metrics; its status is set once the
// addresses of every fake node are known.
type fakeNode struct {
	srv    *httptest.Server
	status client.Status
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func newFake(t *testing.T) *fakeNode {
	f := &fakeNode{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			_ = json.NewEncoder(w).Encode(f.status)
		case "/metrics":
			_, _ = w.Write([]byte("argent_http_requests_total{code=\"200\",route=\"get\"} 7\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func children(addrs ...string) []client.StatusChild {
	var cs []client.StatusChild
	for _, a := range addrs {
		cs = append(cs, client.StatusChild{Addr: a})
	}
	return cs
}

// shape renders a tree as "role(children...)" with "!" for a node that did
// not answer and "^" for a repeat, to compare trees in one string.
func shape(n *statustree.Node) string {
	switch {
	case n.Status == nil:
		return "!"
	case n.Repeat:
		return "^" + n.Status.NodeID
	}
	var cs []string
	for _, c := range n.Children {
		cs = append(cs, shape(c))
	}
	return n.Status.NodeID + "(" + strings.Join(cs, " ") + ")"
}

// TestWalk walks a root with a replica, a relay below it with a proxy, a
// child that does not answer, and a proxy that names the root as its
// child (a loop, which must not be walked twice).
func TestWalk(t *testing.T) {
	root, rep, relay, px, loop := newFake(t), newFake(t), newFake(t), newFake(t), newFake(t)
	dead := deadAddr(t)
	root.status = client.Status{Role: "root", NodeID: "root", Children: children(rep.addr(), dead)}
	rep.status = client.Status{Role: "replica", NodeID: "rep", Children: children(relay.addr(), loop.addr())}
	relay.status = client.Status{Role: "relay", NodeID: "relay", Children: children(px.addr())}
	px.status = client.Status{Role: "proxy", NodeID: "px", Children: children()}
	loop.status = client.Status{Role: "proxy", NodeID: "loop", Children: children(root.addr())}

	w := statustree.Walker{Metrics: true}
	tr := w.Walk(context.Background(), root.addr())
	if len(tr.Roots) != 1 || tr.Group != nil {
		t.Fatalf("roots %d, group %v; want one root, no group", len(tr.Roots), tr.Group)
	}
	if got, want := shape(tr.Roots[0]), "root(rep(relay(px()) loop(^root)) !)"; got != want {
		t.Errorf("tree %s, want %s", got, want)
	}
	if c := tr.Roots[0].Counters; c == nil || c.Reads != 7 {
		t.Errorf("root counters %+v, want 7 reads", c)
	}
	if d := tr.Roots[0].Children[1]; d.Addr != dead || d.Error == "" {
		t.Errorf("dead child %+v: want its address and an error", d)
	}
}

// TestWalk_Group walks from a root group member: every member is a top,
// and a replica listed by two members is walked once.
func TestWalk_Group(t *testing.T) {
	m1, m2, rep := newFake(t), newFake(t), newFake(t)
	g := &client.GroupStatus{ID: 1, Leader: 2, Term: 3, Members: []client.GroupMember{{ID: 1, Addr: m1.addr()}, {ID: 2, Addr: m2.addr()}}}
	m1.status = client.Status{Role: "root", NodeID: "m1", Group: g, Children: children(rep.addr())}
	m2.status = client.Status{Role: "root", NodeID: "m2", Group: g, Children: children(rep.addr())}
	rep.status = client.Status{Role: "replica", NodeID: "rep", Children: children()}

	var w statustree.Walker
	tr := w.Walk(context.Background(), m2.addr())
	if tr.Group == nil || tr.Group.Leader != 2 {
		t.Fatalf("group %+v, want the members' view", tr.Group)
	}
	var got []string
	for _, r := range tr.Roots {
		got = append(got, shape(r))
		if r.Counters != nil {
			t.Errorf("counters %+v without Walker.Metrics", r.Counters)
		}
	}
	if want := []string{"m1(rep())", "m2(^rep)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tops %v, want %v", got, want)
	}
}

// TestWalk_Unreachable: the start node itself does not answer.
func TestWalk_Unreachable(t *testing.T) {
	var w statustree.Walker
	tr := w.Walk(context.Background(), deadAddr(t))
	if len(tr.Roots) != 1 || tr.Roots[0].Status != nil || tr.Roots[0].Error == "" {
		t.Fatalf("tree %+v: want one node with an error", tr.Roots)
	}
}

// TestWalk_MaxNodes: past the bound, nodes are listed but not asked.
func TestWalk_MaxNodes(t *testing.T) {
	root, a, b, c := newFake(t), newFake(t), newFake(t), newFake(t)
	root.status = client.Status{Role: "root", NodeID: "root", Children: children(a.addr(), b.addr())}
	a.status = client.Status{Role: "replica", NodeID: "a", Children: children(c.addr())}
	b.status = client.Status{Role: "replica", NodeID: "b", Children: children()}
	c.status = client.Status{Role: "proxy", NodeID: "c", Children: children()}
	w := statustree.Walker{MaxNodes: 3}
	tr := w.Walk(context.Background(), root.addr())
	if got, want := shape(tr.Roots[0]), "root(a(!) b())"; got != want {
		t.Fatalf("tree %s, want %s", got, want)
	}
	if e := tr.Roots[0].Children[0].Children[0].Error; !strings.Contains(e, "stops at 3 nodes") {
		t.Errorf("unasked node's error %q", e)
	}
}
