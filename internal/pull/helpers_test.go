package pull_test

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// follower is a running Follower and its metrics.
type follower struct {
	*pull.Follower
	reg  *prometheus.Registry
	stop func() // stops it and waits for Run to return
}

// follow runs a Follower of cfg into s until the test ends (it is stopped
// before the stores and servers made earlier are closed).
func follow(t *testing.T, tr pull.Transport, s *kv.Store, cfg pull.FollowerConfig) *follower {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Store = s
	cfg.Transport = tr
	cfg.Metrics = pull.NewMetrics(reg)
	if cfg.NodeID == "" {
		cfg.NodeID = "child"
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = pulltest.Stall
	}
	f := pull.NewFollower(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
	t.Cleanup(stop)
	return &follower{Follower: f, reg: reg, stop: stop}
}

// metric returns the value of the counter or gauge name (with the given
// label value, if any) of f's metrics.
func (f *follower) metric(t *testing.T, name string, label ...string) float64 {
	t.Helper()
	return pulltest.Metric(t, f.reg, name, label...)
}
