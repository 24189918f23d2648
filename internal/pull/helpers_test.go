package pull_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeTarget is the plainest Target over a kv.Store, for the protocol's
// tests: entries go in with kv.Writers, and a bootstrap loads a whole
// snapshot through Follower.FetchSnapshot. (internal/replica is the real
// one; it also resumes cut loads.)
type storeTarget struct {
	s *kv.Store
	f *pull.Follower
}

func (t *storeTarget) Applied() argent.Index     { return t.s.Applied() }
func (t *storeTarget) Dataset() argent.DatasetID { return t.s.Dataset() }
func (t *storeTarget) Begin() pull.Group         { return t.s.NewWriter() }
func (t *storeTarget) BootstrapPending() bool    { return t.s.Restoring() }

func (t *storeTarget) AdoptDataset(id argent.DatasetID) error {
	_, err := t.s.AdoptDataset(id)
	return err
}

func (t *storeTarget) Bootstrap(ctx context.Context, up string) error {
	l := &storeLoader{s: t.s}
	defer l.abort()
	return t.f.FetchSnapshot(ctx, up, nil, l)
}

// storeLoader loads one whole snapshot into a kv.Store.
type storeLoader struct {
	s   *kv.Store
	res *kv.Restore
}

func (l *storeLoader) Begin(h wire.SnapshotHeader) error {
	res, err := l.s.BeginRestore(h.Dataset, argent.State{Index: h.Index, Time: h.Time, Chain: h.Chain})
	if err != nil {
		return fmt.Errorf("%w: %w", pull.ErrRefused, err)
	}
	l.res = res
	return nil
}

func (l *storeLoader) Add(rec argent.Item) error {
	return l.res.Add(rec.Key, rec.ModIndex, rec.Value.Value)
}

func (l *storeLoader) End(records uint64) error { return l.res.Finish(records) }

func (l *storeLoader) abort() {
	if l.res != nil {
		l.res.Abort()
	}
}

// follower is a running Follower and its metrics.
type follower struct {
	*pull.Follower
	reg  *prometheus.Registry
	stop func() // stops it and waits for Run to return
}

// follow runs a Follower of cfg into s (a storeTarget) until the test ends (it is stopped
// before the stores and servers made earlier are closed).
func follow(t *testing.T, tr pull.Transport, s *kv.Store, cfg pull.FollowerConfig) *follower {
	t.Helper()
	reg := prometheus.NewRegistry()
	tgt := &storeTarget{s: s}
	cfg.Target = tgt
	cfg.Transport = tr
	cfg.Metrics = pull.NewMetrics(reg)
	if cfg.NodeID == "" {
		cfg.NodeID = "child"
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = pulltest.Stall
	}
	f := pull.NewFollower(cfg)
	tgt.f = f
	stop := pulltest.Go(t, f.Run)
	return &follower{Follower: f, reg: reg, stop: stop}
}

// metric returns the value of the counter or gauge name (with the given
// label value, if any) of f's metrics.
func (f *follower) metric(t *testing.T, name string, label ...string) float64 {
	t.Helper()
	return pulltest.Metric(t, f.reg, name, label...)
}
