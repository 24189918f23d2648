// Package rawhttp is a minimal HTTP/1.1 client over one net.Conn, for load
// generators that must not spend more CPU than the server they measure.
//
// A [Conn] writes each request with one Write from a reused buffer and
// parses the answer in place from a bufio.Reader without allocating: the
// status line, Content-Length or chunked bodies, and Connection: close. The
// body is discarded; only its length is returned. It speaks argent's client
// API (GET and PUT /v1/kv/{key}, POST /v1/mget) and sends any prebuilt
// request with [Conn.RoundTrip]. It is not safe for concurrent use: a load
// generator gives each goroutine its own Conn.
//
//	c := rawhttp.New("127.0.0.1:7401")
//	defer c.Close()
//	c.SetDeadline(time.Now().Add(10 * time.Second))
//	status, n, err := c.Get([]byte("config/feature-x"))
package rawhttp

import (
	"bufio"
	"net"
	"strconv"
	"time"
)

// dialTimeout bounds one dial when no deadline is set.
const dialTimeout = 5 * time.Second

// Conn is one keep-alive connection to addr, dialled on first use and
// redialled after an error.
type Conn struct {
	addr     string
	deadline time.Time // I/O deadline, see SetDeadline

	c  net.Conn
	br *bufio.Reader

	tail []byte // " HTTP/1.1\r\nHost: ...\r\n"
	wbuf []byte // requests are assembled here
	body []byte // mget bodies are assembled here
	hval []byte // GetHeader's value
}

// New returns a Conn to addr (host:port). It does not dial yet.
func New(addr string) *Conn {
	return &Conn{addr: addr, tail: []byte(" HTTP/1.1\r\nHost: " + addr + "\r\n")}
}

// Addr is the address the Conn talks to.
func (c *Conn) Addr() string { return c.addr }

// Tail returns " HTTP/1.1\r\nHost: ADDR\r\n": what follows the request
// target in every request this Conn sends, for callers that prebuild their
// own requests. The caller must not change it.
func (c *Conn) Tail() []byte { return c.tail }

func (c *Conn) dial() error {
	timeout := dialTimeout
	if !c.deadline.IsZero() {
		timeout = min(timeout, max(time.Millisecond, time.Until(c.deadline)))
	}
	nc, err := net.DialTimeout("tcp", c.addr, timeout)
	if err != nil {
		return err
	}
	_ = nc.SetDeadline(c.deadline)
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 64<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// SetDeadline bounds the I/O of this and later connections by t; the zero
// time removes the bound.
func (c *Conn) SetDeadline(t time.Time) {
	c.deadline = t
	if c.c != nil {
		_ = c.c.SetDeadline(t)
	}
}

// Close closes the connection; the next request redials.
func (c *Conn) Close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// Get sends GET /v1/kv/{key} and returns the status and body length.
func (c *Conn) Get(key []byte) (status, n int, err error) {
	b := append(c.wbuf[:0], "GET "...)
	b = AppendKeyPath(b, key)
	b = append(b, c.tail...)
	b = append(b, "\r\n"...)
	c.wbuf = b
	return c.RoundTrip(b)
}

// GetHeader is Get that also returns the value of the answer's header
// called name (for example "Argent-Tier"), or an empty slice. The value is
// valid until the next request on c.
func (c *Conn) GetHeader(key []byte, name string) (status, n int, value []byte, err error) {
	b := append(c.wbuf[:0], "GET "...)
	b = AppendKeyPath(b, key)
	b = append(b, c.tail...)
	b = append(b, "\r\n"...)
	c.wbuf = b
	return c.roundTrip(b, name)
}

// Put sends PUT /v1/kv/{key} with value as the body.
func (c *Conn) Put(key, value []byte) (status, n int, err error) {
	b := append(c.wbuf[:0], "PUT "...)
	b = AppendKeyPath(b, key)
	b = append(b, c.tail...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, value...)
	c.wbuf = b
	return c.RoundTrip(b)
}

// MGet sends POST /v1/mget with body {"keys":[...]}.
func (c *Conn) MGet(keys [][]byte) (status, n int, err error) {
	c.body = AppendMGetBody(c.body[:0], keys)
	return c.Post("/v1/mget", c.body)
}

// Post sends POST path with a JSON body.
func (c *Conn) Post(path string, body []byte) (status, n int, err error) {
	b := append(c.wbuf[:0], "POST "...)
	b = append(b, path...)
	b = append(b, c.tail...)
	b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	return c.RoundTrip(b)
}

// RoundTrip writes req, a whole HTTP/1.1 request, and reads the answer. On
// any error the connection is closed, and the next call redials.
func (c *Conn) RoundTrip(req []byte) (status, n int, err error) {
	status, n, _, err = c.roundTrip(req, "")
	return status, n, err
}

// roundTrip is RoundTrip that also returns the value of the header called
// name (see ReadResponseHeader), kept in c.hval.
func (c *Conn) roundTrip(req []byte, name string) (status, n int, value []byte, err error) {
	if c.c == nil {
		if err := c.dial(); err != nil {
			return 0, 0, c.hval[:0], err
		}
	}
	if _, err := c.c.Write(req); err != nil {
		c.Close()
		return 0, 0, c.hval[:0], err
	}
	status, n, value, keep, err := ReadResponseHeader(c.br, name, c.hval)
	c.hval = value
	if err != nil || !keep {
		c.Close()
	}
	return status, n, value, err
}
