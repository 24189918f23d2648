package pull

import (
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// HeartbeatClock is what a child knows of the root from its upstream's
// heartbeats (and Hellos): the newest root index and its commit time, the
// root's clock when it last vouched for that index, and how old that word
// was when it arrived. A child's lag is computed from it. Every role that
// follows a log (a replica, a proxy) keeps one, fed by its Follower's
// OnHeartbeat, so that lag means the same on all of them.
//
// It implements RootClock for the child's own children: it passes on the
// root's position it heard, or its own served state when that is newer.
type HeartbeatClock struct {
	served   func() (argent.Index, int64)
	interval time.Duration
	now      func() time.Time
	started  time.Time

	rootIdx   atomic.Uint64
	rootTime  atomic.Int64
	lastHeard atomic.Int64 // Unix ns of the last heartbeat; 0: none yet
	rootSent  atomic.Int64 // the root's clock in the newest heartbeat heard
	pathDelay atomic.Int64 // ns between the root sending it and this node hearing it
	empty     atomic.Bool  // an upstream said the dataset is empty
}

var _ RootClock = (*HeartbeatClock)(nil)

// NewHeartbeatClock returns a clock that has heard nothing yet. served
// returns the index the node serves reads at and its root commit time.
// interval is the upstreams' heartbeat interval (default 1s): a silence of
// more than three of them counts as lag.
func NewHeartbeatClock(interval time.Duration, served func() (argent.Index, int64)) *HeartbeatClock {
	if interval == 0 {
		interval = time.Second
	}
	return &HeartbeatClock{served: served, interval: interval, now: time.Now, started: time.Now()}
}

// Heard records a heartbeat from the upstream. Its signature is
// FollowerConfig.OnHeartbeat's.
func (c *HeartbeatClock) Heard(h wire.Heartbeat) {
	now := c.now().UnixNano()
	c.lastHeard.Store(now)
	if h.RootIndex == 0 && h.Applied == 0 {
		// The dataset is empty: index 0 is the root's state, and this
		// node (which adopted the dataset before hearing this) is at it.
		c.empty.Store(true)
	}
	if h.RootSent > 0 && h.RootSent >= c.rootSent.Load() {
		c.rootSent.Store(h.RootSent)
		// How old the root's word is when it reaches this node: the delay
		// of the path from the root (plus clock skew between machines).
		c.pathDelay.Store(max(0, now-h.RootSent))
	}
	for {
		cur := c.rootIdx.Load()
		if uint64(h.RootIndex) < cur {
			return
		}
		if c.rootIdx.CompareAndSwap(cur, uint64(h.RootIndex)) {
			c.rootTime.Store(h.RootTime)
			return
		}
	}
}

// EmptyUpstream reports whether an upstream said the dataset is empty (its
// root index and applied index 0): index 0 is then a real state to serve.
func (c *HeartbeatClock) EmptyUpstream() bool { return c.empty.Load() }

// Root returns the newest root index known and its commit time: the one
// heard, or the served state when that is newer (entries can arrive before
// the heartbeat that announces them).
func (c *HeartbeatClock) Root() (argent.Index, int64) {
	si, st := c.served()
	ri, rt := argent.Index(c.rootIdx.Load()), c.rootTime.Load()
	if si > ri {
		return si, st
	}
	return ri, rt
}

// RootSent returns the root's clock in the newest heartbeat heard, which a
// child passes on to its own children.
func (c *HeartbeatClock) RootSent() int64 { return c.rootSent.Load() }

// Lag returns how far the served state is behind the root: in indexes,
// and in seconds: the delay of the path from the root at the last
// heartbeat (a slow path delays entries and heartbeats alike), plus the
// root commit time of the newest root index known minus that of the served
// index, plus, when the upstream has been silent for more than three
// heartbeats (or never spoke), the silence, since the node cannot know what
// the root did meanwhile.
func (c *HeartbeatClock) Lag() (indexes uint64, seconds float64) {
	si, stime := c.served()
	ri, rt := c.Root()
	var lag time.Duration
	if ri > si {
		indexes = uint64(ri - si)
		lag = time.Duration(rt - stime)
		if si == 0 || lag < 0 {
			lag = 0
		}
	}
	lag += time.Duration(c.pathDelay.Load())
	now := c.now()
	if last := c.lastHeard.Load(); last == 0 {
		lag += now.Sub(c.started)
	} else if silent := now.Sub(time.Unix(0, last)); silent > 3*c.interval {
		lag += silent
	}
	return indexes, lag.Seconds()
}
