package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/argent-kv/argent"
)

// FilterInstalled reports whether the proxy has a negative-lookup filter,
// so that it answers absent keys itself.
func (p *Proxy) FilterInstalled() bool { return p.filter.Load() != nil }

// RunFilter keeps the negative-lookup filter installed and fresh until ctx
// ends: it fetches one from a replica when there is none or the one in use
// has drifted past its false-positive target (deleted keys stay in a Bloom
// filter), and installs it once it has caught up with the proxy.
func (p *Proxy) RunFilter(ctx context.Context) {
	t := time.NewTicker(p.cfg.FilterInterval)
	defer t.Stop()
	for {
		if f := p.filter.Load(); f == nil || f.f.NeedsRebuild() {
			if err := p.refreshFilter(ctx); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Info("proxy: no new filter yet", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.filterStale:
		}
	}
}

// checkFilter wakes RunFilter when the filter has drifted (a bulk load
// filled a filter sized for few keys, say), at most once a second: the
// drift check reads the whole bit array. A call within the second
// schedules one check for its end, so that the last commit of a burst is
// checked too: without it a bulk load that ended within a second of a
// check left a saturated filter in use, and every absent key went to a
// replica, until RunFilter's next tick.
func (p *Proxy) checkFilter() {
	now := time.Now().UnixNano()
	last := p.filterChecked.Load()
	if wait := last + int64(time.Second) - now; wait > 0 {
		if p.filterRecheck.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				p.filterRecheck.Store(false)
				p.checkFilter()
			})
		}
		return
	}
	if !p.filterChecked.CompareAndSwap(last, now) {
		return
	}
	if f := p.filter.Load(); f != nil && f.f.NeedsRebuild() {
		select {
		case p.filterStale <- struct{}{}:
		default:
		}
	}
}

// refreshFilter fetches a filter built at some index X and installs it:
//
//   - X <= the proxy's last applied index L: the keys put in (X, L] are
//     added from the window first; a window that does not reach back to X
//     cannot tell them, so the filter is dropped.
//   - X > L: the proxy waits (a little) until it reaches X. A filter at X
//     lacks the keys deleted in (L, X], present at L: it must not answer
//     for indexes below X.
//
// Reads at S use it only for S >= X (installedFilter.base).
func (p *Proxy) refreshFilter(ctx context.Context) error {
	var lastErr error
	for _, c := range p.oracle.order(p.Applied()) {
		f, st, err := c.Filter(ctx, p.Applied())
		if err != nil {
			lastErr = err
			continue
		}
		_, err = p.WaitApplied(ctx, p.cfg.MissWait, st.Index)
		if err != nil {
			lastErr = fmt.Errorf("proxy: filter at %d from %s: %w", st.Index, c.Addr(), err)
			continue
		}
		p.applyMu.Lock()
		ok := p.win.Puts(st.Index, p.last.Index, func(k string) { f.Add([]byte(k)) })
		if ok {
			f.SetIndex(p.last.Index)
			p.filter.Store(&installedFilter{f: f, base: st.Index})
		}
		last := p.last.Index
		p.applyMu.Unlock()
		if ok {
			p.cfg.Logger.Info("proxy: installed negative-lookup filter", "replica", c.Addr(), "built_at", st.Index, "caught_up_to", last)
			return nil
		}
		lastErr = fmt.Errorf("proxy: filter at %d: the window does not reach back to it (proxy at %d)", st.Index, last)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: no replica", argent.ErrUnavailable)
	}
	return lastErr
}
