package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Bounds on what a client may send, so that malformed or hostile input
// cannot make the server hold unbounded memory.
const (
	maxLine      = 64 << 10  // an inline command or a length line
	maxArgs      = 1_000_000 // arguments of one multibulk command
	bulkOverhead = 64 << 10  // allowance over the limits for command names, options
	readChunk    = 1 << 20   // bulk strings are read this much at a time
	keepArena    = 4 << 20   // a connection keeps an argument buffer up to this size
)

// protocolError is malformed input: the server answers it with an error and
// closes the connection, as Redis does.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "resp: protocol error: " + e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// reader reads RESP2 commands: multibulk arrays of bulk strings, or inline
// commands (a line of words separated by spaces), which redis-benchmark's
// PING_INLINE and telnet sessions send.
type reader struct {
	r        *bufio.Reader
	maxBulk  int // the largest bulk string accepted
	maxTotal int // the most bytes of arguments in one command
	arena    []byte
	args     [][]byte
}

func newReader(r io.Reader, maxBulk int) *reader {
	return &reader{r: bufio.NewReaderSize(r, 64<<10), maxBulk: maxBulk, maxTotal: 2 * maxBulk}
}

// next returns the next command's arguments. They alias buffers that the
// following call reuses. An empty command (a blank line, "*0") is skipped.
func (rd *reader) next() ([][]byte, error) {
	for {
		if cap(rd.arena) > keepArena {
			rd.arena = nil // do not hold on to the memory of one large command
		}
		rd.arena = rd.arena[:0]
		rd.args = rd.args[:0]
		b, err := rd.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '*' {
			if err := rd.r.UnreadByte(); err != nil {
				return nil, err
			}
			if err := rd.inline(); err != nil {
				return nil, err
			}
		} else if err := rd.multibulk(); err != nil {
			return nil, err
		}
		if len(rd.args) > 0 {
			return rd.args, nil
		}
	}
}

// line reads up to "\r\n" (or "\n" for inline input) and returns the line
// without it. The result aliases the bufio buffer.
func (rd *reader) line() ([]byte, error) {
	l, err := rd.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, protoErr("line longer than %d bytes", maxLine)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(l) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

func (rd *reader) inline() error {
	l, err := rd.line()
	if err != nil {
		return err
	}
	for _, f := range bytes.Fields(l) {
		off := len(rd.arena)
		rd.arena = append(rd.arena, f...)
		rd.args = append(rd.args, rd.arena[off:len(rd.arena):len(rd.arena)])
	}
	return nil
}

// number parses a length line's digits.
func number(l []byte, what string) (int, error) {
	n, err := strconv.Atoi(string(l))
	if err != nil {
		return 0, protoErr("invalid %s", what)
	}
	return n, nil
}

func (rd *reader) multibulk() error {
	l, err := rd.line()
	if err != nil {
		return err
	}
	count, err := number(l, "multibulk length")
	if err != nil {
		return err
	}
	if count > maxArgs {
		return protoErr("invalid multibulk length")
	}
	total := 0
	for range count {
		b, err := rd.r.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		if b != '$' {
			return protoErr("expected '$', got '%c'", printable(b))
		}
		l, err := rd.line()
		if err != nil {
			return unexpected(err)
		}
		n, err := number(l, "bulk length")
		if err != nil {
			return err
		}
		if n < 0 || n > rd.maxBulk {
			return protoErr("invalid bulk length")
		}
		if total += n; total > rd.maxTotal {
			return protoErr("command larger than %d bytes", rd.maxTotal)
		}
		// Read in chunks, so that memory follows the bytes that arrive and
		// not the length a client announces.
		off := len(rd.arena)
		for need := n + 2; need > 0; {
			chunk := min(need, readChunk)
			start := len(rd.arena)
			rd.arena = grow(rd.arena, chunk)
			if _, err := io.ReadFull(rd.r, rd.arena[start:start+chunk]); err != nil {
				return unexpected(err)
			}
			need -= chunk
		}
		if rd.arena[off+n] != '\r' || rd.arena[off+n+1] != '\n' {
			return protoErr("bulk string not followed by CRLF")
		}
		rd.arena = rd.arena[:off+n]
		// Earlier arguments keep pointing into the old array when grow
		// reallocates, which stays valid.
		rd.args = append(rd.args, rd.arena[off:off+n:off+n])
	}
	return nil
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n, 4096))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func printable(b byte) byte {
	if b < 0x20 || b > 0x7e {
		return '?'
	}
	return b
}

// writer appends RESP2 replies to a buffered writer.
type writer struct {
	w       *bufio.Writer
	scratch []byte
}

func newWriter(w io.Writer) *writer {
	return &writer{w: bufio.NewWriterSize(w, 64<<10), scratch: make([]byte, 0, 32)}
}

func (w *writer) header(t byte, n int64) {
	w.scratch = append(w.scratch[:0], t)
	w.scratch = strconv.AppendInt(w.scratch, n, 10)
	w.scratch = append(w.scratch, '\r', '\n')
	w.w.Write(w.scratch)
}

func (w *writer) simple(s string) {
	w.w.WriteByte('+')
	w.w.WriteString(s)
	w.w.WriteString("\r\n")
}

// error writes an error reply; s must start with a code such as "ERR".
// Line breaks in s would end the reply early, so they become spaces.
func (w *writer) error(s string) {
	w.w.WriteByte('-')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.w.WriteByte(c)
	}
	w.w.WriteString("\r\n")
}

func (w *writer) bulk(b []byte) {
	w.header('$', int64(len(b)))
	w.w.Write(b)
	w.w.WriteString("\r\n")
}

func (w *writer) bulkString(s string) {
	w.header('$', int64(len(s)))
	w.w.WriteString(s)
	w.w.WriteString("\r\n")
}

func (w *writer) null()         { w.w.WriteString("$-1\r\n") }
func (w *writer) integer(n int) { w.header(':', int64(n)) }
func (w *writer) array(n int)   { w.header('*', int64(n)) }
func (w *writer) flush() error  { return w.w.Flush() }
