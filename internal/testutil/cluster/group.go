package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// leaderStatusTimeout bounds one GET /v1/status while looking for the
// leader, so that a paused member does not hold the search for long.
const leaderStatusTimeout = 500 * time.Millisecond

// GroupStatus is the "group" object of a root group member's /v1/status:
// its view of the Raft group. Commit and Applied are Raft indexes.
type GroupStatus struct {
	ID      uint64        `json:"id"`
	Leader  uint64        `json:"leader"` // 0 while the member knows no leader
	Term    uint64        `json:"term"`
	State   string        `json:"state"` // leader, follower, candidate, pre-candidate
	Commit  uint64        `json:"commit"`
	Applied uint64        `json:"applied"`
	Members []GroupMember `json:"members"`
	// DiskAlarms are the members whose disk alarm is raised.
	DiskAlarms []uint64 `json:"disk_alarms"`
}

// GroupMember is one entry of GroupStatus.Members.
type GroupMember struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// GroupOptions configures StartGroup. The zero value starts the members
// with direct links between them and no extra arguments.
type GroupOptions struct {
	// Proxies puts a faultproxy on every directed link between members:
	// member i's --peers names, for each other member j, a proxy in front
	// of j (Group.Links[i][j]). Cutting every proxy into and out of a
	// member (Group.Isolate) partitions it from the others.
	Proxies bool
	// Args are extra arguments of every member.
	Args []string
}

// Group is a root group of real argent processes: `argent root --id N
// --peers ...` for N = 1..n, then the members Join adds. Its methods that
// fail call t.Fatal; call them from the test's goroutine.
type Group struct {
	// Members are the members' nodes: at the start Members[i] has Raft ID
	// i+1; Join appends and Drop removes (see ID and Member).
	Members []*Node
	// Links[i][j] is the proxy Members[i] reaches Members[j] through, when
	// GroupOptions.Proxies is set; nil on the diagonal and without proxies.
	// Every member reaches one that Join started through the same proxy
	// (a membership change gives the whole group one address), so cutting
	// Links[i][j] for such a j cuts every link into it.
	Links [][]*faultproxy.Proxy

	t      testing.TB
	opts   GroupOptions
	ids    []uint64 // ids[i] is Members[i]'s Raft ID
	nextID uint64   // the ID Join gives next; IDs are never reused
}

// StartGroup starts an n-member root group and waits until a majority of
// its members agree on a leader (see Leader).
func StartGroup(t testing.TB, n int, opts GroupOptions) *Group {
	t.Helper()
	g := NewGroup(t, n, opts)
	for _, m := range g.Members {
		m.Start()
	}
	for _, m := range g.Members {
		m.WaitReady(DefaultReadyTimeout)
	}
	g.WaitLeader(DefaultReadyTimeout)
	return g
}

// NewGroup prepares, but does not start, an n-member root group: the nodes,
// the proxies between them if opts asks, and each member's --id and
// --peers.
func NewGroup(t testing.TB, n int, opts GroupOptions) *Group {
	t.Helper()
	if n < 1 {
		t.Fatalf("cluster: a group of %d members", n)
	}
	g := &Group{t: t, opts: opts, Members: make([]*Node, n), Links: make([][]*faultproxy.Proxy, n),
		ids: make([]uint64, n), nextID: uint64(n) + 1}
	for i := range n {
		g.Members[i] = NewNode(t, "root")
		g.ids[i] = uint64(i + 1)
	}
	for i := range n {
		g.Links[i] = make([]*faultproxy.Proxy, n)
		if !opts.Proxies {
			continue
		}
		for j := range n {
			if j != i {
				g.Links[i][j] = faultproxy.Start(t, g.Members[j].Addr)
			}
		}
	}
	for i, m := range g.Members {
		peers := make([]string, n)
		for j := range n {
			addr := g.Members[j].Addr
			if p := g.Links[i][j]; p != nil {
				addr = p.Addr()
			}
			peers[j] = fmt.Sprintf("%d=%s", j+1, addr)
		}
		m.Args = append(m.Args, "--id", fmt.Sprint(i+1), "--peers", strings.Join(peers, ","))
		m.Args = append(m.Args, opts.Args...)
	}
	return g
}

// Addrs returns the members' listen addresses, in order of ID.
func (g *Group) Addrs() []string {
	out := make([]string, len(g.Members))
	for i, m := range g.Members {
		out[i] = m.Addr
	}
	return out
}

// ID returns m's Raft ID, or 0 if m is not a member of g.
func (g *Group) ID(m *Node) uint64 {
	if i := slices.Index(g.Members, m); i >= 0 {
		return g.ids[i]
	}
	return 0
}

// Member returns the member with Raft ID id, or nil.
func (g *Group) Member(id uint64) *Node {
	if i := slices.Index(g.ids, id); i >= 0 {
		return g.Members[i]
	}
	return nil
}

// Join starts a new member that waits to be added to the group: `argent
// root --id N --join --peers ...` with a new ID (one above every ID the
// group gave so far), an empty data directory, --peers listing the
// members of g and itself, the group's extra arguments and then args. It
// waits until the member answers /v1/status, appends it to Members and
// returns it with the address to add it with (POST /v1/members, or
// client.AddMember): its listen address, or with proxies the proxy in
// front of it. Adding it is the caller's: until then it is not a member
// of the Raft group, though Members lists it.
func (g *Group) Join(args ...string) (*Node, string) {
	g.t.Helper()
	id := g.nextID
	g.nextID++
	m := NewNode(g.t, "root")
	n := len(g.Members)
	out := make([]*faultproxy.Proxy, n+1) // the new row: its links to the others
	addr := m.Addr
	if g.opts.Proxies {
		in := faultproxy.Start(g.t, m.Addr)
		addr = in.Addr()
		for i := range n {
			out[i] = faultproxy.Start(g.t, g.Members[i].Addr)
			g.Links[i] = append(g.Links[i], in)
		}
	} else {
		for i := range n {
			g.Links[i] = append(g.Links[i], nil)
		}
	}
	peers := make([]string, 0, n+1)
	for i, o := range g.Members {
		a := o.Addr
		if out[i] != nil {
			a = out[i].Addr()
		}
		peers = append(peers, fmt.Sprintf("%d=%s", g.ids[i], a))
	}
	peers = append(peers, fmt.Sprintf("%d=%s", id, m.Addr))
	m.Args = append(m.Args, "--id", fmt.Sprint(id), "--join", "--peers", strings.Join(peers, ","))
	m.Args = append(m.Args, g.opts.Args...)
	m.Args = append(m.Args, args...)
	g.Members = append(g.Members, m)
	g.ids = append(g.ids, id)
	g.Links = append(g.Links, out)
	m.Start()
	m.WaitReady(DefaultReadyTimeout)
	return m, addr
}

// Drop takes m out of Members, for a member removed from the Raft group
// (DELETE /v1/members/ID, or client.RemoveMember), and closes the proxies
// of its links. It neither removes m from the Raft group nor stops its
// process.
func (g *Group) Drop(m *Node) {
	g.t.Helper()
	k := slices.Index(g.Members, m)
	if k < 0 {
		g.t.Fatalf("cluster: drop: %s is not a member of the group", m.Name)
	}
	for j := range g.Members {
		for _, p := range []*faultproxy.Proxy{g.Links[k][j], g.Links[j][k]} {
			if p == nil {
				continue
			}
			if err := p.Close(); err != nil { // a second Close of a shared one does nothing
				g.t.Errorf("cluster: drop %s: close link: %v", m.Name, err)
			}
		}
	}
	g.Members = slices.Delete(g.Members, k, k+1)
	g.ids = slices.Delete(g.ids, k, k+1)
	g.Links = slices.Delete(g.Links, k, k+1)
	for i := range g.Links {
		g.Links[i] = slices.Delete(g.Links[i], k, k+1)
	}
}

// Statuses asks every running member for its status at once, each bounded
// by timeout, and returns the answers by member (zero Status with a non-nil
// error for a member that is not running or did not answer).
func (g *Group) Statuses(timeout time.Duration) ([]Status, []error) {
	sts := make([]Status, len(g.Members))
	errs := make([]error, len(g.Members))
	var wg sync.WaitGroup
	for i, m := range g.Members {
		if !m.Running() {
			errs[i] = fmt.Errorf("%s: not running", m.Name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			sts[i], errs[i] = m.StatusContext(ctx)
			if errs[i] == nil && sts[i].Group == nil {
				errs[i] = fmt.Errorf("%s: status has no group: %v", m.Name, sts[i].Raw)
			}
		}()
	}
	wg.Wait()
	return sts, errs
}

// Leader returns the member that is leader now: it says so in its own
// status, and a majority of the group (itself included) names it leader at
// its term. A deposed leader that has not noticed yet (paused, or cut off)
// may still say it leads; it lacks that majority. Leader returns an error
// if no member has it.
func (g *Group) Leader() (*Node, error) {
	sts, errs := g.Statuses(leaderStatusTimeout)
	var why []string
	for i, st := range sts {
		if errs[i] != nil {
			why = append(why, errs[i].Error())
			continue
		}
		gs := st.Group
		why = append(why, fmt.Sprintf("%s: %s, leader %d, term %d", g.Members[i].Name, gs.State, gs.Leader, gs.Term))
		if gs.State != "leader" || gs.Leader != g.ids[i] {
			continue
		}
		votes := 0
		for j, o := range sts {
			if errs[j] == nil && o.Group.Leader == gs.Leader && o.Group.Term == gs.Term {
				votes++
			}
		}
		if votes > len(g.Members)/2 {
			return g.Members[i], nil
		}
	}
	return nil, fmt.Errorf("cluster: no leader that a majority of the group follows: %s", strings.Join(why, "; "))
}

// WaitLeader polls Leader until it finds one and returns it; it fails the
// test after timeout.
func (g *Group) WaitLeader(timeout time.Duration) *Node {
	g.t.Helper()
	var l *Node
	WaitFor(g.t, timeout, func() error {
		var err error
		l, err = g.Leader()
		return err
	})
	return l
}

// Isolate cuts every link into and out of m (see faultproxy.Proxy.Cut):
// the other members can no longer reach it, nor it them. Clients and
// children still reach it directly. It needs GroupOptions.Proxies.
func (g *Group) Isolate(m *Node) {
	g.t.Helper()
	for _, p := range g.linksOf(m) {
		p.Cut()
	}
}

// Heal restores every link into and out of m.
func (g *Group) Heal(m *Node) {
	g.t.Helper()
	for _, p := range g.linksOf(m) {
		p.Restore()
	}
}

// linksOf returns the proxies of every link into and out of m.
func (g *Group) linksOf(m *Node) []*faultproxy.Proxy {
	g.t.Helper()
	i := slices.Index(g.Members, m)
	if i < 0 {
		g.t.Fatalf("cluster: %s is not a member of the group", m.Name)
	}
	var out []*faultproxy.Proxy
	for j := range g.Members {
		if j == i {
			continue
		}
		if g.Links[i][j] == nil || g.Links[j][i] == nil {
			g.t.Fatalf("cluster: the group has no proxies between its members (GroupOptions.Proxies)")
		}
		out = append(out, g.Links[i][j], g.Links[j][i])
	}
	return out
}

// WaitConverged waits until every member runs and answers its status with
// one applied index and one Raft applied index equal to the Raft commit
// index, and returns that applied index. It fails the test after timeout.
func (g *Group) WaitConverged(timeout time.Duration) uint64 {
	g.t.Helper()
	var applied uint64
	WaitFor(g.t, timeout, func() error {
		sts, errs := g.Statuses(statusTimeout)
		for i, st := range sts {
			if errs[i] != nil {
				return errs[i]
			}
			if gs := st.Group; gs.Applied != gs.Commit {
				return fmt.Errorf("%s: raft applied %d, commit %d", g.Members[i].Name, gs.Applied, gs.Commit)
			}
			if st.AppliedIndex != sts[0].AppliedIndex || st.Group.Commit != sts[0].Group.Commit {
				return fmt.Errorf("%s at applied index %d (raft commit %d), %s at %d (%d)", g.Members[0].Name,
					sts[0].AppliedIndex, sts[0].Group.Commit, g.Members[i].Name, st.AppliedIndex, st.Group.Commit)
			}
		}
		applied = sts[0].AppliedIndex
		return nil
	})
	return applied
}
