package pull_test

import (
	"math"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/wire"
)

// A child's lag: indexes behind the newest root index heard, and seconds
// made of the root commit times' gap, the path's delay, and any silence
// longer than three heartbeats.
func TestHeartbeatClock_Lag(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	sec := func(s float64) int64 { return t0.Add(time.Duration(s * float64(time.Second))).UnixNano() }
	for _, tc := range []struct {
		name        string
		served      argent.Index
		servedTime  int64
		heard       []wire.Heartbeat
		at          time.Duration // after the start (and the heartbeats, heard at 0)
		wantRoot    argent.Index
		wantIndexes uint64
		wantSeconds float64
		wantEmpty   bool
	}{
		{name: "NothingHeard", at: 2 * time.Second, wantSeconds: 2},
		{name: "CaughtUp", served: 7, servedTime: sec(-1),
			heard:    []wire.Heartbeat{{RootIndex: 7, RootTime: sec(-1), Applied: 7, RootSent: sec(0)}},
			at:       time.Second,
			wantRoot: 7},
		{name: "Behind", served: 5, servedTime: sec(-3),
			heard:    []wire.Heartbeat{{RootIndex: 9, RootTime: sec(-1), Applied: 9, RootSent: sec(-0.5)}},
			wantRoot: 9, wantIndexes: 4, wantSeconds: 2.5},
		{name: "SilentUpstream", served: 9, servedTime: sec(-1),
			heard:    []wire.Heartbeat{{RootIndex: 9, RootTime: sec(-1), Applied: 9}},
			at:       5 * time.Second,
			wantRoot: 9, wantSeconds: 5},
		{name: "ServedAheadOfHeard", served: 12, servedTime: sec(0),
			heard:    []wire.Heartbeat{{RootIndex: 9, RootTime: sec(-1), Applied: 9}},
			wantRoot: 12},
		{name: "OlderHeartbeatIgnored", served: 9, servedTime: sec(-1),
			heard:    []wire.Heartbeat{{RootIndex: 9, RootTime: sec(-1)}, {RootIndex: 4, RootTime: sec(-4)}},
			wantRoot: 9},
		{name: "EmptyDataset", heard: []wire.Heartbeat{{}}, wantEmpty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			c := pull.NewHeartbeatClock(time.Second, func() (argent.Index, int64) { return tc.served, tc.servedTime })
			c.SetNow(func() time.Time { return now })
			for _, h := range tc.heard {
				c.Heard(h)
			}
			now = now.Add(tc.at)
			if got, _ := c.Root(); got != tc.wantRoot {
				t.Errorf("Root() = %d, want %d", got, tc.wantRoot)
			}
			idx, secs := c.Lag()
			if idx != tc.wantIndexes || math.Abs(secs-tc.wantSeconds) > 1e-9 {
				t.Errorf("Lag() = %d, %v; want %d, %v", idx, secs, tc.wantIndexes, tc.wantSeconds)
			}
			if got := c.EmptyUpstream(); got != tc.wantEmpty {
				t.Errorf("EmptyUpstream() = %v, want %v", got, tc.wantEmpty)
			}
		})
	}
}
