package pull

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/argent-kv/argent"
)

// probeTimeout bounds one upstream health probe.
const probeTimeout = time.Second

// candidate is an upstream's answer to a health probe.
type candidate struct {
	addr    string
	order   int // position in the upstream list
	applied argent.Index
	err     error
}

// pick probes every upstream's status (/v1/status over HTTP) at once and returns the healthiest
// one to follow: reachable, of our dataset, not ourselves, with the highest
// applied index (ties go to the earlier one in the list). The upstream that
// just failed (avoid) is chosen only when no other is healthy. With
// listedFirst, a healthy upstream of FollowerConfig.Upstreams is chosen
// over any learned one. It returns "" when none is healthy.
func (f *Follower) pick(ctx context.Context, avoid string, listedFirst bool) string {
	ups := f.upstreams()
	if len(ups) == 1 {
		return ups[0]
	}
	cands := make([]candidate, len(ups))
	var wg sync.WaitGroup
	for i, up := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cands[i] = candidate{addr: up, order: i}
			cands[i].applied, cands[i].err = f.probe(ctx, up)
		}()
	}
	wg.Wait()
	best, fallback := -1, ""
	for i, c := range cands {
		if c.err != nil {
			f.cfg.Logger.Debug("upstream probe failed", "upstream", c.addr, "err", c.err)
			continue
		}
		if c.addr == avoid {
			fallback = c.addr
			continue
		}
		if best < 0 || f.better(c, cands[best], listedFirst) {
			best = i
		}
	}
	if best >= 0 {
		return cands[best].addr
	}
	return fallback
}

// better reports whether candidate c beats b: with listedFirst a listed
// upstream beats a learned one; otherwise the higher applied index wins.
func (f *Follower) better(c, b candidate, listedFirst bool) bool {
	if listedFirst {
		if cl, bl := c.order < len(f.cfg.Upstreams), b.order < len(f.cfg.Upstreams); cl != bl {
			return cl
		}
	}
	return c.applied > b.applied
}

// probe asks up for its status and checks that it is a usable parent.
func (f *Follower) probe(ctx context.Context, up string) (argent.Index, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	st, err := f.cfg.Transport.Probe(ctx, up)
	if err != nil {
		return 0, err
	}
	if st.NodeID == f.cfg.NodeID {
		return 0, fmt.Errorf("%w: %s is this node", ErrRefused, up)
	}
	if ours := f.target.Dataset(); !ours.IsZero() && st.Dataset != ours.String() {
		return 0, fmt.Errorf("%w: %s serves dataset %q, this node holds %s", ErrRefused, up, st.Dataset, ours)
	}
	if st.Dataset == "" {
		return 0, fmt.Errorf("%s has no data yet", up)
	}
	return st.Applied, nil
}
