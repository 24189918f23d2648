package resp

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

// The fuzz targets run their seeds in every `go test`; `make fuzz` runs
// them with the fuzzer.

// appendCommand encodes args as a RESP multibulk command.
func appendCommand(dst []byte, args [][]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, "\r\n"...)
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, a...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// FuzzParse feeds parse a client's input: what it accepts re-encodes to a
// command that parses to the same arguments, its arguments alias the
// input, and every shorter prefix of an accepted command is "not complete
// yet", never an error, so that a command split across reads is the same
// command.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
		"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$3\r\nab*\r\n",
		"*0\r\n",
		"*-1\r\n",
		"PING\r\n",
		"PING\n",
		"  set a  b \r\n",
		"\r\n",
		"*1\r\n$-1\r\n",
		"*2\r\n$3\r\nGET\r\n",
		"*1\r\n$3\r\nGETX\r\n",
		"*999999999999999999\r\n",
		"*1\r\n:1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		// The smallest bound New sets (limits of one byte): an inline
		// argument, at most maxLine bytes, always fits it.
		const maxBulk = bulkOverhead + 2
		args, n, err := parse(nil, buf, maxBulk)
		if err != nil {
			var pe *protocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return
		}
		if n == 0 {
			return // not complete yet: callers ignore args
		}
		if n > len(buf) {
			t.Fatalf("took %d bytes of %d", n, len(buf))
		}
		total := 0
		for _, a := range args {
			if len(a) > 0 && !aliases(a, buf[:n]) {
				t.Fatalf("argument %q does not alias the command's bytes", a)
			}
			if buf[0] == '*' && cap(a) != len(a) {
				t.Fatalf("argument %q has capacity %d: an append would overwrite the input", a, cap(a))
			}
			total += len(a)
		}
		if buf[0] == '*' && total > 2*maxBulk {
			t.Fatalf("accepted %d bytes of arguments, the bound is %d", total, 2*maxBulk)
		}
		enc := appendCommand(nil, args)
		again, m, err := parse(nil, enc, maxBulk)
		if err != nil || m != len(enc) || !equalArgs(args, again) {
			t.Fatalf("re-encoded command %q parses to %q, n=%d of %d, %v", enc, again, m, len(enc), err)
		}
		for k := 0; k < n; k += 1 + n/64 {
			if _, m, err := parse(nil, buf[:k], maxBulk); m != 0 || err != nil {
				t.Fatalf("prefix of %d bytes of a %d-byte command: n=%d, %v", k, n, m, err)
			}
		}
	})
}

func aliases(a, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	for i := range buf {
		if &buf[i] == &a[0] {
			return i+len(a) <= len(buf)
		}
	}
	return false
}

func equalArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzParsePattern checks SCAN's MATCH patterns: an accepted pattern's
// literal, escaped again, is a pattern that gives the same literal.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"*", "ab*", "abc", `a\*b*`, `a\\*`, `\`, "a?b", "[ab]*", `a\`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		lit, exact, ok := parsePattern(p)
		if !ok {
			return
		}
		if exact && len(lit) == 0 {
			t.Fatal("an exact pattern with an empty literal")
		}
		if len(lit) > len(p) {
			t.Fatalf("literal %q longer than pattern %q", lit, p)
		}
		var esc []byte
		for _, c := range lit {
			switch c {
			case '*', '?', '[', ']', '\\':
				esc = append(esc, '\\')
			}
			esc = append(esc, c)
		}
		if !exact {
			esc = append(esc, '*')
		}
		lit2, exact2, ok2 := parsePattern(esc)
		if !ok2 || exact2 != exact || !bytes.Equal(lit2, lit) {
			t.Fatalf("pattern %q -> %q exact=%v; escaped %q -> %q exact=%v ok=%v", p, lit, exact, esc, lit2, exact2, ok2)
		}
	})
}
