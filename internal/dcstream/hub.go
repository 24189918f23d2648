package dcstream

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// HubOptions configures a Hub. The zero value of each field means its
// default.
type HubOptions struct {
	// BufferMisses and BufferBytes bound each subscriber's buffer of misses
	// not yet written to it; past either, its oldest misses are dropped.
	// Defaults 8192 misses and 8 MiB.
	BufferMisses int
	BufferBytes  int
	// Progress is the interval of progress lines. Default 1 s.
	Progress time.Duration
	// WriteTimeout drops a subscriber that takes no bytes for this long.
	// Default 10 s.
	WriteTimeout time.Duration
	// Dataset, if set, returns the publisher's dataset: a subscriber that
	// names another one is refused (409), and while it is zero every
	// subscriber is refused (503).
	Dataset func() argent.DatasetID
	Logger  *slog.Logger
}

// HubStats counts what a Hub did since it started.
type HubStats struct {
	Published   uint64 // misses published
	Drops       uint64 // misses dropped from slow subscribers' buffers
	Subscribers int    // subscribers connected now
}

// Hub publishes misses to every subscribed stream. It is an http.Handler
// for Path. Publish never blocks.
type Hub struct {
	opts      HubOptions
	done      chan struct{}
	closeOnce sync.Once
	published atomic.Uint64
	drops     atomic.Uint64

	mu struct {
		sync.Mutex
		subs map[*subscriber]struct{}
	}
}

// NewHub returns a Hub.
func NewHub(opts HubOptions) *Hub {
	if opts.BufferMisses <= 0 {
		opts.BufferMisses = 8192
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = 8 << 20
	}
	if opts.Progress <= 0 {
		opts.Progress = time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{opts: opts, done: make(chan struct{})}
	h.mu.subs = make(map[*subscriber]struct{})
	return h
}

// Close ends every stream.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.done) }) }

// Stats returns the Hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	n := len(h.mu.subs)
	h.mu.Unlock()
	return HubStats{Published: h.published.Load(), Drops: h.drops.Load(), Subscribers: n}
}

// Publish queues m for every subscriber. m's slices must not change
// afterwards.
func (h *Hub) Publish(m Miss) {
	h.published.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.mu.subs {
		if n := s.push(m, h.opts.BufferMisses, h.opts.BufferBytes); n > 0 {
			h.drops.Add(uint64(n))
		}
	}
}

// subscriber is one connected stream's buffer.
type subscriber struct {
	wake chan struct{} // cap 1: misses are waiting
	mu   struct {
		sync.Mutex
		q     []Miss
		bytes int
	}
}

// push appends m and drops the oldest misses past the bounds; it returns
// how many it dropped.
func (s *subscriber) push(m Miss, maxMisses, maxBytes int) (dropped int) {
	s.mu.Lock()
	s.mu.q = append(s.mu.q, m)
	s.mu.bytes += m.size()
	for len(s.mu.q) > 0 && (len(s.mu.q) > maxMisses || s.mu.bytes > maxBytes) {
		s.mu.bytes -= s.mu.q[0].size()
		s.mu.q[0] = Miss{}
		s.mu.q = s.mu.q[1:]
		dropped++
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return dropped
}

// take returns the buffered misses and empties the buffer.
func (s *subscriber) take() []Miss {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.mu.q
	s.mu.q, s.mu.bytes = nil, 0
	return q
}

// ServeHTTP serves one subscriber until it goes away, falls so far behind
// that a write times out, or the Hub closes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, apiwire.CodeInvalid, fmt.Sprintf("dcstream: method %s not allowed on %s; allowed: GET", r.Method, r.URL.Path))
		return
	}
	if h.opts.Dataset != nil {
		ours := h.opts.Dataset()
		if ours.IsZero() {
			writeError(w, http.StatusServiceUnavailable, apiwire.CodeUnavailable, "dcstream: the relay has no data yet")
			return
		}
		if v := r.Header.Get(HeaderDataset); v != "" {
			theirs, err := argent.ParseDatasetID(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, apiwire.CodeInvalid, fmt.Sprintf("dcstream: %s header: %v", HeaderDataset, err))
				return
			}
			if theirs != ours {
				writeError(w, http.StatusConflict, apiwire.CodeDatasetMismatch, fmt.Sprintf("dcstream: subscriber has dataset %s, this relay %s", theirs, ours))
				return
			}
		}
	}
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.mu.subs[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.mu.subs, s)
		h.mu.Unlock()
	}()

	w.Header().Set("Content-Type", ContentType)
	w.Header().Set(HeaderVersion, Version)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var buf []byte
	send := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		return rc.Flush()
	}
	buf = append(buf, ProgressLine...) // the subscriber knows it is connected
	if err := send(); err != nil {
		return
	}
	tick := time.NewTicker(h.opts.Progress)
	defer tick.Stop()
	for {
		select {
		case <-s.wake:
			for _, m := range s.take() {
				buf = AppendLine(buf, &m)
			}
		case <-tick.C:
			buf = append(buf, ProgressLine...)
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
		if err := send(); err != nil {
			h.opts.Logger.Debug("dcstream: subscriber dropped", "remote", r.RemoteAddr, "err", err)
			return
		}
	}
}

// writeError answers the API's JSON error.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
