package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
)

// upstreams are the replicas a relay resolves lookups, scans and filters
// at, tried in turn from the one that answered last, with one lookup.Client
// each over one shared keep-alive http.Client.
type upstreams struct {
	addrs     []string
	hc        *http.Client
	limits    argent.Limits
	onCorrupt func(*http.Request, error)

	mu struct {
		sync.Mutex
		dataset argent.DatasetID // of the clients below
		clients []*lookup.Client
		next    int // the upstream to try first
	}
}

func newUpstreams(addrs []string, hc *http.Client, limits argent.Limits, onCorrupt func(*http.Request, error)) (*upstreams, error) {
	u := &upstreams{addrs: addrs, hc: hc, limits: limits, onCorrupt: onCorrupt}
	if err := u.build(argent.DatasetID{}); err != nil {
		return nil, err
	}
	return u, nil
}

// build makes the clients, which send ds as Argent-Dataset; u.mu is held
// or u is new.
func (u *upstreams) build(ds argent.DatasetID) error {
	cs := make([]*lookup.Client, len(u.addrs))
	for i, a := range u.addrs {
		c, err := lookup.NewClient(a, &lookup.ClientOptions{HTTPClient: u.hc, Dataset: ds, Limits: u.limits, UserAgent: "argent-relay", OnCorrupt: u.onCorrupt})
		if err != nil {
			return fmt.Errorf("relay: upstream %s: %w", a, err)
		}
		cs[i] = c
	}
	u.mu.dataset, u.mu.clients = ds, cs
	return nil
}

// order returns the clients, for dataset ds, in the order to try them.
func (u *upstreams) order(ds argent.DatasetID) []*lookup.Client {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ds != u.mu.dataset {
		_ = u.build(ds) // the addresses parsed once already
	}
	n := len(u.mu.clients)
	out := make([]*lookup.Client, 0, n)
	for i := range n {
		out = append(out, u.mu.clients[(u.mu.next+i)%n])
	}
	return out
}

// client returns the client of addr, which need not be one of u's.
func (u *upstreams) client(addr string, ds argent.DatasetID) (*lookup.Client, error) {
	for _, c := range u.order(ds) {
		if c.Addr() == "http://"+addr || c.Addr() == addr {
			return c, nil
		}
	}
	return lookup.NewClient(addr, &lookup.ClientOptions{HTTPClient: u.hc, Dataset: ds, Limits: u.limits, UserAgent: "argent-relay", OnCorrupt: u.onCorrupt})
}

// answered makes c the first to try next time.
func (u *upstreams) answered(c *lookup.Client) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, x := range u.mu.clients {
		if x == c {
			u.mu.next = i
			return
		}
	}
}

// try calls ask with each upstream's client in turn until one answers. It
// moves on after an error that says nothing of the request itself: no
// answer, a broken answer, no data yet, another dataset, history
// compacted. A request the replica found invalid or too large fails at
// once, since every replica would say so. It returns the error of the
// last upstream tried, or the first that was not mere unavailability.
func (u *upstreams) try(ctx context.Context, ds argent.DatasetID, ask func(c *lookup.Client) error) error {
	var best error
	for _, c := range u.order(ds) {
		err := ask(c)
		if err == nil {
			u.answered(c)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, argent.ErrInvalid) || errors.Is(err, argent.ErrTooLarge) {
			return err
		}
		if best == nil || errors.Is(best, argent.ErrUnavailable) && !errors.Is(err, argent.ErrUnavailable) {
			best = err
		}
	}
	if best == nil {
		best = fmt.Errorf("%w: relay: no upstream", argent.ErrUnavailable)
	}
	return best
}
