package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/argent-kv/argent"
)

// Client talks to one argent node over its HTTP API. It is safe for
// concurrent use. Writes sent to a node other than the root are forwarded or
// redirected (307) there by the node; the client follows redirects.
type Client struct {
	base      string // scheme://host[:port][/path], without a trailing slash
	hc        *http.Client
	userAgent string
	auth      string // the Authorization header value; "" for none
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
func New(addr string, opts ...Option) (*Client, error) {
	base, err := ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	c := &Client{base: base, userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
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
// "http://127.0.0.1:7400".
func (c *Client) Addr() string { return c.base }

// newRequest builds a request for path (already escaped) and query. A
// non-nil body is sent with contentType.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) (*http.Request, error) {
	u := c.base + path
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

// do sends req. On a 2xx answer it returns the response with its body to
// read and close. On any other answer it returns the response, its body
// consumed and closed, and an *Error; on a transport error, a nil response.
func (c *Client) do(req *http.Request) (*http.Response, error) {
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
