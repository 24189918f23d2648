package pull

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the protocol's Prometheus metrics, for both sides.
type Metrics struct {
	Children        prometheus.Gauge
	EntriesSent     prometheus.Counter
	BytesSent       prometheus.Counter
	TooOld          prometheus.Counter
	SnapshotsServed prometheus.Counter

	EntriesReceived  prometheus.Counter
	BytesReceived    prometheus.Counter
	Commits          prometheus.Counter
	Corruptions      prometheus.Counter
	Reconnects       *prometheus.CounterVec
	SnapshotsLoaded  prometheus.Counter
	SnapshotRecords  prometheus.Counter
	SnapshotResumes  prometheus.Counter
	UpstreamFailures prometheus.Counter
}

// NewMetrics makes the metrics and registers them on reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Children:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "argent_children", Help: "Children currently streaming the log from this node."}),
		EntriesSent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_log_entries_sent_total", Help: "Log entries sent to children."}),
		BytesSent:       prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_log_bytes_sent_total", Help: "Bytes of log frames and snapshot chunks sent to children."}),
		TooOld:          prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_log_too_old_total", Help: "Children told to take a snapshot because the log no longer held their next index."}),
		SnapshotsServed: prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_snapshots_served_total", Help: "Snapshot transfers started for children."}),

		EntriesReceived:  prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_log_entries_received_total", Help: "Log entries received from the upstream."}),
		BytesReceived:    prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_log_bytes_received_total", Help: "Bytes of log frames and snapshot chunks received."}),
		Commits:          prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_apply_commits_total", Help: "Fsynced commits of received entries (several entries may share one)."}),
		Corruptions:      prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_corrupt_frames_total", Help: "Frames or chunks refused for a bad checksum, length or index sequence."}),
		Reconnects:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "argent_upstream_reconnects_total", Help: "Log streams ended and restarted, by reason: eof, cut (ended inside a frame), corruption, refused, stall, error."}, []string{"reason"}),
		SnapshotsLoaded:  prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_snapshots_loaded_total", Help: "Snapshots this node bootstrapped from."}),
		SnapshotRecords:  prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_snapshot_records_received_total", Help: "Snapshot records received."}),
		SnapshotResumes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_snapshot_resumes_total", Help: "Snapshot loads resumed after a cut instead of started over."}),
		UpstreamFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "argent_upstream_failures_total", Help: "Failed attempts to stream from an upstream."}),
	}
	if reg != nil {
		reg.MustRegister(m.Children, m.EntriesSent, m.BytesSent, m.TooOld, m.SnapshotsServed,
			m.EntriesReceived, m.BytesReceived, m.Commits, m.Corruptions, m.Reconnects,
			m.SnapshotsLoaded, m.SnapshotRecords, m.SnapshotResumes, m.UpstreamFailures)
	}
	return m
}
