package client

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// ReadOptions asks a read for a fresh enough state. The zero value reads the
// node's current state.
type ReadOptions struct {
	// MinIndex, when not 0, asks for a state at index MinIndex or later: the
	// node answers from such a state or fails with argent.ErrTimeout after
	// Wait; it never answers from an older state. Pass the index a write
	// returned to read your own write.
	MinIndex argent.Index
	// Wait is how long the node may wait for MinIndex: 0 means the node's
	// default (5 s); a negative Wait means not to wait at all.
	Wait time.Duration
}

func (o ReadOptions) query(q url.Values) url.Values {
	if o.MinIndex == 0 && o.Wait == 0 {
		return q
	}
	if q == nil {
		q = url.Values{}
	}
	if o.MinIndex != 0 {
		q.Set("min_index", strconv.FormatUint(uint64(o.MinIndex), 10))
	}
	switch {
	case o.Wait > 0:
		q.Set("wait", o.Wait.String())
	case o.Wait < 0:
		q.Set("wait", "0s")
	}
	return q
}

// Value is the answer to Get.
type Value struct {
	Value    []byte       // the key's value; nil when it is absent
	ModIndex argent.Index // index of the batch that last wrote the key; 0 when absent
	Index    argent.Index // index S of the state the read was served from (Argent-Index)
	Tier     string       // the layer that answered (Argent-Tier)
}

// Get reads key with GET /v1/kv/{key}. When the key is absent it returns an
// error wrapping argent.ErrNotFound (an *Error) together with a Value whose
// Index and Tier say which state was read. When the node cannot reach
// opts.MinIndex in time the error wraps argent.ErrTimeout.
func (c *Client) Get(ctx context.Context, key []byte, opts ReadOptions) (Value, error) {
	v, err := c.get(ctx, key, opts)
	if err != nil {
		return v, fmt.Errorf("client: get %q: %w", key, err)
	}
	return v, nil
}

func (c *Client) get(ctx context.Context, key []byte, opts ReadOptions) (Value, error) {
	if len(key) == 0 {
		return Value{}, fmt.Errorf("%w: empty key", argent.ErrInvalid)
	}
	req, err := c.newRequest(ctx, http.MethodGet, keyPath(key), opts.query(nil), nil, "")
	if err != nil {
		return Value{}, err
	}
	resp, err := c.do(req)
	if resp == nil {
		return Value{}, err
	}
	var v Value
	var herr error
	v.Tier = resp.Header.Get(HeaderTier)
	if v.Index, herr = parseIndex(resp.Header, HeaderIndex); herr == nil {
		v.ModIndex, herr = parseIndex(resp.Header, HeaderModIndex)
	}
	if err != nil {
		// A 404 still says which state it was read from.
		return v, err
	}
	defer drainClose(resp.Body)
	if herr != nil {
		return Value{}, herr
	}
	if v.Value, err = readBody(resp); err != nil {
		return Value{}, fmt.Errorf("read value: %w", err)
	}
	return v, nil
}

// readBody reads a whole value body. It is never nil, so a present empty
// value is []byte{}.
func readBody(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= argent.DefaultMaxValue {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if buf.Len() == 0 {
		return []byte{}, nil
	}
	return buf.Bytes(), nil
}

// MGet reads keys at one index with POST /v1/mget. It returns that index and
// one Item per key in the order of keys; an absent key has Absent set. Keys
// must be valid UTF-8 (see Keys in the package doc); others get an argent.ErrInvalid error
// before anything is sent.
func (c *Client) MGet(ctx context.Context, keys [][]byte, opts ReadOptions) (argent.Index, []Item, error) {
	in := MGetRequest{Keys: make([]string, len(keys))}
	for i, k := range keys {
		if err := apiwire.CheckJSONKey(k); err != nil {
			return 0, nil, fmt.Errorf("client: mget: %w", err)
		}
		in.Keys[i] = string(k)
	}
	var out MGetResponse
	if err := c.call(ctx, http.MethodPost, "/v1/mget", opts.query(nil), in, &out); err != nil {
		return 0, nil, fmt.Errorf("client: mget: %w", err)
	}
	return out.Index, out.Items, nil
}

// Page is one page of a scan.
type Page struct {
	Index argent.Index // index S of the state the page was read from
	Items []Item       // keys in order, with values and mod indexes
	Next  []byte       // pass as after for the next page; nil on the last page
}

// Scan reads the keys starting with prefix and greater than after (nil for
// the first page), at most limit of them (0 for the node's default), with
// GET /v1/kv?prefix=P&after=K&limit=L. Each page is read at one index; pass
// ReadOptions{MinIndex: first.Index} for later pages so that no page is
// older than the first.
func (c *Client) Scan(ctx context.Context, prefix, after []byte, limit int, opts ReadOptions) (Page, error) {
	return c.scan(ctx, prefix, after, limit, 0, opts)
}

// ScanAt is Scan read at index at exactly (GET /v1/kv?...&at=N): the node
// waits for at as for opts.MinIndex and answers from that state even when
// it has moved on, so that every page of a listing shows one state. When at
// is older than the node's history the error wraps argent.ErrCompacted;
// start again from a newer index.
func (c *Client) ScanAt(ctx context.Context, prefix, after []byte, limit int, at argent.Index, opts ReadOptions) (Page, error) {
	if at == 0 {
		return Page{}, fmt.Errorf("client: scan %q: %w: index 0", prefix, argent.ErrInvalid)
	}
	return c.scan(ctx, prefix, after, limit, at, opts)
}

func (c *Client) scan(ctx context.Context, prefix, after []byte, limit int, at argent.Index, opts ReadOptions) (Page, error) {
	q := url.Values{"prefix": {string(prefix)}}
	if at > 0 {
		q.Set("at", strconv.FormatUint(uint64(at), 10))
	}
	if len(after) > 0 {
		q.Set("after", string(after))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out ScanPage
	if err := c.call(ctx, http.MethodGet, "/v1/kv", opts.query(q), nil, &out); err != nil {
		return Page{}, fmt.Errorf("client: scan %q: %w", prefix, err)
	}
	p := Page{Index: out.Index, Items: out.Items}
	if out.Next != "" {
		p.Next = []byte(out.Next)
	}
	return p, nil
}

// Put sets key to value with PUT /v1/kv/{key} and returns the index of the
// batch once it is durable at the root.
func (c *Client) Put(ctx context.Context, key, value []byte) (argent.Index, error) {
	if value == nil {
		value = []byte{}
	}
	idx, err := c.write(ctx, http.MethodPut, key, value)
	if err != nil {
		return 0, fmt.Errorf("client: put %q: %w", key, err)
	}
	return idx, nil
}

// Delete removes key with DELETE /v1/kv/{key} and returns the index of the
// batch once it is durable at the root.
func (c *Client) Delete(ctx context.Context, key []byte) (argent.Index, error) {
	idx, err := c.write(ctx, http.MethodDelete, key, nil)
	if err != nil {
		return 0, fmt.Errorf("client: delete %q: %w", key, err)
	}
	return idx, nil
}

func (c *Client) write(ctx context.Context, method string, key, value []byte) (argent.Index, error) {
	if len(key) == 0 {
		return 0, fmt.Errorf("%w: empty key", argent.ErrInvalid)
	}
	req, err := c.newRequest(ctx, method, keyPath(key), nil, value, "application/octet-stream")
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	var out IndexResponse
	if err := decodeJSON(resp, &out); err != nil {
		return 0, err
	}
	return out.Index, nil
}

// Txn commits b atomically with POST /v1/txn and returns its index once it is
// durable at the root. When a condition fails nothing is written and the
// error is an *Error that unwraps to a *argent.ConditionError naming the key
// (errors.As) and to argent.ErrConditionFailed (errors.Is). Keys must be
// valid UTF-8 (see Keys in the package doc).
func (c *Client) Txn(ctx context.Context, b argent.Batch) (argent.Index, error) {
	in, err := NewTxnRequest(b)
	if err != nil {
		return 0, fmt.Errorf("client: txn: %w", err)
	}
	var out IndexResponse
	if err := c.call(ctx, http.MethodPost, "/v1/txn", nil, in, &out); err != nil {
		return 0, fmt.Errorf("client: txn: %w", err)
	}
	return out.Index, nil
}

// Status returns the node's status from GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out StatusResponse
	if err := c.call(ctx, http.MethodGet, "/v1/status", nil, nil, &out); err != nil {
		return StatusResponse{}, fmt.Errorf("client: status: %w", err)
	}
	return out, nil
}

// Trace returns the path of one read of key through the node's tiers
// (GET /v1/trace/{key}): on a proxy the window, cache, filter, the DC peer
// owning the key's shard and the replicas asked, each with its answer,
// index and latency; on a root or replica its own store.
func (c *Client) Trace(ctx context.Context, key []byte, opts ReadOptions) (Trace, error) {
	if len(key) == 0 {
		return Trace{}, fmt.Errorf("client: trace: %w: empty key", argent.ErrInvalid)
	}
	var out Trace
	path := "/v1/trace/" + strings.TrimPrefix(keyPath(key), "/v1/kv/")
	if err := c.call(ctx, http.MethodGet, path, opts.query(nil), nil, &out); err != nil {
		return Trace{}, fmt.Errorf("client: trace %q: %w", key, err)
	}
	return out, nil
}
