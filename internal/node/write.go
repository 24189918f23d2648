package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/writeq"
)

// errNoUpstream is why a node that follows no upstream yet cannot forward
// a write.
var errNoUpstream = errors.New("not connected to any upstream yet")

// writePath is where a root's writes go: the single root's committer
// (root.Root) or a member of a root group (group.Group).
type writePath interface {
	Write(ctx context.Context, b argent.Batch) (argent.Index, error)
	Submit(ctx context.Context, b argent.Batch) (*writeq.Pending, error)
	TrySubmit(b argent.Batch, done func(argent.Index, error)) bool
}

// Write implements api.Backend: the root commits; a replica forwards the
// batch to its upstream, which forwards it on until it reaches the root.
func (n *Node) Write(ctx context.Context, b argent.Batch) (argent.Index, error) {
	if err := n.cfg.Limits.CheckBatch(&b); err != nil {
		return 0, err
	}
	if n.writes != nil {
		return n.writes.Write(ctx, b)
	}
	up := n.follower.Upstream()
	if n.proxy != nil && up != "" {
		up = n.proxy.WriteTarget(up)
	}
	if up == "" {
		return 0, &api.UpstreamError{Addr: strings.Join(n.cfg.Upstreams, ","), Err: errNoUpstream}
	}
	c, err := n.forwarder(up)
	if err != nil {
		return 0, err
	}
	idx, err := c.Txn(ctx, b)
	if err != nil {
		return 0, forwardError(ctx, up, err)
	}
	return idx, nil
}

// forwardError describes a write forwarded to up that failed with err. An
// answer up gave (a failed condition, its own 503 root_unreachable from
// further up the tree) passes on with its code. No answer at all (refused,
// cut, timed out) is an *api.UpstreamError, 503 root_unreachable, unless
// the writer went away first.
func forwardError(ctx context.Context, up string, err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ctx.Err() != nil {
		return fmt.Errorf("forward write to %s: %w", up, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		// The request may have reached the root before the link failed.
		err = fmt.Errorf("%w (no answer came back: the write may or may not have been applied)", err)
	}
	return &api.UpstreamError{Addr: up, Err: err}
}

// WriteAsync implements api.AsyncWriter: the root queues b for its next
// merge; a replica forwards it when waited on.
func (n *Node) WriteAsync(ctx context.Context, b argent.Batch) (func(context.Context) (argent.Index, error), error) {
	if n.writes == nil {
		return func(ctx context.Context) (argent.Index, error) { return n.Write(ctx, b) }, nil
	}
	if err := n.cfg.Limits.CheckBatch(&b); err != nil {
		return nil, err
	}
	p, err := n.writes.Submit(ctx, b)
	if err != nil {
		return nil, err
	}
	return p.Wait, nil
}

var _ api.AsyncWriter = (*Node)(nil)

func (n *Node) forwarder(up string) (*client.Client, error) {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	if c, ok := n.clients[up]; ok {
		return c, nil
	}
	c, err := client.New(up, n.forwardOptions()...)
	if err != nil {
		return nil, fmt.Errorf("forward write to %s: %w", up, err)
	}
	n.clients[up] = c
	return c, nil
}

// SubmitWrite implements api.AsyncWriter: the root queues b for its next
// merge; other nodes forward writes, one at a time, through Write.
func (n *Node) SubmitWrite(b argent.Batch, done func(argent.Index, error)) bool {
	if n.writes == nil || n.cfg.Limits.CheckBatch(&b) != nil {
		return false
	}
	return n.writes.TrySubmit(b, done)
}

var _ api.AsyncWriter = (*Node)(nil)
