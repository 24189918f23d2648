package rawhttp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// maxHeaders bounds the header lines of one answer.
const maxHeaders = 100

var (
	// ErrMalformed is returned (wrapped) for an answer that is not HTTP/1.x
	// as this parser reads it.
	ErrMalformed = errors.New("rawhttp: malformed HTTP response")
	// ErrNoLength is returned for an answer whose body runs to the end of
	// the connection: not worth supporting in a load generator, and argent
	// never sends one.
	ErrNoLength = errors.New("rawhttp: HTTP response without Content-Length or chunked encoding")
)

// ReadResponse reads one HTTP/1.x answer from br and discards its body. It
// returns the status, the body length, and whether the connection may be
// reused.
func ReadResponse(br *bufio.Reader) (status, n int, keep bool, err error) {
	status, n, _, keep, err = ReadResponseHeader(br, "", nil)
	return status, n, keep, err
}

// ReadResponseHeader is ReadResponse that also returns the value of the
// header called name (case-insensitive), appended to dst[:0], so that a
// caller reusing dst reads a header such as Argent-Tier without
// allocating. The value is empty when the answer has no such header or
// name is empty.
func ReadResponseHeader(br *bufio.Reader, name string, dst []byte) (status, n int, value []byte, keep bool, err error) {
	value = dst[:0]
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, value, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 14 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, value, false, fmt.Errorf("%w: status line %q", ErrMalformed, line)
	}
	keep = line[7] == '1' // HTTP/1.0 closes by default
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, value, false, fmt.Errorf("%w: status line %q", ErrMalformed, line)
		}
		status = status*10 + int(d-'0')
	}
	clen, chunked := -1, false
	for i := 0; ; i++ {
		if i == maxHeaders {
			return status, 0, value, false, fmt.Errorf("%w: more than %d header lines", ErrMalformed, maxHeaders)
		}
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, 0, value, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, 0, value, false, fmt.Errorf("%w: header line %q", ErrMalformed, line)
		}
		val = bytes.TrimSpace(val)
		switch {
		case name != "" && bytes.EqualFold(key, []byte(name)):
			value = append(value[:0], val...)
		case bytes.EqualFold(key, []byte("Content-Length")):
			if clen, err = atoi(val); err != nil {
				return status, 0, value, false, err
			}
		case bytes.EqualFold(key, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
			if !chunked {
				return status, 0, value, false, fmt.Errorf("%w: transfer-encoding %q", ErrMalformed, val)
			}
		case bytes.EqualFold(key, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(val, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
		return status, 0, value, keep, nil
	case chunked:
		n, err = discardChunked(br)
		return status, n, value, keep && err == nil, err
	case clen >= 0:
		n, err = br.Discard(clen)
		return status, n, value, keep && err == nil, err
	}
	return status, 0, value, false, ErrNoLength
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
			return total, fmt.Errorf("%w: chunk size %q", ErrMalformed, line)
		}
		if size == 0 {
			for i := 0; ; i++ { // trailers, then an empty line
				if i == maxHeaders {
					return total, fmt.Errorf("%w: more than %d trailer lines", ErrMalformed, maxHeaders)
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
			return total, fmt.Errorf("%w: no CRLF after a chunk", ErrMalformed)
		}
	}
}

// atoi parses a non-negative decimal Content-Length.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("%w: content-length %q", ErrMalformed, b)
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("%w: content-length %q", ErrMalformed, b)
		}
		n = n*10 + int(d-'0')
	}
	return n, nil
}
