package relay

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/dcstream"
	"github.com/argent-kv/argent/internal/lookup"
)

// flightKey names one upstream lookup that concurrent requests share.
type flightKey struct {
	key string
	at  argent.Index
}

// flight is an upstream lookup of one key under way; done is closed once
// r and err are set.
type flight struct {
	done chan struct{}
	r    lookup.Result
	err  error
}

// serveLookup answers GET and POST /internal/v1/lookup as a replica does
// (internal/lookup's protocol), from its upstreams.
func (rl *Relay) serveLookup(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		rl.serveLookupGet(w, r)
	case http.MethodPost:
		rl.serveLookupPost(w, r)
	default:
		methodNotAllowed(w, r, "GET, POST")
	}
}

// serveLookupGet answers GET /internal/v1/lookup?key=K&at=S.
func (rl *Relay) serveLookupGet(w http.ResponseWriter, r *http.Request) {
	q, err := lookup.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	key, err := lookup.Param(q, "key")
	if err != nil {
		writeError(w, err)
		return
	}
	if err := rl.cfg.Limits.CheckKey([]byte(key)); err != nil {
		writeError(w, fmt.Errorf("relay: lookup: %w", err))
		return
	}
	at, err := lookup.IndexParam(q, "at")
	if err != nil {
		writeError(w, err)
		return
	}
	ds, err := rl.admit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rs, err := rl.resolve(r.Context(), ds, [][]byte{[]byte(key)}, at)
	if err != nil {
		writeLookupError(w, err)
		return
	}
	res := rs[0]
	h := w.Header()
	setIndex(h, res.Index)
	if res.Absent {
		writeError(w, argent.ErrNotFound)
		return
	}
	h.Set(apiwire.HeaderModIndex, strconv.FormatUint(uint64(res.ModIndex), 10))
	writeBody(w, http.StatusOK, "application/octet-stream", res.Value.Value)
}

// serveLookupPost answers POST /internal/v1/lookup?at=S with
// {"keys":[...]}: every key at one index.
func (rl *Relay) serveLookupPost(w http.ResponseWriter, r *http.Request) {
	q, err := lookup.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	at, err := lookup.IndexParam(q, "at")
	if err != nil {
		writeError(w, err)
		return
	}
	var req apiwire.MGetRequest
	if err := api.DecodeJSON(http.MaxBytesReader(w, r.Body, lookup.DefaultMaxBody), &req); err != nil {
		writeError(w, fmt.Errorf("relay: lookup: %w", err))
		return
	}
	if len(req.Keys) > lookup.DefaultMaxKeys {
		writeError(w, fmt.Errorf("%w: relay: lookup: %d keys, more than the limit of %d", argent.ErrTooLarge, len(req.Keys), lookup.DefaultMaxKeys))
		return
	}
	keys := make([][]byte, len(req.Keys))
	for i, k := range req.Keys {
		keys[i] = []byte(k)
		if err := rl.cfg.Limits.CheckKey(keys[i]); err != nil {
			writeError(w, fmt.Errorf("relay: lookup: key %d: %w", i, err))
			return
		}
	}
	ds, err := rl.admit(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := apiwire.MGetResponse{Items: make([]apiwire.Item, len(keys))}
	if len(keys) > 0 {
		rs, err := rl.resolve(r.Context(), ds, keys, at)
		if err != nil {
			writeLookupError(w, err)
			return
		}
		out.Index = rs[0].Index
		for i, res := range rs {
			if res.Absent {
				out.Items[i] = apiwire.Item{Key: req.Keys[i], Absent: true}
			} else {
				out.Items[i] = apiwire.Item{Key: req.Keys[i], Value: res.Value.Value, ModIndex: res.ModIndex}
			}
		}
	} else {
		// No key to ask about: the answer is as of at, which says nothing.
		out.Index = at
	}
	setIndex(w.Header(), out.Index)
	writeJSON(w, http.StatusOK, out)
}

// resolve returns the answers for keys (any order, repeats allowed) as of
// at, all from one index: at itself, or the index of a replica behind at.
//
// Each distinct key is a flight that concurrent requests for it at the same
// at share (one upstream lookup for all of them); the keys no other request
// is looking up are asked together, in one upstream request. Answers from
// flights of other requests may come from replicas at different indexes
// when they are behind at; a many-key answer is then asked again, whole,
// in one request, so that every key is as of one index.
func (rl *Relay) resolve(ctx context.Context, ds argent.DatasetID, keys [][]byte, at argent.Index) ([]lookup.Result, error) {
	rl.stats.Lookups.Add(uint64(len(keys)))
	flights := make([]*flight, len(keys))
	var lead [][]byte
	var led []*flight
	rl.flightMu.Lock()
	for i, k := range keys {
		fk := flightKey{key: string(k), at: at}
		if f, ok := rl.flights[fk]; ok {
			flights[i] = f
			if !contains(led, f) {
				rl.stats.Shared.Add(1)
			}
			continue
		}
		f := &flight{done: make(chan struct{})}
		rl.flights[fk] = f
		flights[i] = f
		lead = append(lead, k)
		led = append(led, f)
	}
	rl.flightMu.Unlock()

	if len(lead) > 0 {
		rs, err := rl.lookupUpstream(ctx, ds, lead, at)
		rl.flightMu.Lock()
		for _, k := range lead {
			delete(rl.flights, flightKey{key: string(k), at: at})
		}
		rl.flightMu.Unlock()
		for n, f := range led {
			if err == nil {
				f.r = rs[n]
			}
			f.err = err
			close(f.done)
		}
	}

	out := make([]lookup.Result, len(keys))
	for i, f := range flights {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("relay: lookup of %q as of %d: %w", keys[i], at, ctx.Err())
		}
		if f.err != nil {
			return nil, f.err
		}
		out[i] = f.r
		out[i].Key = keys[i]
	}
	for _, r := range out[1:] {
		if r.Index != out[0].Index {
			// Shared answers from replicas at different indexes: ask for
			// the keys together, as of one index.
			rs, err := rl.lookupUpstream(ctx, ds, keys, at)
			if err != nil {
				return nil, err
			}
			return rs, nil
		}
	}
	return out, nil
}

func contains(fs []*flight, f *flight) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// lookupUpstream asks the upstreams for keys as of at in one request (the
// one-key form for one key, which takes keys of any bytes), publishes the
// answers on the DC's miss stream, and returns them. It runs to its end,
// within LookupTimeout, even when the request that started it goes away:
// other requests may share it.
func (rl *Relay) lookupUpstream(ctx context.Context, ds argent.DatasetID, keys [][]byte, at argent.Index) ([]lookup.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rl.cfg.LookupTimeout)
	defer cancel()
	var rs []lookup.Result
	err := rl.ups.try(ctx, ds, func(c *lookup.Client) error {
		rl.stats.UpstreamLookups.Add(uint64(len(keys)))
		var err error
		if len(keys) == 1 {
			var r lookup.Result
			r, err = c.Get(ctx, keys[0], at)
			rs = []lookup.Result{r}
		} else {
			rs, err = c.GetMany(ctx, keys, at)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		m := dcstream.Miss{Key: r.Key, Absent: r.Absent, Index: r.Index}
		if !r.Absent {
			m.Value, m.ModIndex = r.Value.Value, r.ModIndex
			if m.Value == nil {
				m.Value = []byte{}
			}
		}
		rl.hub.Publish(m)
	}
	return rs, nil
}

// writeLookupError answers a lookup that failed upstream with the
// upstream's error and, when it named one, its Argent-Index (the replica's
// applied index of a 410 compacted).
func writeLookupError(w http.ResponseWriter, err error) {
	var le *lookup.Error
	if asLookupError(err, &le) && le.Index != 0 {
		setIndex(w.Header(), le.Index)
	}
	writeError(w, err)
}
