package replica_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/replica"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// running is a Replica running on its own goroutine, and its metrics.
type running struct {
	*replica.Replica
	reg  *prometheus.Registry
	stop func() // stops it and waits for Run to return
}

// start runs a Replica of s with cfg over tr until the test ends (it is
// stopped before the stores and servers made earlier are closed). NodeID
// defaults to "child" and StallTimeout to pulltest.Stall.
func start(t *testing.T, tr pull.Transport, s *kv.Store, cfg replica.Config) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Transport = tr
	cfg.Metrics = pull.NewMetrics(reg)
	if cfg.NodeID == "" {
		cfg.NodeID = "child"
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = pulltest.Stall
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = pulltest.Heartbeat
	}
	r := replica.New(s, cfg)
	stop := pulltest.Go(t, r.Run)
	return &running{Replica: r, reg: reg, stop: stop}
}

// metric returns the value of the counter or gauge name (with the given
// label value, if any) of r's metrics.
func (r *running) metric(t *testing.T, name string, label ...string) float64 {
	t.Helper()
	return pulltest.Metric(t, r.reg, name, label...)
}

// metricWant is one metric a test expects.
type metricWant struct {
	name string
	want float64
}

// checkMetrics fails for each metric of r that is not as wanted.
func checkMetrics(t *testing.T, r *running, wants ...metricWant) {
	t.Helper()
	for _, m := range wants {
		if got := r.metric(t, m.name); got != m.want {
			t.Errorf("%s = %v, want %v", m.name, got, m.want)
		}
	}
}

// snapshotRoot serves, on n, a root holding keys keys whose log it has
// trimmed away: a child must bootstrap from a snapshot, sent in chunks of
// chunk bytes.
func snapshotRoot(t *testing.T, n *pulltest.Network, keys, chunk int) (*pulltest.Root, string) {
	t.Helper()
	r := pulltest.NewRoot(t, kv.Options{LogBytes: 1}, argent.DatasetID{})
	r.Write(t, "k", keys)
	pulltest.TrimAll(t, r.Store)
	return r, n.Serve("root", r.Store, pull.ServerConfig{SnapshotChunk: chunk})
}
