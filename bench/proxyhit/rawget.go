package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// tierConn sends GET /v1/kv/{key} over one keep-alive connection and reads
// the status, the Argent-Tier header and the body length. rawhttp.Conn
// discards the headers; this one keeps the tier, without allocating for
// the tiers a proxy names.
type tierConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	tail []byte
}

func newTierConn(addr string) *tierConn {
	return &tierConn{addr: addr, tail: []byte(" HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")}
}

func (t *tierConn) close() {
	if t.c != nil {
		_ = t.c.Close()
		t.c = nil
	}
}

// get reads key. On an error the connection is closed; the next call
// redials.
func (t *tierConn) get(key []byte) (status int, tier string, n int, err error) {
	if t.c == nil {
		c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
		if err != nil {
			return 0, "", 0, err
		}
		t.c = c
		if t.br == nil {
			t.br = bufio.NewReaderSize(c, 64<<10)
		} else {
			t.br.Reset(c)
		}
	}
	_ = t.c.SetDeadline(time.Now().Add(30 * time.Second))
	b := append(t.wbuf[:0], "GET "...)
	b = rawhttp.AppendKeyPath(b, key)
	b = append(b, t.tail...)
	t.wbuf = b
	if _, err := t.c.Write(b); err != nil {
		t.close()
		return 0, "", 0, err
	}
	status, tier, n, keep, err := readTierResponse(t.br)
	if err != nil || !keep {
		t.close()
	}
	return status, tier, n, err
}

var errMalformed = errors.New("malformed HTTP response")

// knownTiers are returned as constants, so that a read does not allocate
// its tier's name.
var knownTiers = []string{"cache", "window", "filter", "replica", "root"}

func tierName(b []byte) string {
	for _, t := range knownTiers {
		if string(b) == t {
			return t
		}
	}
	return string(b)
}

// readTierResponse reads one HTTP/1.1 answer with a Content-Length body
// (argent sends one on every GET) and discards the body.
func readTierResponse(br *bufio.Reader) (status int, tier string, n int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, "", 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, "", 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, "", 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = true
	clen := -1
	for i := 0; ; i++ {
		if i == 100 {
			return status, tier, 0, false, fmt.Errorf("%w: too many header lines", errMalformed)
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, tier, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, tier, 0, false, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Argent-Tier")):
			tier = tierName(val)
		case bytes.EqualFold(name, []byte("Content-Length")):
			if clen, err = strconv.Atoi(string(val)); err != nil || clen < 0 {
				return status, tier, 0, false, fmt.Errorf("%w: content-length %q", errMalformed, val)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return status, tier, 0, false, fmt.Errorf("%w: transfer-encoding %q not supported", errMalformed, val)
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(val, []byte("close"))
		}
	}
	if clen < 0 {
		return status, tier, 0, false, fmt.Errorf("%w: no content-length", errMalformed)
	}
	n, err = br.Discard(clen)
	return status, tier, n, keep && err == nil, err
}
