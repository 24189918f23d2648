// Package statustree walks a tree of argent nodes from one node down: it
// asks the node for its /v1/status, then each child the status lists for its
// own, and so on. A root group member stands for its whole group: every
// member is walked. `argent status --tree` prints the result and the status
// page (/ui/tree.json) serves it as JSON, so that a browser needs no access
// to any node but the one it loaded the page from.
package statustree

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/promtext"
)

// DefaultTimeout bounds one node's answers (status, then metrics) when
// Walker.Timeout is zero: a node that does not answer in time is shown with
// the error instead of holding up the whole walk.
const DefaultTimeout = 2 * time.Second

// DefaultMaxNodes bounds the nodes one walk asks when Walker.MaxNodes is
// zero: the status page walks once a second, and a fleet of thousands is
// watched through Prometheus rather than by asking every node each second.
const DefaultMaxNodes = 256

// Tiers are the tiers a proxy answers reads from, in the order a read tries
// them; each has a counter argent_proxy_reads_<tier>_total.
var Tiers = []string{"window", "cache", "filter", "l2", "l3"}

// Tree is the result of a walk.
type Tree struct {
	// Time is when the walk started, in Unix milliseconds: rates are
	// counters' differences between two walks over their times.
	Time int64 `json:"time_ms"`
	// Group is the root group's view of itself, when the walk started at
	// a group member; nil otherwise.
	Group *client.GroupStatus `json:"group,omitempty"`
	// Roots are the tops of the tree: every member of a root group (in the
	// group's order), or the node the walk started at.
	Roots []*Node `json:"roots"`
}

// Node is one node of the tree.
type Node struct {
	Addr string `json:"addr"`
	// Status is the node's own /v1/status; nil when it did not answer.
	Status *client.Status `json:"status,omitempty"`
	// Error says why a node did not answer.
	Error string `json:"error,omitempty"`
	// Repeat marks a node already shown elsewhere in the tree (a loop, or a
	// replica listed by two group members): its children are not walked
	// again.
	Repeat bool `json:"repeat,omitempty"`
	// Counters are read from the node's /metrics when Walker.Metrics is
	// set and the node answered; nil otherwise.
	Counters *Counters `json:"counters,omitempty"`
	// Children are the nodes Status lists as its children, each asked
	// itself.
	Children []*Node `json:"children"`
}

// Counters are the cumulative counters of a node that the status page turns
// into rates.
type Counters struct {
	// Reads are the get, mget and scan requests the node answered with
	// a 2xx or a 404 (a key not found is an answer too); Writes the put,
	// delete and txn requests it answered with a 2xx.
	Reads  float64 `json:"reads"`
	Writes float64 `json:"writes"`
	// Tiers are a proxy's reads by the tier that answered them (keys of
	// Tiers); empty on other roles.
	Tiers map[string]float64 `json:"tiers,omitempty"`
}

// Walker walks trees. The zero value uses http.DefaultClient for /metrics,
// DefaultTimeout, DefaultMaxNodes and no metrics.
type Walker struct {
	// HTTP fetches /metrics; default http.DefaultClient.
	HTTP *http.Client
	// NewClient makes the client that asks a node for its status (with
	// the TLS and token the nodes need); default client.New.
	NewClient func(addr string) (*client.Client, error)
	// Timeout bounds each node's answers; default DefaultTimeout.
	Timeout time.Duration
	// Metrics reads each node's Counters too.
	Metrics bool
	// MaxNodes bounds the nodes a walk asks; the nodes past it are listed
	// with an Error and not asked. Default DefaultMaxNodes.
	MaxNodes int
}

// walk is the state of one Walk.
type walk struct {
	seen  map[string]bool // node IDs met
	asked int             // nodes asked so far
	max   int
}

// Walk returns the tree from addr down. It never fails: a node that does
// not answer is a Node with Error set.
func (w *Walker) Walk(ctx context.Context, addr string) *Tree {
	tr := &Tree{Time: time.Now().UnixMilli(), Roots: []*Node{}}
	st := &walk{seen: map[string]bool{}, asked: 1, max: w.MaxNodes}
	if st.max <= 0 {
		st.max = DefaultMaxNodes
	}
	top := w.visit(ctx, addr)
	if top.Status == nil || top.Status.Group == nil {
		if top.Status != nil {
			st.seen[top.Status.NodeID] = true
		}
		tr.Roots = append(tr.Roots, top)
		w.descend(ctx, top, st)
		return tr
	}
	g := *top.Status.Group
	tr.Group = &g
	var addrs []string
	for _, m := range g.Members {
		addrs = append(addrs, m.Addr)
	}
	members := w.visitAll(ctx, addrs, map[string]*Node{addr: top}, st)
	for _, m := range members {
		st.mark(m)
		tr.Roots = append(tr.Roots, m)
	}
	for _, m := range members {
		if !m.Repeat {
			w.descend(ctx, m, st)
		}
	}
	return tr
}

// descend fills n.Children: every child is asked at once, then each is
// marked seen in order and walked further unless it was seen before.
func (w *Walker) descend(ctx context.Context, n *Node, st *walk) {
	n.Children = []*Node{}
	if n.Status == nil || len(n.Status.Children) == 0 {
		return
	}
	var addrs []string
	for _, c := range n.Status.Children {
		addrs = append(addrs, c.Addr)
	}
	n.Children = w.visitAll(ctx, addrs, nil, st)
	for _, c := range n.Children {
		st.mark(c)
	}
	for _, c := range n.Children {
		if !c.Repeat {
			w.descend(ctx, c, st)
		}
	}
}

// mark sets n.Repeat if its node ID was seen, and notes it otherwise.
func (st *walk) mark(n *Node) {
	if n.Status == nil {
		return
	}
	if st.seen[n.Status.NodeID] {
		n.Repeat = true
		return
	}
	st.seen[n.Status.NodeID] = true
}

// visitAll visits addrs concurrently, taking the nodes of known as they
// are, and listing those past the walk's bound unasked.
func (w *Walker) visitAll(ctx context.Context, addrs []string, known map[string]*Node, st *walk) []*Node {
	out := make([]*Node, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		if n, ok := known[a]; ok {
			out[i] = n
			continue
		}
		if st.asked >= st.max {
			out[i] = &Node{Addr: a, Error: fmt.Sprintf("not asked: the walk stops at %d nodes", st.max), Children: []*Node{}}
			continue
		}
		st.asked++
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = w.visit(ctx, a)
		}()
	}
	wg.Wait()
	return out
}

// visit asks one node for its status and, if wanted, its counters.
func (w *Walker) visit(ctx context.Context, addr string) *Node {
	n := &Node{Addr: addr, Children: []*Node{}}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	newClient := w.NewClient
	if newClient == nil {
		newClient = func(addr string) (*client.Client, error) { return client.New(addr) }
	}
	cl, err := newClient(addr)
	if err != nil {
		n.Error = err.Error()
		return n
	}
	st, err := cl.Status(ctx)
	if err != nil {
		n.Error = err.Error()
		return n
	}
	n.Status = &st
	if w.Metrics {
		c, err := w.counters(ctx, addr)
		if err != nil {
			n.Error = err.Error()
		}
		n.Counters = c
	}
	return n
}

// counters reads a node's /metrics.
func (w *Walker) counters(ctx context.Context, addr string) (*Counters, error) {
	base, err := client.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	hc := w.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: %s", addr, resp.Status)
	}
	c, err := ParseCounters(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	return c, nil
}

// readRoutes and writeRoutes are the route labels of
// argent_http_requests_total that count as reads and writes.
var (
	readRoutes  = map[string]bool{"get": true, "mget": true, "scan": true}
	writeRoutes = map[string]bool{"put": true, "delete": true, "txn": true}
)

// ParseCounters reads the Counters from a node's /metrics text.
func ParseCounters(r io.Reader) (*Counters, error) {
	samples, err := promtext.Parse(r)
	if err != nil {
		return nil, err
	}
	c := &Counters{}
	for _, s := range samples {
		switch name := s.Name; {
		case name == "argent_http_requests_total":
			route, code := s.Label("route"), s.Label("code")
			ok := strings.HasPrefix(code, "2")
			switch {
			case readRoutes[route] && (ok || code == "404"):
				c.Reads += s.Value
			case writeRoutes[route] && ok:
				c.Writes += s.Value
			}
		case strings.HasPrefix(name, "argent_proxy_reads_") && strings.HasSuffix(name, "_total"):
			tier := strings.TrimSuffix(strings.TrimPrefix(name, "argent_proxy_reads_"), "_total")
			if c.Tiers == nil {
				c.Tiers = map[string]float64{}
			}
			c.Tiers[tier] += s.Value
		}
	}
	return c, nil
}
