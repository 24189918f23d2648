package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// Event is one line of a watch: a batch or a progress marker. Index is the
// batch's index, or for a progress marker the index up to which every
// matching batch has been sent; Progress is true for a progress marker,
// which has no Ops; Ops are the batch's operations on keys under the watched
// prefix, in batch order (a delete_prefix op is included when its prefix and
// the watched prefix overlap; the server decides).
type Event = apiwire.Event

// Watcher reads the events of one watch. Next must not be called from two
// goroutines at once; Close may be called from any goroutine, also while Next
// is blocked.
type Watcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	body   io.ReadCloser
	dec    *json.Decoder

	floor argent.Index // from-1: every batch must be above it
	last  argent.Index // the index of the last event
	err   error        // sticky error of Next

	closeOnce sync.Once
	closed    chan struct{}
}

// Watch follows the batches that touch keys under prefix (nil for all keys)
// with GET /v1/watch?prefix=P&from=N. from is the first index wanted: batches
// from..., in order, then new ones as they commit, with periodic progress
// markers. from 0 means to start at the node's current state. To resume after
// an event with index N, watch again from N+1. When from is older than the
// node's history the error wraps argent.ErrCompacted.
//
// The watch lasts until ctx is done, Close is called, or the server ends it;
// the caller must call Close.
func (c *Client) Watch(ctx context.Context, prefix []byte, from argent.Index) (*Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	q := url.Values{
		"prefix": {string(prefix)},
		"from":   {strconv.FormatUint(uint64(from), 10)},
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/watch", q, nil, "")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: watch %q: %w", prefix, err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: watch %q: %w", prefix, err)
	}
	w := &Watcher{
		ctx:    ctx,
		cancel: cancel,
		body:   resp.Body,
		dec:    json.NewDecoder(resp.Body),
		closed: make(chan struct{}),
	}
	if from > 0 {
		w.floor = from - 1
	}
	return w, nil
}

// Next blocks until the next event and returns it. It returns io.EOF when
// the server ended the stream cleanly (resume with Watch from the last
// index+1), an error wrapping argent.ErrClosed after Close, one wrapping the
// context's error when ctx is done, and an *Error when the server ended the
// stream with an error line. Once Next returns an error it returns the same
// error on every later call.
//
// Next checks the order the server promises: a batch's index is at least from
// and greater than that of every earlier event; a progress marker's index is
// not smaller than that of an earlier event (it may be below from while the
// node has not reached from yet).
func (w *Watcher) Next() (Event, error) {
	if w.err != nil {
		return Event{}, w.err
	}
	ev, err := w.next()
	if err != nil {
		// The stream is over: release its connection now.
		w.err = err
		_ = w.Close()
		return Event{}, err
	}
	return ev, nil
}

func (w *Watcher) next() (Event, error) {
	var line WatchLine
	if err := w.dec.Decode(&line); err != nil {
		select {
		case <-w.closed:
			return Event{}, fmt.Errorf("client: watch: %w", argent.ErrClosed)
		default:
		}
		if w.ctx.Err() != nil {
			return Event{}, fmt.Errorf("client: watch: %w", context.Cause(w.ctx))
		}
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return Event{}, io.EOF
		}
		return Event{}, fmt.Errorf("client: watch: %w", err)
	}
	ev, err := line.Event()
	if err != nil {
		return Event{}, fmt.Errorf("client: watch: %w", err)
	}
	switch {
	case ev.Progress && ev.Index < w.last:
		return Event{}, fmt.Errorf("client: watch: progress marker %d after index %d", ev.Index, w.last)
	case !ev.Progress && ev.Index <= max(w.last, w.floor):
		return Event{}, fmt.Errorf("client: watch: batch %d after index %d", ev.Index, max(w.last, w.floor))
	}
	w.last = ev.Index
	return ev, nil
}

// Close ends the watch and releases its connection. It is safe to call more
// than once and from any goroutine; a Next blocked in another goroutine
// returns an error wrapping argent.ErrClosed.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.closed)
		w.cancel()
		_ = w.body.Close()
	})
	return nil
}
