package lookup

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/negfilter"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// ClientOptions configures a Client. The zero value of each field means its
// default; a nil *ClientOptions means all defaults.
type ClientOptions struct {
	// HTTPClient sends the requests. Default: a new client.NewHTTPClient()
	// per Client; a proxy should make one and pass it to the Clients of all
	// its replicas, so they share one pool of kept-alive connections.
	HTTPClient *http.Client
	// Dataset, when set, is sent as Argent-Dataset: a replica of another
	// dataset refuses the request instead of answering from the wrong data.
	Dataset argent.DatasetID
	// Limits bounds what is asked and accepted: keys up to MaxKey bytes,
	// values up to MaxValue. Default: argent's defaults.
	Limits argent.Limits
	// MaxFilterBytes bounds the size of a filter accepted. Default 1 GiB.
	MaxFilterBytes int64
	// UserAgent is sent with every request. Default "argent-lookup".
	UserAgent string
	// OnCorrupt, if set, is called for every answer refused because it was
	// damaged in transit (see package wirecheck); the request then fails
	// as if the connection broke.
	OnCorrupt func(req *http.Request, err error)
}

// DefaultMaxFilterBytes is the default of ClientOptions.MaxFilterBytes.
const DefaultMaxFilterBytes = 1 << 30

// Client asks one replica for keys as of an index and for its filter. It is
// safe for concurrent use.
type Client struct {
	base string // scheme://host:port, no trailing slash
	hc   *http.Client
	opts ClientOptions
}

// NewClient returns a Client of the replica at addr: "host:port" (http is
// assumed) or "http://host:port" / "https://host:port". A malformed address
// gives an argent.ErrInvalid error.
func NewClient(addr string, opts *ClientOptions) (*Client, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	o.Limits = o.Limits.WithDefaults()
	if o.MaxFilterBytes <= 0 {
		o.MaxFilterBytes = DefaultMaxFilterBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = "argent-lookup"
	}
	base, err := client.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("lookup: address %q: %w", addr, err)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = client.NewHTTPClient()
	}
	// Every answer is checksummed end to end: a proxy caches what it gets.
	maxBody := max(o.MaxFilterBytes, 2*int64(o.Limits.MaxBatch)+1<<20)
	hc = wirecheck.Client(hc, wirecheck.Transport{MaxBody: maxBody, OnCorrupt: o.OnCorrupt})
	return &Client{base: base, hc: hc, opts: o}, nil
}

// Addr returns the base URL the Client sends to.
func (c *Client) Addr() string { return c.base }

// Result is a key's value as of an index: the Item a read at Index gives,
// or that the key is absent there.
type Result struct {
	// Item is the key and, unless Absent, its value and mod index (the zero
	// Value when Absent).
	argent.Item
	// Index is the state the answer is from: the index asked for when the
	// replica had reached it, else the replica's applied index, which is
	// lower. Only in the first case is the Result the value at the index
	// asked for; in the second the caller must prove that nothing changed
	// the key in (Index, asked] before using it as such.
	Index  argent.Index
	Absent bool // the key does not exist at Index
}

// Get asks for key as of index at. See Result for what the answer means and
// Error for the errors.
func (c *Client) Get(ctx context.Context, key []byte, at argent.Index) (Result, error) {
	const op = "get"
	if err := c.opts.Limits.CheckKey(key); err != nil {
		return Result{}, c.fail(op, 0, err)
	}
	q := url.Values{"key": {string(key)}, "at": {strconv.FormatUint(uint64(at), 10)}}
	resp, err := c.send(ctx, http.MethodGet, LookupPath, q, nil)
	if err != nil {
		return Result{}, c.fail(op, 0, err)
	}
	defer drainClose(resp.Body)
	x, err := answerIndex(resp, at)
	if err != nil {
		return Result{}, c.fail(op, 0, err)
	}
	r := Result{Item: argent.Item{Key: key}, Index: x}
	switch resp.StatusCode {
	case http.StatusOK:
		mod, err := headerIndex(resp.Header, apiwire.HeaderModIndex)
		if err != nil || mod == 0 || mod > x {
			return Result{}, c.fail(op, x, protocolErr("mod index %q with Argent-Index %d", resp.Header.Get(apiwire.HeaderModIndex), x))
		}
		r.ModIndex = mod
		if r.Value.Value, err = readBody(resp, int64(c.opts.Limits.MaxValue)); err != nil {
			return Result{}, c.fail(op, x, err)
		}
		return r, nil
	case http.StatusNotFound:
		e := readError(resp)
		if e.Code != apiwire.CodeNotFound || resp.Header.Get(apiwire.HeaderIndex) == "" {
			// A 404 from something that is not this API (an older node
			// without the route, a proxy in front) proves nothing.
			return Result{}, c.fail(op, x, protocolErr("404 without a not_found body: %v", e))
		}
		r.Absent = true
		return r, nil
	}
	return Result{}, c.fail(op, x, readError(resp))
}

// GetMany asks for every key as of index at, in one request; the replica
// reads them all at one index, which every Result carries (see Result). The
// results are in the order of keys. Keys must be valid UTF-8 (they travel
// as JSON strings); use Get for others.
func (c *Client) GetMany(ctx context.Context, keys [][]byte, at argent.Index) ([]Result, error) {
	const op = "get many"
	req := apiwire.MGetRequest{Keys: make([]string, len(keys))}
	for i, k := range keys {
		if err := c.opts.Limits.CheckKey(k); err != nil {
			return nil, c.fail(op, 0, fmt.Errorf("key %d: %w", i, err))
		}
		if !utf8.Valid(k) {
			return nil, c.fail(op, 0, fmt.Errorf("%w: key %d (%q) is not valid UTF-8, which the JSON form needs; use Get", argent.ErrInvalid, i, k))
		}
		req.Keys[i] = string(k)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, c.fail(op, 0, fmt.Errorf("encode keys: %w", err))
	}
	q := url.Values{"at": {strconv.FormatUint(uint64(at), 10)}}
	resp, err := c.send(ctx, http.MethodPost, LookupPath, q, body)
	if err != nil {
		return nil, c.fail(op, 0, err)
	}
	defer drainClose(resp.Body)
	x, err := answerIndex(resp, at)
	if err != nil {
		return nil, c.fail(op, 0, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.fail(op, x, answerError(resp))
	}
	// An answer holds at most every value, each up to MaxValue and base64
	// in JSON; bound it by the batch limit, which bounds a state's values
	// only loosely but keeps a broken replica from filling memory.
	raw, err := readBody(resp, int64(c.opts.Limits.MaxBatch)*2+int64(len(body))*2+1<<20)
	if err != nil {
		return nil, c.fail(op, x, err)
	}
	var out apiwire.MGetResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, c.fail(op, x, protocolErr("decode answer: %v", err))
	}
	if out.Index != x {
		return nil, c.fail(op, x, protocolErr("answer index %d, header %d", out.Index, x))
	}
	if len(out.Items) != len(keys) {
		return nil, c.fail(op, x, protocolErr("%d items for %d keys", len(out.Items), len(keys)))
	}
	res := make([]Result, len(keys))
	for i, it := range out.Items {
		switch {
		case it.Key != req.Keys[i]:
			return nil, c.fail(op, x, protocolErr("item %d is key %q, asked for %q", i, it.Key, req.Keys[i]))
		case it.Absent && (it.ModIndex != 0 || len(it.Value) != 0):
			return nil, c.fail(op, x, protocolErr("item %d is absent with a value", i))
		case !it.Absent && (it.ModIndex == 0 || it.ModIndex > x):
			return nil, c.fail(op, x, protocolErr("item %d has mod index %d at index %d", i, it.ModIndex, x))
		}
		res[i] = Result{Item: argent.Item{Key: keys[i], Value: argent.Value{Value: it.Value, ModIndex: it.ModIndex}}, Index: x, Absent: it.Absent}
	}
	return res, nil
}

// Filter fetches the replica's negative-lookup filter and the index X it
// stands for (every key present at X is in it). minIndex asks the replica
// not to serve a filter it built earlier than minIndex when it has reached
// minIndex itself; 0 takes any recent one. See Server.Filter for how a proxy
// at index P may use a filter at X.
func (c *Client) Filter(ctx context.Context, minIndex argent.Index) (*negfilter.Filter, argent.State, error) {
	const op = "filter"
	var q url.Values
	if minIndex > 0 {
		q = url.Values{"min_index": {strconv.FormatUint(uint64(minIndex), 10)}}
	}
	resp, err := c.send(ctx, http.MethodGet, FilterPath, q, nil)
	if err != nil {
		return nil, argent.State{}, c.fail(op, 0, err)
	}
	defer drainClose(resp.Body)
	x, err := headerIndex(resp.Header, apiwire.HeaderIndex)
	if err != nil {
		return nil, argent.State{}, c.fail(op, 0, protocolErr("%v", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, argent.State{}, c.fail(op, x, answerError(resp))
	}
	if resp.Header.Get(apiwire.HeaderIndex) == "" {
		return nil, argent.State{}, c.fail(op, 0, protocolErr("filter without Argent-Index"))
	}
	raw, err := readBody(resp, c.opts.MaxFilterBytes)
	if err != nil {
		return nil, argent.State{}, c.fail(op, x, err)
	}
	f, err := negfilter.Decode(raw)
	if err != nil {
		return nil, argent.State{}, c.fail(op, x, protocolErr("%w", err))
	}
	if f.Index() != x {
		return nil, argent.State{}, c.fail(op, x, protocolErr("filter stands for index %d, header says %d", f.Index(), x))
	}
	st := argent.State{Index: x}
	if st.Time, err = strconv.ParseInt(resp.Header.Get(HeaderTime), 10, 64); err != nil {
		return nil, argent.State{}, c.fail(op, x, protocolErr("filter with a bad %s header: %v", HeaderTime, err))
	}
	chain, err := hex.DecodeString(resp.Header.Get(HeaderChain))
	if err != nil || len(chain) != len(st.Chain) {
		return nil, argent.State{}, c.fail(op, x, protocolErr("filter with a bad %s header", HeaderChain))
	}
	copy(st.Chain[:], chain)
	return f, st, nil
}

// send sends a request. Transport errors are marked argent.ErrUnavailable
// unless ctx ended.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if !c.opts.Dataset.IsZero() {
		req.Header.Set(HeaderDataset, c.opts.Dataset.String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", argent.ErrUnavailable, err)
	}
	return resp, nil
}

// fail wraps err in an *Error.
func (c *Client) fail(op string, index argent.Index, err error) error {
	return &Error{Op: op, Addr: c.base, Index: index, Err: err}
}

// answerIndex returns the Argent-Index of a lookup answer and checks it
// against the index asked for: a value "as of at" can never come from a
// state past at. Error answers (other than 404) may lack it or name the
// replica's applied index, which is then not checked.
func answerIndex(resp *http.Response, at argent.Index) (argent.Index, error) {
	x, err := headerIndex(resp.Header, apiwire.HeaderIndex)
	if err != nil {
		return 0, protocolErr("%v", err)
	}
	ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound
	if !ok {
		return x, nil
	}
	if resp.Header.Get(apiwire.HeaderIndex) == "" {
		return 0, protocolErr("%d answer without Argent-Index", resp.StatusCode)
	}
	if x > at {
		return 0, protocolErr("answer as of %d for a lookup as of %d", x, at)
	}
	return x, nil
}

// headerIndex parses an index header; an absent header is 0.
func headerIndex(h http.Header, name string) (argent.Index, error) {
	s := h.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s header %q", name, s)
	}
	return argent.Index(n), nil
}

// readBody reads a whole body of at most limit bytes. A cut body is marked
// argent.ErrUnavailable (the connection broke); a longer one ErrProtocol.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, protocolErr("body of %d bytes is over the limit of %d", resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read answer: %w", argent.ErrUnavailable, err)
	}
	if int64(len(b)) > limit {
		return nil, protocolErr("body is over the limit of %d bytes", limit)
	}
	return b, nil
}

// answerError returns the error of a non-2xx answer to a request that has
// no "absent" answer: there a 404 means a node without this route (an older
// build, a wrong address), not an absent key, and must not read as
// argent.ErrNotFound.
func answerError(resp *http.Response) error {
	e := readError(resp)
	if resp.StatusCode == http.StatusNotFound {
		return protocolErr("404: %v", e)
	}
	return e
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readError reads the JSON error body of a non-2xx answer into a
// *apiwire.Error; an answer without one gets a code from its status.
func readError(resp *http.Response) *apiwire.Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body apiwire.ErrorBody
	if err := json.Unmarshal(b, &body); err == nil && body.Error.Code != "" {
		return &apiwire.Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 256 {
		msg = msg[:256] + "..."
	}
	return &apiwire.Error{Status: resp.StatusCode, Code: codeForStatus(resp.StatusCode), Message: msg}
}

// codeForStatus guesses the code of an answer without an error body.
func codeForStatus(status int) string {
	for _, code := range []string{apiwire.CodeInvalid, apiwire.CodeNotFound, apiwire.CodeTooLarge, apiwire.CodeCompacted, apiwire.CodeUnavailable, apiwire.CodeTimeout} {
		if apiwire.HTTPStatus(code) == status {
			return code
		}
	}
	if status == http.StatusBadGateway {
		return apiwire.CodeUnavailable
	}
	return apiwire.CodeInternal
}

// drainClose reads a little of what is left of body, so the connection can
// be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
