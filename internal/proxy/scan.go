package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
)

// Scan implements the api's reader: up to limit keys with prefix that sort
// after after, with their values at index at (at most Applied), and whether
// more keys follow. A proxy holds only some keys, so the page comes whole
// from a replica asked for the page as of at (lookup.Client.Scan): the
// replicas in the oracle's order, in turn, until one answers, again and
// again with a growing pause, within MissWait. A replica at or past at
// answers from its MVCC history, which is the state at at; one behind at
// waits a little for at and otherwise refuses. No page as of another index
// is ever taken: a page from behind at would lack the keys put since and
// hold those deleted since, and the window cannot supply the keys past the
// page's end that deletes would pull into it. The page neither uses nor
// fills the cache.
//
// It fails with an error wrapping argent.ErrUnavailable when no replica
// answered within MissWait (none at or past at, or none reachable), and
// ctx's error too when ctx ended first; with argent.ErrTooLarge, before
// asking, when prefix or after is longer than the key limit, which
// replicas refuse.
func (p *Proxy) Scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error) {
	if err := p.checkAt(at); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("%w: proxy: scan limit %d", argent.ErrInvalid, limit)
	}
	maxKey := p.cfg.Limits.WithDefaults().MaxKey
	if len(prefix) > maxKey || len(after) > maxKey {
		return nil, false, fmt.Errorf("%w: proxy: scan prefix of %d bytes or after of %d bytes is longer than the key limit of %d", argent.ErrTooLarge, len(prefix), len(after), maxKey)
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.MissWait)
	defer cancel()
	items, more, err := p.scanAt(wctx, prefix, after, limit, at)
	if err != nil && ctx.Err() != nil {
		err = readerGone(ctx, fmt.Sprintf("scan of %q after %q at %d", prefix, after, at))
	}
	if err != nil {
		p.stats.Failed.Add(1)
		return nil, false, err
	}
	p.stats.L3.Add(1)
	return items, more, nil
}

// scanAt asks the replicas, in turn, for the page as of at until one
// answers, or ctx ends. After a round it waits a little for the replicas
// to catch up.
func (p *Proxy) scanAt(ctx context.Context, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error) {
	var (
		items []argent.Item
		more  bool
		last  error // the last replica's refusal, for the error
	)
	answered := p.askReplicas(ctx, at, func(c *lookup.Client) bool {
		var err error
		items, more, err = c.Scan(ctx, prefix, after, limit, at)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false // our deadline, not the replica's refusal
		}
		last = err
		// A replica that is only behind is well; the others did not
		// answer, or not in this protocol.
		if errors.Is(err, argent.ErrUnavailable) && !errors.Is(err, lookup.ErrBehind) {
			p.oracle.markDown(c.Addr())
		}
		return false
	})
	if !answered {
		return nil, false, p.scanErr(prefix, after, at, last)
	}
	return items, more, nil
}

// scanErr is the error of a scan no replica answered in MissWait; err is
// the last refusal, if any.
func (p *Proxy) scanErr(prefix, after []byte, at argent.Index, err error) error {
	if err == nil {
		err = errors.New("no replica answered")
	}
	return fmt.Errorf("%w: proxy: scan of %q after %q at %d not answered in %v: %w", argent.ErrUnavailable, prefix, after, at, p.cfg.MissWait, err)
}
