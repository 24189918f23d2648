package resp

import (
	"bytes"
	"fmt"
	"strconv"
)

// Bounds on what a client may send, so that malformed or hostile input
// cannot make the server hold unbounded memory.
const (
	maxLine      = 64 << 10  // an inline command or a length line
	maxArgs      = 1_000_000 // arguments of one multibulk command
	bulkOverhead = 64 << 10  // allowance over the limits for command names, options
	keepBuffer   = 4 << 20   // a connection keeps a reply or input buffer up to this size
)

// protocolError is malformed input: the server answers it with an error and
// closes the connection, as Redis does.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "resp: protocol error: " + e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// parse reads the command at the front of buf: multibulk arrays of bulk
// strings, or inline commands (a line of words separated by spaces), which
// redis-benchmark's PING_INLINE and telnet sessions send. It appends the
// command's arguments to args and returns them with the bytes the command
// took. The arguments alias buf. n == 0 with a nil error means that buf
// holds no complete command yet; an empty command (a blank line, "*0")
// gives no arguments and n > 0.
//
// Nothing is copied or allocated until the whole command is in buf, and
// every length is checked as soon as it is read, so that a client cannot
// announce more than the limits allow.
func parse(args [][]byte, buf []byte, maxBulk int) ([][]byte, int, error) {
	if len(buf) == 0 {
		return args, 0, nil
	}
	if buf[0] != '*' {
		l, n, err := line(buf, 0)
		if n == 0 || err != nil {
			return args, 0, err
		}
		return append(args, bytes.Fields(l)...), n, nil
	}
	l, pos, err := line(buf, 1)
	if pos == 0 || err != nil {
		return args, 0, err
	}
	count, ok := number(l)
	if !ok || count > maxArgs {
		return args, 0, protoErr("invalid multibulk length")
	}
	total := 0
	for range count {
		if pos >= len(buf) {
			return args, 0, nil
		}
		if b := buf[pos]; b != '$' {
			return args, 0, protoErr("expected '$', got '%c'", printable(b))
		}
		l, next, err := line(buf, pos+1)
		if next == 0 || err != nil {
			return args, 0, err
		}
		n, ok := number(l)
		if !ok || n < 0 || n > maxBulk {
			return args, 0, protoErr("invalid bulk length")
		}
		if total += n; total > 2*maxBulk {
			return args, 0, protoErr("command larger than %d bytes", 2*maxBulk)
		}
		if len(buf)-next < n+2 {
			return args, 0, nil
		}
		if buf[next+n] != '\r' || buf[next+n+1] != '\n' {
			return args, 0, protoErr("bulk string not followed by CRLF")
		}
		args = append(args, buf[next:next+n:next+n])
		pos = next + n + 2
	}
	return args, pos, nil
}

// line returns the line of buf that starts at from, without its "\r\n"
// (or "\n", as inline input may end), and the offset after it; next == 0
// when the line is not complete yet.
func line(buf []byte, from int) (l []byte, next int, err error) {
	i := bytes.IndexByte(buf[from:], '\n')
	if i < 0 {
		if len(buf)-from > maxLine {
			return nil, 0, protoErr("line longer than %d bytes", maxLine)
		}
		return nil, 0, nil
	}
	if i > maxLine {
		return nil, 0, protoErr("line longer than %d bytes", maxLine)
	}
	l = buf[from : from+i]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, from + i + 1, nil
}

// number parses a length line: an optional '-' and decimal digits, at most
// 18 of them so that it cannot overflow.
func number(l []byte) (int, bool) {
	neg := len(l) > 0 && l[0] == '-'
	if neg {
		l = l[1:]
	}
	if len(l) == 0 || len(l) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range l {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func printable(b byte) byte {
	if b < 0x20 || b > 0x7e {
		return '?'
	}
	return b
}

// writer appends RESP2 replies to a buffer, which the connection sends.
type writer struct {
	buf []byte
}

func (w *writer) header(t byte, n int64) {
	w.buf = append(w.buf, t)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *writer) simple(s string) {
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// error writes an error reply; s must start with a code such as "ERR".
// Line breaks in s would end the reply early, so they become spaces.
func (w *writer) error(s string) {
	w.buf = append(w.buf, '-')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, '\r', '\n')
}

func (w *writer) bulk(b []byte) {
	w.header('$', int64(len(b)))
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *writer) bulkString(s string) {
	w.header('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

func (w *writer) null()         { w.buf = append(w.buf, "$-1\r\n"...) }
func (w *writer) integer(n int) { w.header(':', int64(n)) }
func (w *writer) array(n int)   { w.header('*', int64(n)) }
