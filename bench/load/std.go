package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// stdConn is the net/http client, for comparison with rawConn: its own
// Transport keeps one keep-alive connection, and one Request is reused for
// every call (net/http allows that once the previous Body is closed).
type stdConn struct {
	mu struct {
		sync.Mutex
		nc       net.Conn  // the Transport's connection, last dialled
		deadline time.Time // see SetDeadline
	}
	cl   *http.Client
	tr   *http.Transport
	req  *http.Request
	body *bytes.Reader
	rc   io.ReadCloser // nopCloser{body}, made once
	kbuf []byte
	mbuf []byte
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func newStdConn(addr string, conns int) *stdConn {
	c := &stdConn{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, a)
			if err == nil {
				c.mu.Lock()
				c.mu.nc = nc
				_ = nc.SetDeadline(c.mu.deadline)
				c.mu.Unlock()
			}
			return nc, err
		},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     1, // this goroutine's own connection
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Scheme: "http", Host: addr},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Host:       addr,
	}
	c.cl, c.tr, c.req, c.body = &http.Client{Transport: tr}, tr, req, bytes.NewReader(nil)
	c.rc = nopCloser{c.body}
	return c
}

// SetDeadline bounds the I/O of this and later connections by t.
func (c *stdConn) SetDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.deadline = t
	if c.mu.nc != nil {
		_ = c.mu.nc.SetDeadline(t)
	}
}

func (c *stdConn) path(key int) string {
	c.kbuf = append(c.kbuf[:0], "/v1/kv/"+keyPrefix+"00000000"...)
	putKey(c.kbuf[len(c.kbuf)-8:], key)
	return string(c.kbuf)
}

// Get sends GET /v1/kv/bench/key/N.
func (c *stdConn) Get(key int) (int, int, error) {
	c.req.Method = http.MethodGet
	c.req.URL.Path = c.path(key)
	c.req.Body, c.req.ContentLength = nil, 0
	delete(c.req.Header, "Content-Type")
	return c.do()
}

// Put sends PUT /v1/kv/bench/key/N with value as the body.
func (c *stdConn) Put(key int, value []byte) (int, int, error) {
	c.req.Method = http.MethodPut
	c.req.URL.Path = c.path(key)
	c.body.Reset(value)
	c.req.Body, c.req.ContentLength = c.rc, int64(len(value))
	return c.do()
}

// MGet sends POST /v1/mget for keys.
func (c *stdConn) MGet(keys []int) (int, int, error) {
	b := append(c.mbuf[:0], `{"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"`+keyPrefix+`00000000"`...)
		putKey(b[len(b)-9:], k)
	}
	b = append(b, "]}"...)
	c.mbuf = b
	c.req.Method = http.MethodPost
	c.req.URL.Path = "/v1/mget"
	c.req.Header.Set("Content-Type", "application/json")
	c.body.Reset(b)
	c.req.Body, c.req.ContentLength = c.rc, int64(len(b))
	return c.do()
}

func (c *stdConn) do() (int, int, error) {
	resp, err := c.cl.Do(c.req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, int(n), err
}

// Close drops the idle connection.
func (c *stdConn) Close() { c.tr.CloseIdleConnections() }
