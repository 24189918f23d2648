package relay

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
)

// forwardedHeaders are the headers of a replica's scan answer passed on.
var forwardedHeaders = []string{"Content-Type", "Content-Length", "X-Content-Type-Options", apiwire.HeaderIndex}

// serveScan forwards GET /internal/v1/scan to the upstreams in turn: the
// first answer that is not 503 (no data) or 504 (behind the index asked
// for) is passed on as it is; if every upstream gives one of those, the
// last is.
func (rl *Relay) serveScan(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET")
		return
	}
	ds, err := rl.admit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	// The asker's wait is shared out among the upstreams tried, so that
	// replicas all behind answer within it, not within one wait each. A
	// query the relay cannot read goes as it is, for the replica to refuse.
	q, err := lookup.ParseQuery(r.URL.RawQuery)
	split := err == nil
	wait := lookup.DefaultScanWait
	if v := q.Get("wait"); split && v != "" {
		d, err := time.ParseDuration(v)
		split = err == nil && d >= 0
		wait = d
	}
	deadline := time.Now().Add(wait)
	var last *answer
	ups := rl.ups.order(ds)
	for i, c := range ups {
		query := r.URL.RawQuery
		if split {
			share := max(time.Until(deadline)/time.Duration(len(ups)-i), 0)
			q.Set("wait", strconv.FormatInt(share.Milliseconds(), 10)+"ms")
			query = q.Encode()
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, c.Addr()+lookup.ScanPath+"?"+query, nil)
		if err != nil {
			writeError(w, fmt.Errorf("relay: scan: %w", err))
			return
		}
		req.Header.Set(lookup.HeaderDataset, ds.String())
		req.Header.Set("User-Agent", "argent-relay")
		resp, err := rl.checked.Do(req)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			last = &answer{status: resp.StatusCode, header: resp.Header, body: b}
			continue
		}
		rl.ups.answered(c)
		copyHeaders(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	if last == nil {
		writeError(w, fmt.Errorf("%w: relay: scan: no upstream answered", argent.ErrUnavailable))
		return
	}
	copyHeaders(w.Header(), last.header)
	w.Header().Set("Content-Length", strconv.Itoa(len(last.body)))
	w.WriteHeader(last.status)
	_, _ = w.Write(last.body)
}

func copyHeaders(dst, src http.Header) {
	for _, k := range forwardedHeaders {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
}

// cachedFilter is a filter fetched from a replica: its encoding and the
// state it stands for.
type cachedFilter struct {
	state   argent.State
	encoded []byte
	fetched time.Time
}

// filterCache keeps the last filter fetched, so that the proxies of a DC
// starting together cost their replicas one filter.
type filterCache struct {
	maxAge time.Duration
	now    func() time.Time

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.Mutex
	last    *cachedFilter
}

// fresh returns the cached filter if it is younger than maxAge and stands
// for an index of at least atLeast.
func (fc *filterCache) fresh(atLeast argent.Index) *cachedFilter {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if f := fc.last; f != nil && fc.now().Sub(f.fetched) < fc.maxAge && f.state.Index >= atLeast {
		return f
	}
	return nil
}

func (fc *filterCache) put(f *cachedFilter) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.last == nil || f.state.Index >= fc.last.state.Index {
		fc.last = f
	}
}

// fetchFilter fetches a filter of at least minIndex from c and caches it.
func (rl *Relay) fetchFilter(ctx context.Context, c *lookup.Client, minIndex argent.Index) (*cachedFilter, error) {
	f, st, err := c.Filter(ctx, minIndex)
	if err != nil {
		return nil, err
	}
	enc, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("relay: encode filter: %w", err)
	}
	cf := &cachedFilter{state: st, encoded: enc, fetched: rl.filters.now()}
	rl.filters.put(cf)
	return cf, nil
}

// fetchState is the Ring's Bootstrap source: up's current state, from its
// filter (which the relay then serves to its children, who start over at
// the same state).
func (rl *Relay) fetchState(ctx context.Context, up string) (argent.State, error) {
	c, err := rl.ups.client(up, rl.ring.Dataset())
	if err != nil {
		return argent.State{}, err
	}
	cf, err := rl.fetchFilter(ctx, c, 0)
	if err != nil {
		return argent.State{}, err
	}
	return cf.state, nil
}

// serveFilter answers GET /internal/v1/filter[?min_index=N] with a filter
// from the upstreams, cached for FilterMaxAge. It asks for one at least as
// new as the oldest state the relay's log can be followed from, so that a
// proxy starting over with it can follow the relay, and passes over an
// upstream that answers with an older one (a replica behind the relay
// answers with its own): with no upstream ahead of that state, it answers
// 503. A filter older than min_index alone is passed on, as a replica's.
func (rl *Relay) serveFilter(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET")
		return
	}
	q, err := lookup.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	var minIndex argent.Index
	if _, ok := q["min_index"]; ok {
		if minIndex, err = lookup.IndexParam(q, "min_index"); err != nil {
			writeError(w, err)
			return
		}
	}
	ds, err := rl.admit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	feedFrom := rl.ring.LogFirst() - 1
	want := max(minIndex, feedFrom)
	cf := rl.filters.fresh(want)
	if cf == nil {
		rl.filters.fetchMu.Lock()
		if cf = rl.filters.fresh(want); cf == nil {
			ctx, cancel := context.WithTimeout(r.Context(), rl.cfg.LookupTimeout)
			err = rl.ups.try(ctx, ds, func(c *lookup.Client) error {
				f, err := rl.fetchFilter(ctx, c, want)
				if err != nil {
					return err
				}
				if f.state.Index < feedFrom {
					return fmt.Errorf("%w: relay: filter from %s is as of %d; the relay's log feeds from %d", argent.ErrUnavailable, c.Addr(), f.state.Index, feedFrom)
				}
				cf = f
				return nil
			})
			cancel()
		}
		rl.filters.fetchMu.Unlock()
		if err != nil {
			writeLookupError(w, err)
			return
		}
	}
	h := w.Header()
	setIndex(h, cf.state.Index)
	h.Set(lookup.HeaderChain, hex.EncodeToString(cf.state.Chain[:]))
	h.Set(lookup.HeaderTime, strconv.FormatInt(cf.state.Time, 10))
	writeBody(w, http.StatusOK, "application/octet-stream", cf.encoded)
}
