package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registerGauges exports the node's position, lag and sizes.
func (n *Node) registerGauges() {
	gauge := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	n.registerPositionGauges()
	gauge("argent_history_horizon_index", "Oldest index MVCC reads can answer for.", func() float64 { return float64(n.store.Horizon()) })
	gauge("argent_log_first_index", "Oldest log index this node still holds.", func() float64 { return float64(n.store.LogFirst()) })
	gauge("argent_history_bytes", "Bytes of superseded versions kept for MVCC reads.", func() float64 { return float64(n.store.HistoryBytes()) })
	gauge("argent_log_bytes", "Bytes of log entries kept.", func() float64 { return float64(n.store.LogBytes()) })
	gauge("argent_disk_bytes", "Bytes the store takes on disk.", func() float64 { return float64(n.store.DiskUsage()) })
	gauge("argent_storage_failed", "1 once the store failed (a failed fsync or write): the node refuses writes and must be restarted.", func() float64 {
		if n.FailedErr() != nil {
			return 1
		}
		return 0
	})
	gauge("argent_disk_full", "1 while a root refuses writes, or a replica applies no entries, because its disk has less free space than --min-free-disk; at every root group member while any member's disk alarm is raised.", func() float64 {
		if n.diskFull != nil && n.diskFull() {
			return 1
		}
		return 0
	})
	n.registerDiskFree()
	gauge("argent_snapshot_loading", "1 while a snapshot is being loaded.", func() float64 {
		if n.store.Restoring() {
			return 1
		}
		return 0
	})
}

// registerPositionGauges exports the node's applied index and lag.
func (n *Node) registerPositionGauges() {
	gauge := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gauge("argent_applied_index", "Highest index this node serves reads from.", func() float64 { return float64(n.applied()) })
	gauge("argent_root_index", "Newest root index this node knows of.", func() float64 { i, _ := n.Root(); return float64(i) })
	gauge("argent_lag_indexes", "Root index minus applied index.", func() float64 { i, _ := n.Lag(); return float64(i) })
	gauge("argent_lag_seconds", "How far this node's state is behind the root's, in seconds.", func() float64 { _, s := n.Lag(); return s })
}

// commitObserver returns the root's per-commit hook, feeding group size and
// fsynced commit latency histograms.
func (n *Node) commitObserver() func(int, time.Duration) {
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "argent_root_group_batches", Help: "Batches committed together in one fsynced group.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13),
	})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "argent_root_commit_seconds", Help: "Time to apply and fsync one group.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	n.reg.MustRegister(size, took)
	return func(batches int, d time.Duration) {
		size.Observe(float64(batches))
		took.Observe(d.Seconds())
	}
}

// registerDiskFree exports the free space of the file system holding the
// data directory, beside the proxy's admission floor (0: none).
func (n *Node) registerDiskFree() {
	dir := n.cfg.DataDir
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "argent_disk_free_bytes", Help: "Bytes free to the node on the file system holding its data directory (-1: unknown).",
	}, func() float64 {
		free, err := freeSpace(dir)
		if err != nil {
			return -1
		}
		return float64(free)
	}))
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "argent_disk_free_floor_bytes", Help: "Free disk space below which a proxy admits no new keys (--free-disk-floor; 0: none).",
	}, func() float64 { return float64(n.cfg.FreeDiskFloor) }))
}

// registerGroupGauges exports a root group member's view of the group: the
// term and the leader's ID change with every election.
func (n *Node) registerGroupGauges() {
	gauge := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	g := n.member.g
	gauge("argent_group_term", "The root group's Raft term as this member knows it; it grows with every election.", func() float64 { return float64(g.Status().Term) })
	gauge("argent_group_leader", "Raft ID of the root group's leader as this member knows it (0: none known).", func() float64 { return float64(g.Status().Leader) })
	gauge("argent_group_is_leader", "1 while this member leads the root group.", func() float64 {
		if st := g.Status(); st.Leader != 0 && st.Leader == st.ID {
			return 1
		}
		return 0
	})
}
