package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// Trace reads key at index at (at most Applied) the way GetTier does and
// reports each tier it asked: the window, the cache (L1), the filter, the
// owner of the key's shard in the DC (L2), then the replicas or relay
// (L3), each with its answer, the index it was as of and its latency. A
// trace only reads: what it resolves is not admitted to the cache (an L2
// owner it asks may still cache what it fetched, as for any read). The
// answer's Tier is "" when no tier could answer.
func (p *Proxy) Trace(ctx context.Context, key []byte, at argent.Index) (apiwire.TraceResponse, error) {
	tr := apiwire.TraceResponse{Key: string(key), Index: at, Steps: []apiwire.TraceStep{}}
	if err := p.checkAt(at); err != nil {
		return tr, err
	}
	if p.dc != nil {
		tr.Node = p.dc.self
	}
	step := func(tier string, start time.Time, s apiwire.TraceStep) {
		s.Tier, s.Micros = tier, float64(time.Since(start).Nanoseconds())/1e3
		tr.Steps = append(tr.Steps, s)
	}
	done := func(tier string, absent bool, v argent.Value) (apiwire.TraceResponse, error) {
		tr.Tier, tr.Absent = tier, absent
		if !absent {
			tr.Value, tr.ModIndex = v.Value, v.ModIndex
		}
		return tr, nil
	}

	start := time.Now()
	wr, found, ok := p.win.Latest(key, at)
	switch {
	case ok && found:
		step(TierWindow, start, apiwire.TraceStep{Answer: hitOrAbsent(wr.Deleted), Index: at})
		return done(TierWindow, wr.Deleted, writeValue(wr))
	case ok:
		lo, _ := p.win.Bounds()
		step(TierWindow, start, apiwire.TraceStep{Answer: "miss", Detail: fmt.Sprintf("no write of the key in (%d, %d]", lo, at)})
	default:
		step(TierWindow, start, apiwire.TraceStep{Answer: "skip", Detail: "the read's index is outside the window"})
	}

	start = time.Now()
	if e, ok := p.cache.Get(key); ok && e.Since <= at {
		step(TierCache, start, apiwire.TraceStep{Answer: hitOrAbsent(!e.Present), Index: at})
		return done(TierCache, !e.Present, e.Value)
	} else if ok {
		step(TierCache, start, apiwire.TraceStep{Answer: "miss", Detail: fmt.Sprintf("cached from index %d on, after the read's", e.Since)})
	} else {
		step(TierCache, start, apiwire.TraceStep{Answer: "miss"})
	}

	start = time.Now()
	switch f := p.filter.Load(); {
	case f == nil:
		step(TierFilter, start, apiwire.TraceStep{Answer: "skip", Detail: "no filter installed yet"})
	case at < f.base:
		step(TierFilter, start, apiwire.TraceStep{Answer: "skip", Detail: fmt.Sprintf("the filter holds from index %d", f.base)})
	case !f.f.MayContain(key):
		step(TierFilter, start, apiwire.TraceStep{Answer: "absent", Index: at})
		return done(TierFilter, true, argent.Value{})
	default:
		step(TierFilter, start, apiwire.TraceStep{Answer: "miss", Detail: "the key may exist"})
	}

	if p.dc != nil {
		start = time.Now()
		owner, self := p.dc.owner(key)
		if self {
			step(TierL2, start, apiwire.TraceStep{Node: p.dc.self, Answer: "skip", Detail: "this proxy owns the key's shard"})
		} else {
			items, err := p.askOwner(ctx, owner, [][]byte{key}, at)
			s := apiwire.TraceStep{Node: owner}
			var a answer
			proven := false
			switch {
			case err != nil:
				s.Answer, s.Detail = "error", err.Error()
			case items[0].Newer:
				s.Answer = "newer"
			default:
				s.Index = items[0].At
				if a, proven = p.proveL2(key, items[0], at); proven {
					s.Answer = hitOrAbsent(a.Absent)
					if items[0].Fetched {
						s.Detail = "the owner fetched it at L3"
					}
				} else {
					s.Answer = "unproven"
				}
			}
			step(TierL2, start, s)
			if proven {
				return done(a.tier, a.Absent, a.Value)
			}
		}
	}

	for _, c := range p.oracle.order(at) {
		start = time.Now()
		rs, errs := fetch(ctx, c, [][]byte{key}, at)
		s := apiwire.TraceStep{Node: normAddr(c.Addr())}
		if errs[0] != nil {
			s.Answer, s.Detail = "error", errs[0].Error()
			step(TierL3, start, s)
			continue
		}
		s.Index = rs[0].Index
		r, err := p.prove(c.Addr(), key, rs[0], at)
		if err != nil {
			s.Answer, s.Detail = "unproven", err.Error()
			step(TierL3, start, s)
			continue
		}
		s.Answer = hitOrAbsent(r.Absent)
		step(TierL3, start, s)
		return done(TierL3, r.Absent, r.Value)
	}
	if err := ctx.Err(); err != nil {
		return tr, errors.Join(argent.ErrUnavailable, err)
	}
	return tr, nil
}

func hitOrAbsent(absent bool) string {
	if absent {
		return "absent"
	}
	return "hit"
}
