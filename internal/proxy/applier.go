package proxy

import (
	"context"
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/wire"
)

// Target returns the pull.Target a Follower applies the log to: every
// entry goes to the window, the filter and the cache, in that order, and a
// group's Commit syncs the cache and publishes its state to readers.
func (p *Proxy) Target() pull.Target { return (*target)(p) }

type target Proxy

func (t *target) p() *Proxy { return (*Proxy)(t) }

// Applied is the last entry applied to the cache, durable or not: the
// stream resumes after it.
func (t *target) Applied() argent.Index {
	t.applyMu.Lock()
	defer t.applyMu.Unlock()
	return t.last.Index
}

func (t *target) Dataset() argent.DatasetID { return t.cache.Dataset() }

func (t *target) AdoptDataset(id argent.DatasetID) error {
	_, err := t.cache.AdoptDataset(id)
	return err
}

func (t *target) BootstrapPending() bool { return false }

// Bootstrap starts over at an upstream's current state when its log no
// longer holds the proxy's next entry: the cache is emptied (its entries
// may have changed in the entries missed), the window moves to that state
// and the upstream's filter, built at that state, is installed as is.
func (t *target) Bootstrap(ctx context.Context, up string) error {
	p := t.p()
	c, err := p.lookupClient(up)
	if err != nil {
		return err
	}
	f, st, err := c.Filter(ctx, 0)
	if err != nil {
		return fmt.Errorf("proxy: start over at %s: %w", up, err)
	}
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if st.Index < p.last.Index {
		return fmt.Errorf("proxy: start over at %s: it is at %d, behind the proxy's %d", up, st.Index, p.last.Index)
	}
	if err := p.cache.Reset(st); err != nil {
		return fmt.Errorf("proxy: start over: %w", err)
	}
	synced, err := p.cache.Sync()
	if err != nil {
		return fmt.Errorf("proxy: start over: %w", err)
	}
	p.win.Reset(st.Index)
	p.ring.reset()
	p.last = st
	p.filter.Store(&installedFilter{f: f, base: st.Index})
	p.publish(synced)
	p.cfg.Logger.Info("proxy: started over at the upstream's state", "upstream", up, "index", st.Index)
	return nil
}

func (t *target) Begin() pull.Group { return &group{p: t.p()} }

// group applies entries as they come and syncs on Commit: the cache's
// Apply writes without fsync, so a group shares one.
type group struct {
	p *Proxy
	n int
}

func (g *group) Len() int { return g.n }

// AppendEntry checks e against the last entry (index and chain) and applies
// it to the window, the filter and the cache.
func (g *group) AppendEntry(e *argent.Entry) error {
	p := g.p
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if e.Index != p.last.Index+1 {
		return fmt.Errorf("%w: proxy got entry %d, want %d", argent.ErrCorruption, e.Index, p.last.Index+1)
	}
	if want := wire.NextChain(p.last.Chain, e); want != e.Chain {
		return fmt.Errorf("%w: entry %d has chain %x, want %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], want[:8])
	}
	if err := p.win.Apply(e); err != nil {
		return fmt.Errorf("%w: %w", argent.ErrCorruption, err)
	}
	if f := p.filter.Load(); f != nil {
		for _, op := range e.Ops {
			if op.Type == argent.OpPut {
				f.f.Add(op.Key)
			}
		}
	}
	if err := p.cache.Apply(e); err != nil {
		// The window already holds e: start it over at what the cache has.
		p.win.Reset(p.cache.Applied())
		return fmt.Errorf("proxy: apply entry %d: %w", e.Index, err)
	}
	p.last = logstore.StateOf(e)
	p.ring.add(e)
	g.n++
	return nil
}

// Commit syncs the cache and publishes its state.
func (g *group) Commit() error {
	if g.n == 0 {
		return nil
	}
	g.n = 0
	st, err := g.p.cache.Sync()
	if err != nil {
		return fmt.Errorf("proxy: sync: %w", err)
	}
	if f := g.p.filter.Load(); f != nil {
		f.f.SetIndex(st.Index)
	}
	g.p.publish(st)
	g.p.checkFilter()
	return nil
}

// Discard keeps what was applied (every entry was checked before it was
// applied) and makes it durable, as Commit does.
func (g *group) Discard() { _ = g.Commit() }

// lookupClient returns the client for addr, making one for an upstream
// that is not among the replicas.
func (p *Proxy) lookupClient(addr string) (*lookup.Client, error) {
	return p.oracle.client(addr)
}
