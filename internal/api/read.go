package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
)

// setIndex sets Argent-Index.
func setIndex(h http.Header, at argent.Index) {
	h[apiwire.HeaderIndex] = []string{strconv.FormatUint(uint64(at), 10)}
}

// setValueHeaders sets the headers of a value answer, Argent-Index,
// Argent-Mod-Index and Content-Length, in two allocations whatever the size
// of the numbers.
func setValueHeaders(h http.Header, at, mod argent.Index, n int) {
	var buf [64]byte
	b := strconv.AppendUint(buf[:0], uint64(at), 10)
	i := len(b)
	b = strconv.AppendUint(b, uint64(mod), 10)
	j := len(b)
	b = strconv.AppendInt(b, int64(n), 10)
	str := string(b)
	vals := []string{str[:i], str[i:j], str[j:]}
	h[apiwire.HeaderIndex] = vals[0:1:1]
	h[apiwire.HeaderModIndex] = vals[1:2:2]
	h["Content-Length"] = vals[2:3:3]
}

// serveGet answers GET /v1/kv/{key}: the raw value at index S, the published
// applied index once min_index is reached.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, key string) int {
	h := w.Header()
	h[apiwire.HeaderTier] = s.tierValue()
	kb := []byte(key)
	if err := s.b.Limits().CheckKey(kb); err != nil {
		return s.writeError(w, r, err)
	}
	if tok := s.token(r); !tok.Allowed(kb, auth.Read) {
		return s.forbid(w, r, tok, auth.Read, kb)
	}
	q, err := s.parseReadQuery(r.URL.RawQuery)
	if err != nil {
		return s.writeError(w, r, err)
	}
	at, err := s.readIndex(r, q)
	if err != nil {
		setIndex(h, at)
		return s.writeError(w, r, err)
	}
	st := s.b.Reader()
	ctx := r.Context()
	v, tier, err := getTier(ctx, st, kb, at)
	if errors.Is(err, argent.ErrCompacted) {
		// A trim moved the horizon past at while the read ran; the newer
		// applied index is still >= min_index.
		at = st.Applied()
		v, tier, err = getTier(ctx, st, kb, at)
	}
	if tier != "" {
		h[apiwire.HeaderTier] = []string{tier}
	}
	if err != nil {
		setIndex(h, at)
		return s.writeError(w, r, err)
	}
	setValueHeaders(h, at, v.ModIndex, len(v.Value))
	h["Content-Type"] = octetType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(v.Value)
	return http.StatusOK
}

// getTier reads key at index at, and names the tier that answered when
// the Reader has several ("" otherwise: Backend.Tier answered).
func getTier(ctx context.Context, r Reader, key []byte, at argent.Index) (argent.Value, string, error) {
	if tr, ok := r.(TierReader); ok {
		return tr.GetTier(ctx, key, at)
	}
	v, err := r.Get(ctx, key, at)
	return v, "", err
}

// scanLimit parses limit: absent or 0 is the default, larger than the
// maximum is cut to it.
func (s *Server) scanLimit(raw string) (int, error) {
	n := 0
	v, ok, err := queryParam(raw, "limit")
	if err != nil {
		return 0, err
	}
	if ok && v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return 0, invalidf("limit=%q is not a count", v)
		}
	}
	if n == 0 {
		n = s.opts.DefaultScanLimit
	}
	return min(n, s.opts.MaxScanLimit), nil
}

// serveScan answers GET /v1/kv?prefix=P&after=K&limit=L[&at=N] with one
// page read at one index.
func (s *Server) serveScan(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	h[apiwire.HeaderTier] = s.tierValue()
	raw := r.URL.RawQuery
	prefix, _, err := queryParam(raw, "prefix")
	if err != nil {
		return s.writeError(w, r, err)
	}
	after, _, err := queryParam(raw, "after")
	if err != nil {
		return s.writeError(w, r, err)
	}
	limit, err := s.scanLimit(raw)
	if err != nil {
		return s.writeError(w, r, err)
	}
	q, err := s.parseReadQuery(raw)
	if err != nil {
		return s.writeError(w, r, err)
	}
	// at=N pins the page to index N exactly (waiting for it like
	// min_index), so that every page of a long listing is read at one
	// index; N older than the node's history is 410 compacted.
	pin, err := queryIndex(raw, "at")
	if err != nil {
		return s.writeError(w, r, err)
	}
	q.minIndex = max(q.minIndex, pin)
	at, err := s.readIndex(r, q)
	if err != nil {
		setIndex(h, at)
		return s.writeError(w, r, err)
	}
	if pin > 0 {
		at = pin
	}
	st := s.b.Reader()
	// A token reads only its part of the prefix: the scan walks those
	// ranges rather than refusing a prefix wider than its rights.
	ranges := s.token(r).ReadRanges([]byte(prefix))
	items, more, err := ScanRanges(r.Context(), st, ranges, []byte(after), limit, at)
	if errors.Is(err, argent.ErrCompacted) && pin == 0 {
		at = st.Applied()
		items, more, err = ScanRanges(r.Context(), st, ranges, []byte(after), limit, at)
	}
	setIndex(h, at)
	if err != nil {
		return s.writeError(w, r, err)
	}
	page := apiwire.ScanPage{Index: at, Items: make([]apiwire.Item, len(items))}
	for i := range items {
		page.Items[i] = apiwire.NewItem(items[i])
	}
	if more && len(items) > 0 {
		page.Next = page.Items[len(items)-1].Key
	}
	return writeBody(w, http.StatusOK, jsonType, appendItemsJSON(nil, page.Index, page.Items, page.Next))
}

// jsonBodyLimit bounds a JSON request body: a batch of MaxBatch bytes grows
// by 4/3 in base64, and the JSON around keys and values adds more, so allow
// 3/2 of MaxBatch plus 1 MiB.
func jsonBodyLimit(l argent.Limits) int64 {
	return int64(l.MaxBatch)*3/2 + 1<<20
}

// DecodeJSON decodes one JSON value from body into v, refusing unknown
// fields and trailing data. A body over its MaxBytesReader limit gives an
// argent.ErrTooLarge error, bad JSON an argent.ErrInvalid one. The node's
// other JSON endpoints (internal/lookup) decode with it too.
func DecodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = terr
			if err == nil {
				err = errors.New("data after the JSON value")
			}
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: body is larger than the limit of %d bytes", argent.ErrTooLarge, mbe.Limit)
	case err == io.EOF:
		return invalidf("empty body")
	}
	return invalidf("body: %v", err)
}

// serveMGet answers POST /v1/mget: every key read at one index.
func (s *Server) serveMGet(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	h[apiwire.HeaderTier] = s.tierValue()
	q, err := s.parseReadQuery(r.URL.RawQuery)
	if err != nil {
		return s.writeError(w, r, err)
	}
	limits := s.b.Limits().WithDefaults()
	req, err := readMGetRequest(w, r, jsonBodyLimit(limits))
	if err != nil {
		return s.writeError(w, r, err)
	}
	if len(req.Keys) > s.opts.MaxMGetKeys {
		return s.writeError(w, r, fmt.Errorf("%w: %d keys, more than the limit of %d", argent.ErrTooLarge, len(req.Keys), s.opts.MaxMGetKeys))
	}
	keys := make([][]byte, len(req.Keys))
	tok := s.token(r)
	for i, k := range req.Keys {
		keys[i] = []byte(k)
		if err := limits.CheckKey(keys[i]); err != nil {
			return s.writeError(w, r, fmt.Errorf("key %d: %w", i, err))
		}
		if !tok.Allowed(keys[i], auth.Read) {
			return s.forbid(w, r, tok, auth.Read, keys[i])
		}
	}
	at, err := s.readIndex(r, q)
	if err != nil {
		setIndex(h, at)
		return s.writeError(w, r, err)
	}
	st := s.b.Reader()
	out := apiwire.MGetResponse{Items: make([]apiwire.Item, len(keys))}
	err = ReadItems(r.Context(), st, keys, req.Keys, at, out.Items)
	if errors.Is(err, argent.ErrCompacted) {
		at = st.Applied()
		err = ReadItems(r.Context(), st, keys, req.Keys, at, out.Items)
	}
	setIndex(h, at)
	if err != nil {
		return s.writeError(w, r, err)
	}
	return writeBody(w, http.StatusOK, jsonType, appendItemsJSON(nil, at, out.Items, ""))
}

// readMGetRequest reads the body of an mget, parsing the plain form itself
// and anything else with DecodeJSON.
func readMGetRequest(w http.ResponseWriter, r *http.Request, limit int64) (apiwire.MGetRequest, error) {
	return readJSONRequest(w, r, limit, func(b []byte) (apiwire.MGetRequest, bool) {
		keys, ok := parseKeysJSON(b)
		return apiwire.MGetRequest{Keys: keys}, ok
	})
}

// readJSONRequest reads a request body of at most limit bytes whole and
// decodes it into a T: with fast when fast takes it (the plain form the
// clients send), else with DecodeJSON, so that every body gets
// encoding/json's answer.
func readJSONRequest[T any](w http.ResponseWriter, r *http.Request, limit int64, fast func([]byte) (T, bool)) (T, error) {
	var req T
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		if isMaxBytes(err) {
			return req, DecodeJSON(errReader{err}, &req)
		}
		return req, invalidf("read body: %v", err)
	}
	if req, ok := fast(body); ok {
		return req, nil
	}
	return req, DecodeJSON(bytes.NewReader(body), &req)
}

// readBody reads a request body whole, in one allocation when its length
// is known (io.ReadAll would copy a bulk load's body of megabytes as it
// grows its buffer).
func readBody(body io.Reader, n, limit int64) ([]byte, error) {
	if n < 0 || n > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// ReadItems reads every key at index at into items, as an mget answers:
// items[i] names names[i] and holds keys[i]'s value, or says it is absent.
// A Reader that is a ManyReader reads them together. The reads stop when
// ctx ends.
func ReadItems(ctx context.Context, st Reader, keys [][]byte, names []string, at argent.Index, items []apiwire.Item) error {
	if mr, ok := st.(ManyReader); ok {
		vals, found, err := mr.GetMany(ctx, keys, at)
		if err != nil {
			return err
		}
		for i, v := range vals {
			if found[i] {
				items[i] = apiwire.Item{Key: names[i], Value: v.Value, ModIndex: v.ModIndex}
			} else {
				items[i] = apiwire.Item{Key: names[i], Absent: true}
			}
		}
		return nil
	}
	for i, k := range keys {
		v, err := st.Get(ctx, k, at)
		switch {
		case err == nil:
			items[i] = apiwire.Item{Key: names[i], Value: v.Value, ModIndex: v.ModIndex}
		case errors.Is(err, argent.ErrNotFound):
			items[i] = apiwire.Item{Key: names[i], Absent: true}
		default:
			return err
		}
	}
	return nil
}
