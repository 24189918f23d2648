package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxycache"
)

// flightKey names one miss: concurrent reads of a key at one index share
// one lookup.
type flightKey struct {
	key string
	at  argent.Index
}

type flight struct {
	done chan struct{}
	r    lookup.Result
	err  error
}

// resolve returns key's value at index at from a replica, sharing the
// lookup with concurrent reads of the same key at the same index, and
// offers the answer to the cache.
func (p *Proxy) resolve(ctx context.Context, key []byte, at argent.Index) (lookup.Result, error) {
	fk := flightKey{key: string(key), at: at}
	p.flightMu.Lock()
	if f, ok := p.flights[fk]; ok {
		p.flightMu.Unlock()
		select {
		case <-f.done:
			return f.r, f.err
		case <-ctx.Done():
			return lookup.Result{}, fmt.Errorf("%w: proxy: miss of %q at %d: %w", argent.ErrUnavailable, key, at, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	p.flights[fk] = f
	p.flightMu.Unlock()

	f.r, f.err = p.lookupAt(ctx, key, at)
	p.flightMu.Lock()
	delete(p.flights, fk)
	p.flightMu.Unlock()
	close(f.done)
	if f.err == nil {
		p.admit(key, f.r, at)
	}
	return f.r, f.err
}

// lookupAt asks the replicas, in turn, for key as of at until one answer
// is proven to be the value at at, or ctx ends. An answer from a replica
// at A < at is the value at at only if the window shows no write of key in
// (A, at]; when the window cannot show that, the proxy tries the next
// replica, and after a round waits a little for the replicas to catch up.
func (p *Proxy) lookupAt(ctx context.Context, key []byte, at argent.Index) (lookup.Result, error) {
	var lastErr error
	backoff := time.Millisecond
	for {
		for _, c := range p.oracle.order(at) {
			r, err := c.Get(ctx, key, at)
			switch {
			case err != nil:
				lastErr = err
				if ctx.Err() != nil {
					return lookup.Result{}, p.missErr(key, at, lastErr)
				}
				if errors.Is(err, argent.ErrUnavailable) {
					p.oracle.markDown(c.Addr())
				}
				continue
			case r.Index == at:
				return r, nil
			case r.Index > at:
				lastErr = fmt.Errorf("proxy: %s answered as of %d, asked for %d", c.Addr(), r.Index, at)
				continue
			}
			changed, ok := p.win.Changed(key, r.Index, at)
			if ok && !changed {
				r.Index = at // nothing wrote key in (r.Index, at]
				return r, nil
			}
			lastErr = fmt.Errorf("proxy: %s is at %d, behind %d, and the window (from %d) cannot prove key unchanged", c.Addr(), r.Index, at, p.windowLo())
		}
		select {
		case <-ctx.Done():
			return lookup.Result{}, p.missErr(key, at, lastErr)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func (p *Proxy) windowLo() argent.Index {
	lo, _ := p.win.Bounds()
	return lo
}

func (p *Proxy) missErr(key []byte, at argent.Index, err error) error {
	if err == nil {
		err = errors.New("no answer")
	}
	return fmt.Errorf("%w: proxy: miss of %q at %d not resolved in %v: %w", argent.ErrUnavailable, key, at, p.cfg.MissWait, err)
}

// admit offers r, the value at index at, to the cache at the cache's
// applied index S2, if the window proves nothing wrote the key in
// (at, S2]. The cache refuses it if an Apply moved S2 meanwhile; the next
// miss brings it again.
func (p *Proxy) admit(key []byte, r lookup.Result, at argent.Index) {
	s2 := p.cache.Applied()
	if changed, ok := p.win.Changed(key, at, s2); !ok || changed {
		return
	}
	e := proxycache.Entry{Present: !r.Absent, Value: r.Value, ModIndex: r.ModIndex}
	if r.Absent {
		e.Since = at // absent at at, and nothing changed it up to s2
	}
	if ok, err := p.cache.Admit(key, e, s2); err != nil {
		p.cfg.Logger.Warn("proxy: admit to cache", "err", err)
	} else if ok {
		p.stats.Admitted.Add(1)
	}
}
