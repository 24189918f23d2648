package node

import (
	"sort"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/replica"
)

// follower is what a node that follows an upstream knows of it: a
// replica.Replica, or a proxy's pull.Follower with its HeartbeatClock
// (proxyFollower).
type follower interface {
	// Upstream is the upstream followed now, "" before the first.
	Upstream() string
	// Root and RootSent are what was heard of the root (pull.RootClock).
	Root() (argent.Index, int64)
	RootSent() int64
	// Lag is how far the served state is behind the root.
	Lag() (indexes uint64, seconds float64)
	// EmptyUpstream reports that an upstream said the dataset is empty.
	EmptyUpstream() bool
}

var _ follower = (*replica.Replica)(nil)

// Root implements pull.RootClock: the root's own state, or what a replica
// or proxy heard of it.
func (n *Node) Root() (argent.Index, int64) {
	if n.follower == nil {
		return n.served()
	}
	return n.follower.Root()
}

// RootSent implements pull.RootClock: the root vouches for its index now;
// a replica passes on the root's clock from the latest heartbeat.
func (n *Node) RootSent() int64 {
	if n.follower == nil {
		return time.Now().UnixNano()
	}
	return n.follower.RootSent()
}

// Lag returns how far the node's served state is behind the root, in
// indexes and in seconds (see pull.HeartbeatClock.Lag); a root is never
// behind.
func (n *Node) Lag() (indexes uint64, seconds float64) {
	if n.follower == nil {
		return 0, 0
	}
	return n.follower.Lag()
}

// Status implements api.Backend.
func (n *Node) Status() apiwire.StatusResponse {
	ri, rt := n.Root()
	_, lag := n.Lag()
	s := apiwire.StatusResponse{
		Role:         n.cfg.Role,
		NodeID:       n.nodeID,
		AppliedIndex: n.applied(),
		RootIndex:    ri,
		LagSeconds:   lag,
		DC:           n.cfg.DC,
		Children:     []apiwire.StatusChild{},
	}
	if ds := n.dataset(); !ds.IsZero() {
		s.DatasetID = ds.String()
	}
	if n.follower != nil {
		s.Upstream = n.follower.Upstream()
	}
	if n.diskFull != nil {
		s.DiskFull = n.diskFull()
	}
	if n.member != nil {
		s.Group = n.member.status()
	}
	if n.proxy != nil {
		s.DCPeers = n.proxy.DCPeers()
	}
	if n.pullS == nil {
		return s
	}
	for _, c := range n.pullS.Children() {
		addr := c.Addr
		if addr == "" {
			addr = c.Remote
		}
		// What this node knows of a child: how far it has been sent, and how
		// old that is next to the root's newest commit.
		var lag float64
		if c.SentIndex < ri && c.SentTime > 0 {
			lag = max(0, time.Duration(rt-c.SentTime).Seconds())
		}
		s.Children = append(s.Children, apiwire.StatusChild{Addr: addr, NodeID: c.NodeID, Role: c.Role, DC: c.DC, AppliedIndex: c.SentIndex, LagSeconds: lag})
	}
	sort.Slice(s.Children, func(i, j int) bool { return s.Children[i].Addr < s.Children[j].Addr })
	return s
}
