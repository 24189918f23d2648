package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
)

// Client talks to argent nodes over their HTTP API. It is safe for
// concurrent use. Writes sent to a node other than the root are forwarded or
// redirected (307) there by the node; the client follows redirects.
//
// A Client made with several addresses fails over: see New.
type Client struct {
	base      string     // first address: scheme://host[:port][/path], without a trailing slash
	bases     []*url.URL // every address, parsed, in the order given
	cur       atomic.Int32
	hc        *http.Client
	userAgent string
	tls       *tls.Config // WithTLSConfig's, until New has made hc with it
	auth      string      // the Authorization header value; "" for none
}

// Option configures a Client made by New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc. The default is a
// client shared by every Client of the process, made by NewHTTPClient. A
// Timeout on hc also limits watches; prefer contexts.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTLSConfig makes the Client talk to a node that serves TLS: an address
// without a scheme means https, and requests go through a client like
// NewHTTPClient's with cfg (its RootCAs name the node's CA; a Certificate
// or GetClientCertificate presents a client certificate). A WithHTTPClient
// option takes precedence.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tls = cfg }
}

// WithUserAgent sets the User-Agent header of every request. The default is
// DefaultUserAgent.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithToken makes the Client send token as a bearer token
// (Authorization: Bearer TOKEN) with every request, for nodes that check
// tokens. Without it no Authorization header is sent. A node answers a
// missing or unknown token with an error wrapping argent.ErrUnauthorized,
// and a token without the right on a key with one wrapping
// argent.ErrForbidden.
func WithToken(token string) Option {
	return func(c *Client) {
		c.auth = ""
		if token != "" {
			c.auth = "Bearer " + token
		}
	}
}

// DefaultUserAgent is the User-Agent a Client sends unless WithUserAgent says
// otherwise.
const DefaultUserAgent = "argent-client"

// NewHTTPClient returns an *http.Client tuned for many concurrent requests to
// few nodes: it keeps up to 256 idle connections per host (net/http keeps 2),
// 1024 in all, for 90 s. It has no overall Timeout, so watches can run for as
// long as their context allows.
func NewHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t}
}

// sharedHTTPClient is the default of every Client, so that they share one
// connection pool.
var sharedHTTPClient = sync.OnceValue(NewHTTPClient)

// New returns a Client for the node at addr: "host:port" (http is assumed),
// or a URL "http://host:port" or "https://host:port", optionally with a path
// prefix under which the API is served. It returns an argent.ErrInvalid error
// for a malformed address.
//
// addr may list several nodes separated by commas ("a:7401,b:7401"); the
// Client then fails over, as NewFailover describes.
func New(addr string, opts ...Option) (*Client, error) {
	return NewFailover(strings.Split(addr, ","), opts...)
}

// NewFailover returns a Client for several nodes, each an address as New
// takes. A request goes to the node that answered last (the first at the
// start) and moves on to the next node, in order, when that node cannot
// answer it:
//   - the connection failed: for a read (get, mget, scan, status, watch)
//     whatever the cause; for a write only when no connection was made, so
//     that a write the node may have received is never sent twice;
//   - the node answered 5xx not_ready (it has no state yet).
//
// Any other answer, a 4xx above all, is the answer: a key absent at one node
// is not looked for at another. When every node failed, the error is the
// last node's.
func NewFailover(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("client: %w: no address", argent.ErrInvalid)
	}
	c := &Client{userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	for _, addr := range addrs {
		addr = strings.TrimSpace(addr)
		if c.tls != nil && !strings.Contains(addr, "://") {
			addr = "https://" + addr
		}
		base, err := ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("client: address %q: %w", addr, err)
		}
		u, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("client: address %q: %w: %v", addr, argent.ErrInvalid, err)
		}
		if c.base == "" {
			c.base = base
		}
		c.bases = append(c.bases, u)
	}
	switch {
	case c.hc != nil:
	case c.tls != nil:
		c.hc = NewHTTPClient()
		c.hc.Transport.(*http.Transport).TLSClientConfig = c.tls
	default:
		c.hc = sharedHTTPClient()
	}
	return c, nil
}

// ParseAddr turns a node's address, host:port or http(s)://host:port, into
// the base URL requests to it start with, such as "http://127.0.0.1:7400".
// Any other form is an error wrapping argent.ErrInvalid.
func ParseAddr(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("%w: empty address", argent.ErrInvalid)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", argent.ErrInvalid, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: scheme %q is not http or https", argent.ErrInvalid, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%w: no host", argent.ErrInvalid)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: address has a query or fragment", argent.ErrInvalid)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Addr returns the base URL the Client sends requests to, for example
// "http://127.0.0.1:7400": with several addresses, the one that answered
// last.
func (c *Client) Addr() string {
	if len(c.bases) < 2 {
		return c.base
	}
	return strings.TrimSuffix(c.bases[c.cur.Load()].String(), "/")
}

// Addrs returns the base URLs of every node the Client may send requests
// to, in the order given to New.
func (c *Client) Addrs() []string {
	out := make([]string, len(c.bases))
	for i, u := range c.bases {
		out[i] = strings.TrimSuffix(u.String(), "/")
	}
	return out
}

// newRequest builds a request for path (already escaped) and query. A
// non-nil body is sent with contentType.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) (*http.Request, error) {
	u := c.base + path
	if len(c.bases) > 1 {
		u = c.Addr() + path
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var r io.Reader
	if body != nil {
		// A *bytes.Reader lets net/http replay the body on a 307 redirect.
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return req, nil
}

// do sends req, failing over to the next nodes as New says when the Client
// has several. On a 2xx answer it returns the response with its body to
// read and close. On any other answer it returns the response, its body
// consumed and closed, and an *Error; on a transport error, a nil response.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	if len(c.bases) < 2 {
		return c.doOne(req)
	}
	n := len(c.bases)
	from := c.baseOf(req.URL)
	var resp *http.Response
	var err error
	for try := range n {
		i := (from + try) % n
		r := req
		if try > 0 {
			if r, err = c.retarget(req, from, i); err != nil {
				return nil, err
			}
		}
		resp, err = c.doOne(r)
		if err == nil || !shouldFailOver(r, resp, err) {
			if err == nil || resp != nil {
				c.cur.Store(int32(i))
			}
			return resp, err
		}
	}
	return resp, err
}

// baseOf returns the index of the address u was made for (by scheme and
// host), 0 if none.
func (c *Client) baseOf(u *url.URL) int {
	for i, b := range c.bases {
		if b.Scheme == u.Scheme && b.Host == u.Host {
			return i
		}
	}
	return 0
}

// retarget returns a copy of req, made for address from, sent to address to
// instead: same method, headers, path and query, and a fresh copy of the
// body.
func (c *Client) retarget(req *http.Request, from, to int) (*http.Request, error) {
	r := req.Clone(req.Context())
	fb, tb := c.bases[from], c.bases[to]
	u := *req.URL
	u.Scheme, u.Host = tb.Scheme, tb.Host
	u.Path = tb.Path + strings.TrimPrefix(req.URL.Path, fb.Path)
	if req.URL.RawPath != "" {
		u.RawPath = tb.EscapedPath() + strings.TrimPrefix(req.URL.RawPath, fb.EscapedPath())
	}
	r.URL, r.Host = &u, ""
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

// shouldFailOver says whether a request that failed at one node goes on to
// the next (see NewFailover).
func shouldFailOver(req *http.Request, resp *http.Response, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if resp != nil {
		var e *Error
		return resp.StatusCode >= 500 && errors.As(err, &e) && e.Code == CodeNotReady
	}
	if req.Method == http.MethodGet || strings.HasSuffix(req.URL.Path, "/v1/mget") {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// doOne sends req to the node it names; see do.
func (c *Client) doOne(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	e := readError(resp)
	drainClose(resp.Body)
	return resp, e
}

// call sends a request with an optional JSON body and decodes a JSON answer
// into out.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := c.newRequest(ctx, method, path, q, body, "application/json")
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	return decodeJSON(resp, out)
}

// decodeJSON decodes the body of resp into out and closes it.
func decodeJSON(resp *http.Response, out any) error {
	defer drainClose(resp.Body)
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// drainClose reads a little of what is left of body, so the connection can
// be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// keyPath returns the escaped path of key under /v1/kv/. Every byte but
// A-Z a-z 0-9 - . _ ~ is percent-encoded, "/" included, so a key is one path
// segment whatever it holds; the keys "." and ".." are encoded whole so that
// no one takes them for dot segments.
func keyPath(key []byte) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len("/v1/kv/") + 3*len(key))
	b.WriteString("/v1/kv/")
	dots := string(key) == "." || string(key) == ".."
	for _, c := range key {
		if !dots && unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// parseIndex parses an index header; an absent header is 0.
func parseIndex(h http.Header, name string) (argent.Index, error) {
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
