package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// keyPrefix is the prefix of every benchmark key: bench/key/%08d.
const keyPrefix = "bench/key/"

// putKey writes n as eight decimal digits into b[:8].
func putKey(b []byte, n int) {
	for i := 7; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// keyName returns the name of key n.
func keyName(n int) string { return fmt.Sprintf(keyPrefix+"%08d", n) }

// rawConn is a minimal HTTP/1.1 client over one net.Conn: each request is
// written with one Write from a reused buffer, and the answer is parsed in
// place from a bufio.Reader without allocating.
type rawConn struct {
	addr     string
	deadline time.Time // I/O deadline, see SetDeadline

	c  net.Conn
	br *bufio.Reader

	get    []byte // a prebuilt GET request
	getKey int    // offset of the key digits in get
	wbuf   []byte // PUT and mget requests are assembled here
	body   []byte // mget bodies are assembled here
	tail   []byte // " HTTP/1.1\r\nHost: ...\r\n"
}

func newRawConn(addr string) *rawConn {
	c := &rawConn{addr: addr}
	c.tail = []byte(" HTTP/1.1\r\nHost: " + addr + "\r\n")
	c.get = append([]byte("GET /v1/kv/"+keyPrefix), "00000000"...)
	c.getKey = len(c.get) - 8
	c.get = append(append(c.get, c.tail...), "\r\n"...)
	return c
}

func (c *rawConn) dial() error {
	timeout := 5 * time.Second
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

// SetDeadline bounds the I/O of this and later connections by t.
func (c *rawConn) SetDeadline(t time.Time) {
	c.deadline = t
	if c.c != nil {
		_ = c.c.SetDeadline(t)
	}
}

// Close closes the connection; the next request redials.
func (c *rawConn) Close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// Get sends GET /v1/kv/bench/key/N.
func (c *rawConn) Get(key int) (int, int, error) {
	putKey(c.get[c.getKey:], key)
	return c.roundTrip(c.get)
}

// Put sends PUT /v1/kv/bench/key/N with value as the body.
func (c *rawConn) Put(key int, value []byte) (int, int, error) {
	b := append(c.wbuf[:0], "PUT /v1/kv/"+keyPrefix...)
	b = append(b, "00000000"...)
	putKey(b[len(b)-8:], key)
	b = append(b, c.tail...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, value...)
	c.wbuf = b
	return c.roundTrip(b)
}

// MGet sends POST /v1/mget for keys.
func (c *rawConn) MGet(keys []int) (int, int, error) {
	body := append(c.body[:0], `{"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `"`+keyPrefix+`00000000"`...)
		putKey(body[len(body)-9:], k)
	}
	body = append(body, "]}"...)
	c.body = body
	b := append(c.wbuf[:0], "POST /v1/mget"...)
	b = append(b, c.tail...)
	b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	return c.roundTrip(b)
}

// roundTrip writes req and reads the answer. On any error the connection
// is closed.
func (c *rawConn) roundTrip(req []byte) (status, n int, err error) {
	if c.c == nil {
		if err := c.dial(); err != nil {
			return 0, 0, err
		}
	}
	if _, err := c.c.Write(req); err != nil {
		c.Close()
		return 0, 0, err
	}
	status, n, keep, err := readResponse(c.br)
	if err != nil || !keep {
		c.Close()
	}
	return status, n, err
}

// maxHeaders bounds the header lines of one answer.
const maxHeaders = 100

var (
	errMalformed = errors.New("malformed HTTP response")
	errNoLength  = errors.New("HTTP response without Content-Length or chunked encoding")
)

// readResponse reads one HTTP/1.x answer from br and discards its body. It
// returns the status, the body length, and whether the connection may be
// reused.
func readResponse(br *bufio.Reader) (status, n int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 14 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes by default
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		status = status*10 + int(d-'0')
	}
	clen, chunked := -1, false
	for i := 0; ; i++ {
		if i == maxHeaders {
			return status, 0, false, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaders)
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, 0, false, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if clen, err = atoi(val); err != nil {
				return status, 0, false, err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
			if !chunked {
				return status, 0, false, fmt.Errorf("%w: transfer-encoding %q", errMalformed, val)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(val, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
		return status, 0, keep, nil
	case chunked:
		n, err = discardChunked(br)
		return status, n, keep && err == nil, err
	case clen >= 0:
		n, err = br.Discard(clen)
		return status, n, keep && err == nil, err
	}
	// A body that runs to the end of the connection: not worth supporting
	// in a load generator, and argent never sends one.
	return status, 0, false, errNoLength
}

// discardChunked reads and discards a chunked body and its trailers.
func discardChunked(br *bufio.Reader) (int, error) {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return total, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for i := 0; ; i++ { // trailers, then an empty line
				if i == maxHeaders {
					return total, fmt.Errorf("%w: more than %d trailer lines", errMalformed, maxHeaders)
				}
				line, err := br.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		d, err := br.Discard(int(size))
		total += d
		if err != nil {
			return total, err
		}
		crlf, err := br.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		if len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return total, fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

// atoi parses a non-negative decimal Content-Length.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("%w: content-length %q", errMalformed, b)
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("%w: content-length %q", errMalformed, b)
		}
		n = n*10 + int(d-'0')
	}
	return n, nil
}
