package api

import (
	"bytes"
	"encoding/base64"
	"strconv"

	"github.com/argent-kv/argent"
)

// parseTxnJSON parses a txn body of the plain form the clients send:
//
//	{"conditions":[{"key":"k","mod_index":7}],"ops":[{"op":"put","key":"k","value":"aGk="}]}
//
// (either member may be missing or come first; the fields of a condition
// or an op in any order, each at most once; JSON whitespace between
// tokens; strings without escapes and of valid UTF-8; values in standard
// base64; mod indexes as plain decimal numbers). ok is false for anything
// else, which the caller then gives to encoding/json, so every body gets
// encoding/json's answer; this path only spares a bulk load's large bodies
// encoding/json's cost (about 140 MB/s for base64 values on this
// project's machines, against several hundred here).
func parseTxnJSON(b []byte) (req txnRequest, ok bool) {
	p := jsonScanner{b: b}
	if !p.lit(`{`) {
		return req, false
	}
	var seenConds, seenOps bool
	for first := true; !p.lit(`}`); first = false {
		if !first && !p.lit(`,`) {
			return req, false
		}
		name, ok := p.str()
		if !ok || !p.lit(`:`) {
			return req, false
		}
		switch {
		case name == "conditions" && !seenConds:
			seenConds = true
			if req.Conditions, ok = txnArray(&p, txnConditionJSON); !ok {
				return req, false
			}
		case name == "ops" && !seenOps:
			seenOps = true
			if req.Ops, ok = txnArray(&p, txnOpJSON); !ok {
				return req, false
			}
		default:
			return req, false
		}
	}
	p.space()
	return req, p.i == len(p.b)
}

// txnArray reads a JSON array of objects, each read by elem.
func txnArray[T any](p *jsonScanner, elem func(*jsonScanner) (T, bool)) ([]T, bool) {
	if !p.lit(`[`) {
		return nil, false
	}
	out := []T{}
	if p.lit(`]`) {
		return out, true
	}
	for {
		e, ok := elem(p)
		if !ok {
			return nil, false
		}
		out = append(out, e)
		if p.lit(`]`) {
			return out, true
		}
		if !p.lit(`,`) {
			return nil, false
		}
	}
}

// txnFields reads an object's members, calling field with each name; field
// reads the value and reports false for a name it does not know.
func txnFields(p *jsonScanner, field func(name string) bool) bool {
	if !p.lit(`{`) {
		return false
	}
	for first := true; !p.lit(`}`); first = false {
		if !first && !p.lit(`,`) {
			return false
		}
		name, ok := p.str()
		if !ok || !p.lit(`:`) || !field(name) {
			return false
		}
	}
	return true
}

func txnOpJSON(p *jsonScanner) (txnOp, bool) {
	var o txnOp
	ok := txnFields(p, func(name string) bool {
		switch {
		case name == "op" && o.Op == nil:
			s, ok := p.str()
			o.Op = &s
			return ok
		case name == "key" && o.Key == nil:
			s, ok := p.str()
			o.Key = &s
			return ok
		case name == "value" && o.Value == nil:
			v, ok := p.base64()
			o.Value = v
			return ok
		}
		return false
	})
	return o, ok
}

func txnConditionJSON(p *jsonScanner) (txnCondition, bool) {
	var c txnCondition
	ok := txnFields(p, func(name string) bool {
		switch {
		case name == "key" && c.Key == nil:
			s, ok := p.str()
			c.Key = &s
			return ok
		case name == "mod_index" && c.ModIndex == nil:
			n, ok := p.uint()
			c.ModIndex = &n
			return ok
		}
		return false
	})
	return c, ok
}

// base64 reads a string of standard base64 (padded, no line breaks) and
// returns its bytes, never nil.
func (p *jsonScanner) base64() ([]byte, bool) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	n := bytes.IndexByte(p.b[start:], '"')
	if n < 0 {
		return nil, false
	}
	src := p.b[start : start+n]
	// base64's decoder refuses every byte outside the alphabet but line
	// breaks, which it skips; a JSON string may hold neither raw, and an
	// escape (a backslash) is refused too, as outside the alphabet.
	if bytes.IndexByte(src, '\n') >= 0 || bytes.IndexByte(src, '\r') >= 0 {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	m, err := base64.StdEncoding.Decode(out, src)
	if err != nil {
		return nil, false
	}
	p.i = start + n + 1
	return out[:m], true
}

// uint reads a JSON number that is a plain unsigned decimal integer.
func (p *jsonScanner) uint() (argent.Index, bool) {
	p.space()
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return argent.Index(n), err == nil
}
