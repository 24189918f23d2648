package client

import (
	"context"
	"sync/atomic"

	"github.com/argent-kv/argent"
)

// Session is a Client that never reads older than what it has seen: it
// carries the highest index it has written or read, and sends it as
// min_index with every read, so a read after a write, or after another
// read, is answered from a state at least that new on any node (a lagging
// replica waits for it, or fails with argent.ErrTimeout after the read's
// Wait; it never answers older). A Session is safe for concurrent use; its
// index only grows.
type Session struct {
	c     *Client
	index *atomic.Uint64 // shared with the sessions made by On
}

// Session returns a new session on c, starting at index 0.
func (c *Client) Session() *Session {
	return &Session{c: c, index: new(atomic.Uint64)}
}

// On returns a session that sends its requests through c and shares s's
// index: what one of them writes or reads, the other reads at least as
// new. Use it to write through one client (the root, say) and read through
// another (a nearby replica).
func (s *Session) On(c *Client) *Session {
	return &Session{c: c, index: s.index}
}

// Index returns the highest index the session has seen.
func (s *Session) Index() argent.Index { return argent.Index(s.index.Load()) }

// Observe raises the session's index to i if i is higher, for an index
// learned elsewhere (from a watch, or another process).
func (s *Session) Observe(i argent.Index) {
	for {
		cur := s.index.Load()
		if uint64(i) <= cur || s.index.CompareAndSwap(cur, uint64(i)) {
			return
		}
	}
}

// read returns opts with MinIndex raised to the session's index.
func (s *Session) read(opts ReadOptions) ReadOptions {
	opts.MinIndex = max(opts.MinIndex, s.Index())
	return opts
}

// Get is Client.Get at the session's index or later.
func (s *Session) Get(ctx context.Context, key []byte, opts ReadOptions) (Value, error) {
	v, err := s.c.Get(ctx, key, s.read(opts))
	s.Observe(v.Index)
	return v, err
}

// MGet is Client.MGet at the session's index or later.
func (s *Session) MGet(ctx context.Context, keys [][]byte, opts ReadOptions) (argent.Index, []Item, error) {
	at, items, err := s.c.MGet(ctx, keys, s.read(opts))
	s.Observe(at)
	return at, items, err
}

// Scan is Client.Scan at the session's index or later.
func (s *Session) Scan(ctx context.Context, prefix, after []byte, limit int, opts ReadOptions) (Page, error) {
	p, err := s.c.Scan(ctx, prefix, after, limit, s.read(opts))
	s.Observe(p.Index)
	return p, err
}

// Put is Client.Put; the session's index rises to the write's.
func (s *Session) Put(ctx context.Context, key, value []byte) (argent.Index, error) {
	i, err := s.c.Put(ctx, key, value)
	s.Observe(i)
	return i, err
}

// Delete is Client.Delete; the session's index rises to the write's.
func (s *Session) Delete(ctx context.Context, key []byte) (argent.Index, error) {
	i, err := s.c.Delete(ctx, key)
	s.Observe(i)
	return i, err
}

// Txn is Client.Txn; the session's index rises to the write's.
func (s *Session) Txn(ctx context.Context, b argent.Batch) (argent.Index, error) {
	i, err := s.c.Txn(ctx, b)
	s.Observe(i)
	return i, err
}
