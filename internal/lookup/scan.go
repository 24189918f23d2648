package lookup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// scanPage is the answer of GET ScanPath: one page of a scan as of Index.
// Keys travel base64, as values do, because they may be any bytes; the
// public apiwire.ScanPage carries them as JSON strings, which only valid
// UTF-8 survives, and its next key is then no key of the store.
type scanPage struct {
	Index argent.Index `json:"index"`
	Items []scanItem   `json:"items"`
	// More says that keys follow the last item: ask again after it.
	More bool `json:"more,omitempty"`
}

type scanItem struct {
	Key      []byte       `json:"key"`
	Value    []byte       `json:"value,omitempty"`
	ModIndex argent.Index `json:"mod_index"`
}

// scanRequest is a parsed GET ScanPath.
type scanRequest struct {
	prefix, after []byte
	limit         int
	at            argent.Index
	wait          time.Duration
}

// parseScan parses the query of a scan: prefix (required, may be empty),
// after (optional), limit (required, at least 1, cut to MaxScanLimit), at
// (required) and wait (optional, a Go duration, cut to ScanWait).
func (s *Server) parseScan(raw string) (scanRequest, error) {
	var req scanRequest
	q, err := ParseQuery(raw)
	if err != nil {
		return req, err
	}
	prefix, err := Param(q, "prefix")
	if err != nil {
		return req, err
	}
	after, _, err := optional(q, "after")
	if err != nil {
		return req, err
	}
	for _, p := range []struct{ name, v string }{{"prefix", prefix}, {"after", after}} {
		if len(p.v) > s.cfg.Limits.MaxKey {
			return req, fmt.Errorf("%w: lookup: %s of %d bytes is longer than the key limit of %d", argent.ErrTooLarge, p.name, len(p.v), s.cfg.Limits.MaxKey)
		}
	}
	req.prefix, req.after = []byte(prefix), []byte(after)
	lim, err := Param(q, "limit")
	if err != nil {
		return req, err
	}
	if req.limit, err = strconv.Atoi(lim); err != nil || req.limit < 1 {
		return req, invalidf("limit=%q is not a count of at least 1", lim)
	}
	req.limit = min(req.limit, s.cfg.MaxScanLimit)
	if req.at, err = IndexParam(q, "at"); err != nil {
		return req, err
	}
	maxWait := max(s.cfg.ScanWait, 0)
	req.wait = maxWait
	if v, ok, err := optional(q, "wait"); err != nil {
		return req, err
	} else if ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return req, invalidf("wait=%q is not a duration", v)
		}
		req.wait = min(d, maxWait)
	}
	return req, nil
}

// serveScan answers GET /internal/v1/scan?prefix=P&after=K&limit=L&at=S
// [&wait=D]: the page as of S exactly, or an error; never a page as of
// another index.
func (s *Server) serveScan(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseScan(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.admit(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	if applied, err := s.st.WaitApplied(r.Context(), req.wait, req.at); err != nil {
		setIndex(h, applied)
		s.writeError(w, r, fmt.Errorf("%w: lookup: scan as of %d: replica at %d after waiting %v", argent.ErrTimeout, req.at, applied, req.wait))
		return
	}
	items, more, err := s.st.Scan(r.Context(), req.prefix, req.after, req.limit, req.at)
	if err != nil {
		setIndex(h, s.st.Applied())
		s.writeError(w, r, fmt.Errorf("lookup: scan %q after %q as of %d: %w", req.prefix, req.after, req.at, err))
		return
	}
	page := scanPage{Index: req.at, Items: make([]scanItem, 0, len(items)), More: more}
	size := 0
	for i := range items {
		it := &items[i]
		size += len(it.Key) + len(it.Value.Value)
		if i > 0 && size > s.cfg.MaxScanBytes {
			page.More = true
			break
		}
		page.Items = append(page.Items, scanItem{Key: it.Key, Value: it.Value.Value, ModIndex: it.ModIndex})
	}
	setIndex(h, req.at)
	s.writeJSON(w, r, http.StatusOK, page)
}

// Scan asks for a page of the keys with prefix that sort after after (from
// the first key with prefix when after is empty), at most limit of them,
// with their values as of index at, and whether more keys follow it. The
// page is the state at at exactly, whatever the replica's index: a replica
// that has not reached at waits a little for it, then refuses. A page may
// hold fewer than limit keys and still say more follow (a replica caps
// pages by count and by bytes); the next page starts after its last key.
//
// When ctx has a deadline, the replica is asked to wait for at at most
// half the time left (and at most its Config.ScanWait), so that its
// refusal comes back in time to ask another replica.
//
// The errors are those of Error, and ErrBehind (with
// argent.ErrUnavailable) from a replica that did not reach at in time, in
// an *Error whose Index is the replica's applied index.
func (c *Client) Scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error) {
	const op = "scan"
	switch {
	case limit < 1:
		return nil, false, c.fail(op, 0, fmt.Errorf("%w: scan limit %d", argent.ErrInvalid, limit))
	case len(prefix) > c.opts.Limits.MaxKey:
		return nil, false, c.fail(op, 0, fmt.Errorf("%w: prefix of %d bytes is longer than the key limit of %d", argent.ErrTooLarge, len(prefix), c.opts.Limits.MaxKey))
	case len(after) > c.opts.Limits.MaxKey:
		return nil, false, c.fail(op, 0, fmt.Errorf("%w: after of %d bytes is longer than the key limit of %d", argent.ErrTooLarge, len(after), c.opts.Limits.MaxKey))
	}
	q := url.Values{
		"prefix": {string(prefix)},
		"limit":  {strconv.Itoa(limit)},
		"at":     {strconv.FormatUint(uint64(at), 10)},
	}
	if len(after) > 0 {
		q.Set("after", string(after))
	}
	if d, ok := ctx.Deadline(); ok {
		wait := max(time.Until(d)/2, 0)
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10)+"ms")
	}
	resp, err := c.send(ctx, http.MethodGet, ScanPath, q, nil)
	if err != nil {
		return nil, false, c.fail(op, 0, err)
	}
	defer drainClose(resp.Body)
	x, err := headerIndex(resp.Header, apiwire.HeaderIndex)
	if err != nil {
		return nil, false, c.fail(op, 0, protocolErr("%v", err))
	}
	hasIndex := resp.Header.Get(apiwire.HeaderIndex) != ""
	if resp.StatusCode != http.StatusOK {
		e := readError(resp)
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return nil, false, c.fail(op, x, protocolErr("404: %v", e))
		case e.Code == apiwire.CodeTimeout && hasIndex && x < at:
			return nil, false, c.fail(op, x, fmt.Errorf("%w: %w: replica at %d, scan as of %d: %s", argent.ErrUnavailable, ErrBehind, x, at, e.Message))
		}
		return nil, false, c.fail(op, x, e)
	}
	if !hasIndex || x != at {
		return nil, false, c.fail(op, x, protocolErr("page with Argent-Index %q for a scan as of %d", resp.Header.Get(apiwire.HeaderIndex), at))
	}
	// A page holds at most MaxScanBytes (16 MiB by default) of keys and
	// values, and one more item, base64 in JSON: bound it by the batch
	// limit, as GetMany does, so a broken replica cannot fill memory.
	raw, err := readBody(resp, int64(c.opts.Limits.MaxBatch)*2+1<<20)
	if err != nil {
		return nil, false, c.fail(op, x, err)
	}
	var page scanPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, false, c.fail(op, x, protocolErr("decode page: %v", err))
	}
	items, err := pageItems(&page, prefix, after, limit, at)
	if err != nil {
		return nil, false, c.fail(op, x, err)
	}
	return items, page.More, nil
}

// pageItems checks a page against the scan it answers and returns its
// items: as of at, at most limit of them, in strictly increasing order,
// each with prefix and after after, with a mod index in [1, at]; a page
// that says more follow is not empty (the next one would start at the
// same place).
func pageItems(page *scanPage, prefix, after []byte, limit int, at argent.Index) ([]argent.Item, error) {
	switch {
	case page.Index != at:
		return nil, protocolErr("page as of %d for a scan as of %d", page.Index, at)
	case len(page.Items) > limit:
		return nil, protocolErr("%d items for a limit of %d", len(page.Items), limit)
	case page.More && len(page.Items) == 0:
		return nil, protocolErr("an empty page says more keys follow")
	}
	items := make([]argent.Item, len(page.Items))
	prev := after
	for i := range page.Items {
		it := &page.Items[i]
		switch {
		case !bytes.HasPrefix(it.Key, prefix):
			return nil, protocolErr("item %d, key %q, lacks the prefix %q", i, it.Key, prefix)
		case bytes.Compare(it.Key, prev) <= 0:
			return nil, protocolErr("item %d, key %q, does not sort after %q", i, it.Key, prev)
		case it.ModIndex == 0 || it.ModIndex > at:
			return nil, protocolErr("item %d has mod index %d at index %d", i, it.ModIndex, at)
		}
		prev = it.Key
		items[i] = argent.Item{Key: it.Key, Value: argent.Value{Value: it.Value, ModIndex: it.ModIndex}}
	}
	return items, nil
}
