package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
)

// L2Path is where a proxy of a data center answers its DC peers for the
// keys of the shards it owns (the DC-wide cache, L2):
//
//	POST /internal/v1/l2?at=S   {"keys":["<base64>",...]}
//
// The asker reads at its own index S (at least 1); the owner, at its applied index A,
// reads each key at A from its own tiers, resolving a miss at L3 (its
// replicas or relay, never another owner) and caching it there. Each item
// of the answer {"index":A,"items":[...]} is one of:
//
//   - {"at":X,"value":"<base64>","mod_index":M} or {"at":X,"absent":true}:
//     the key's value as of X. X is S when the owner can prove it is the
//     value at S (A <= S is not that case: then X is A, and the asker
//     proves with its own window that the key did not change in (A, S]).
//     A >= S proves it when the value's mod index is at most S, or when
//     the owner's window shows no write of the key in (S, A].
//   - {"newer":true}: the owner is past S and the key changed after S, or
//     the owner cannot tell; the asker asks L3 (as Quicksilver's L2 does).
//
// "fetched":true says the owner had to resolve the key at L3 itself: for
// the asker the answer is then an L3 one (Argent-Tier l3), not an L2 hit.
// Argent-Dataset is checked as on a replica's lookups.
const L2Path = "/internal/v1/l2"

type l2Request struct {
	Keys [][]byte `json:"keys"`
}

type l2Item struct {
	At       argent.Index `json:"at,omitempty"`
	Value    []byte       `json:"value,omitempty"`
	ModIndex argent.Index `json:"mod_index,omitempty"`
	Absent   bool         `json:"absent,omitempty"`
	Newer    bool         `json:"newer,omitempty"`
	Fetched  bool         `json:"fetched,omitempty"`
}

type l2Answer struct {
	Index argent.Index `json:"index"`
	Items []l2Item     `json:"items"`
}

// maxL2Body bounds a request's body: maxLookupKeys keys of the largest
// size, in base64, with room for the JSON around them.
func (p *Proxy) maxL2Body() int64 {
	return int64(maxLookupKeys)*int64(p.cfg.Limits.MaxKey*4/3+8) + 1024
}

// ServeL2 answers a DC peer's L2 request (see L2Path).
func (p *Proxy) ServeL2(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSONError(w, http.StatusMethodNotAllowed, apiwire.CodeInvalid, fmt.Sprintf("argent: method %s not allowed on %s; allowed: POST", r.Method, r.URL.Path))
		return
	}
	keys, at, err := p.parseL2(r)
	if err != nil {
		status, body := apiwire.NewErrorBody(err)
		writeJSON(w, status, body)
		return
	}
	ans, err := p.answerL2(r.Context(), keys, at)
	if err != nil {
		status, body := apiwire.NewErrorBody(err)
		writeJSON(w, status, body)
		return
	}
	p.stats.L2Served.Add(uint64(len(keys)))
	writeJSON(w, http.StatusOK, ans)
}

func (p *Proxy) parseL2(r *http.Request) ([][]byte, argent.Index, error) {
	ds := p.cache.Dataset()
	if ds.IsZero() {
		return nil, 0, fmt.Errorf("%w: proxy: no data yet", argent.ErrUnavailable)
	}
	if v := r.Header.Get(lookup.HeaderDataset); v != "" {
		theirs, err := argent.ParseDatasetID(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: proxy: %s header: %v", argent.ErrInvalid, lookup.HeaderDataset, err)
		}
		if theirs != ds {
			return nil, 0, fmt.Errorf("%w: proxy: asked for dataset %s, this proxy holds %s", argent.ErrDatasetMismatch, theirs, ds)
		}
	}
	at, err := strconv.ParseUint(r.URL.Query().Get("at"), 10, 64)
	if err != nil || at == 0 {
		return nil, 0, fmt.Errorf("%w: proxy: at=%q is not an index of at least 1", argent.ErrInvalid, r.URL.Query().Get("at"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, p.maxL2Body()+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: proxy: read l2 request: %v", argent.ErrInvalid, err)
	}
	if int64(len(body)) > p.maxL2Body() {
		return nil, 0, fmt.Errorf("%w: proxy: l2 request over %d bytes", argent.ErrTooLarge, p.maxL2Body())
	}
	var req l2Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, fmt.Errorf("%w: proxy: l2 request: %v", argent.ErrInvalid, err)
	}
	if len(req.Keys) == 0 || len(req.Keys) > maxLookupKeys {
		return nil, 0, fmt.Errorf("%w: proxy: l2 request of %d keys, want 1 to %d", argent.ErrInvalid, len(req.Keys), maxLookupKeys)
	}
	for i, k := range req.Keys {
		if err := p.cfg.Limits.CheckKey(k); err != nil {
			return nil, 0, fmt.Errorf("proxy: l2 key %d: %w", i, err)
		}
	}
	return req.Keys, argent.Index(at), nil
}

// answerL2 reads keys at the proxy's applied index A, as their owner, and
// says of each what it proves of its value at at (see L2Path).
func (p *Proxy) answerL2(ctx context.Context, keys [][]byte, at argent.Index) (l2Answer, error) {
	a := p.Applied()
	vals, found, tiers, err := p.getMany(ctx, keys, a, true)
	if err != nil {
		return l2Answer{}, err
	}
	ans := l2Answer{Index: a, Items: make([]l2Item, len(keys))}
	for i, k := range keys {
		it := l2Item{Absent: !found[i], Fetched: tiers[i] == TierL3}
		if found[i] {
			it.Value, it.ModIndex = vals[i].Value, vals[i].ModIndex
		}
		switch {
		case a <= at:
			it.At = a
		case found[i] && vals[i].ModIndex <= at:
			it.At = at
		default:
			if changed, ok := p.win.Changed(k, at, a); ok && !changed {
				it.At = at
			} else {
				it = l2Item{Newer: true, Fetched: it.Fetched}
			}
		}
		ans.Items[i] = it
	}
	return ans, nil
}

// askOwners asks the DC peers that own the shards of the keys at
// positions todo for them as of at, one request per owner, all at once,
// each bounded by the DC's owner timeout. It fills out with the answers it
// can prove to be the value at at and returns the positions left for L3:
// keys this proxy owns, keys whose owner failed (it is then skipped for a
// while), and answers the owner or the window could not prove.
func (p *Proxy) askOwners(ctx context.Context, keys [][]byte, todo []int, at argent.Index, out []answer) (left []int) {
	byOwner := make(map[string][]int)
	for _, i := range todo {
		if owner, self := p.dc.owner(keys[i]); self {
			left = append(left, i)
		} else {
			byOwner[owner] = append(byOwner[owner], i)
		}
	}
	if len(byOwner) == 0 {
		return left
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for owner, idx := range byOwner {
		askOne := func() {
			ask := make([][]byte, len(idx))
			for j, i := range idx {
				ask[j] = keys[i]
			}
			items, err := p.askOwner(ctx, owner, ask, at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					p.dc.markDown(owner)
					p.cfg.Logger.Debug("proxy: L2 owner failed; asking L3", "owner", owner, "err", err)
				}
				left = append(left, idx...)
				return
			}
			for j, i := range idx {
				if a, ok := p.proveL2(keys[i], items[j], at); ok {
					out[i] = a
				} else {
					left = append(left, i)
				}
			}
		}
		if len(byOwner) == 1 { // on this goroutine: no hand-off to wait for
			askOne()
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			askOne()
		}()
	}
	wg.Wait()
	return left
}

// proveL2 turns an owner's item into the value at at, if it is one.
func (p *Proxy) proveL2(key []byte, it l2Item, at argent.Index) (answer, bool) {
	if it.Newer || it.At == 0 || it.At > at {
		return answer{}, false
	}
	if it.At < at {
		if changed, ok := p.win.Changed(key, it.At, at); !ok || changed {
			return answer{}, false
		}
	}
	a := answer{Result: lookup.Result{Index: at, Absent: it.Absent}, tier: TierL2, owned: true}
	if !it.Absent {
		a.Item = argent.Item{Key: key, Value: argent.Value{Value: it.Value, ModIndex: it.ModIndex}}
	} else {
		a.Item = argent.Item{Key: key}
	}
	if it.Fetched {
		a.tier = TierL3
	}
	return a, true
}

// errL2Answer is an owner's answer that breaks the protocol.
var errL2Answer = errors.New("proxy: malformed L2 answer")

// askOwner sends one L2 request to owner.
func (p *Proxy) askOwner(ctx context.Context, owner string, keys [][]byte, at argent.Index) ([]l2Item, error) {
	ctx, cancel := context.WithTimeout(ctx, p.dc.timeout)
	defer cancel()
	body, err := json.Marshal(l2Request{Keys: keys})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+owner+L2Path+"?at="+strconv.FormatUint(uint64(at), 10), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if ds := p.cache.Dataset(); !ds.IsZero() {
		req.Header.Set(lookup.HeaderDataset, ds.String())
	}
	resp, err := p.checked.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("proxy: L2 owner %s: %s", owner, resp.Status)
	}
	// Read the whole body: a connection is kept alive only once its
	// answer was read to the end.
	body, err = io.ReadAll(io.LimitReader(resp.Body, int64(len(keys))*int64(p.cfg.Limits.MaxValue*4/3+1024)+1024))
	if err != nil {
		return nil, fmt.Errorf("proxy: L2 owner %s: %w", owner, err)
	}
	var ans l2Answer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("%w from %s: %v", errL2Answer, owner, err)
	}
	if len(ans.Items) != len(keys) {
		return nil, fmt.Errorf("%w from %s: %d items for %d keys", errL2Answer, owner, len(ans.Items), len(keys))
	}
	return ans.Items, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"proxy: cannot encode answer"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: code, Message: msg}})
}
