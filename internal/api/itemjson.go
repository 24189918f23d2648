package api

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// The mget request and the item lists of mget and scan answers are the JSON
// of the hot multi-key path: encoding/json spent half the handler's time on
// them, mostly in reflection. These functions produce and accept exactly
// what encoding/json does for apiwire.MGetRequest, MGetResponse and ScanPage;
// anything unusual falls back to encoding/json.

// appendItemsJSON appends {"index":S,"items":[...]} and, when next is not
// empty, "next", as encoding/json would encode an MGetResponse or ScanPage.
func appendItemsJSON(dst []byte, index argent.Index, items []apiwire.Item, next string) []byte {
	// One allocation for the usual answer: growing the slice as it went
	// took a quarter of a 100-key mget's CPU, in copies and GC.
	dst = slices.Grow(dst, itemsJSONSize(items, next))
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendUint(dst, uint64(index), 10)
	dst = append(dst, `,"items":[`...)
	for i := range items {
		it := &items[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendJSONString(dst, it.Key)
		if len(it.Value) > 0 {
			dst = append(dst, `,"value":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, it.Value)
			dst = append(dst, '"')
		}
		if it.ModIndex != 0 {
			dst = append(dst, `,"mod_index":`...)
			dst = strconv.AppendUint(dst, uint64(it.ModIndex), 10)
		}
		if it.Absent {
			dst = append(dst, `,"absent":true`...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if next != "" {
		dst = append(dst, `,"next":`...)
		dst = appendJSONString(dst, next)
	}
	return append(dst, "}\n"...)
}

// itemsJSONSize is the length of appendItemsJSON's output when no key
// needs escaping (an upper bound on the fixed parts otherwise).
func itemsJSONSize(items []apiwire.Item, next string) int {
	n := len(`{"index":,"items":[],"next":""}`) + 21 + len(next) + 1
	for i := range items {
		it := &items[i]
		n += len(`{"key":"","value":"","mod_index":,"absent":true},`) + 20 + len(it.Key) + base64.StdEncoding.EncodedLen(len(it.Value))
	}
	return n
}

// appendJSONString appends s as a JSON string, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	if plainJSON(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}

// plainJSON reports whether s is printable ASCII that encoding/json writes
// unchanged: no quote, backslash, or HTML-escaped <, > and &.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// parseKeysJSON parses a body of the plain form {"keys":["k1","k2",...]}
// (JSON whitespace allowed between tokens, strings without escapes and of
// valid UTF-8). ok is false for anything else, which the caller then gives
// to encoding/json, so every body gets encoding/json's answer.
func parseKeysJSON(b []byte) (keys []string, ok bool) {
	p := jsonScanner{b: b}
	if !p.lit(`{`) || !p.lit(`"keys"`) || !p.lit(`:`) || !p.lit(`[`) {
		return nil, false
	}
	if p.lit(`]`) {
		keys = []string{}
	} else {
		for {
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			keys = append(keys, s)
			if p.lit(`]`) {
				break
			}
			if !p.lit(`,`) {
				return nil, false
			}
		}
	}
	if !p.lit(`}`) {
		return nil, false
	}
	p.space()
	return keys, p.i == len(p.b)
}

// jsonScanner reads the tokens of parseKeysJSON.
type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// lit skips whitespace and then tok, if it is there.
func (p *jsonScanner) lit(tok string) bool {
	p.space()
	if len(p.b)-p.i < len(tok) || string(p.b[p.i:p.i+len(tok)]) != tok {
		return false
	}
	p.i += len(tok)
	return true
}

// str reads a string without escapes or control characters.
func (p *jsonScanner) str() (string, bool) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !utf8.Valid(s) {
				return "", false
			}
			p.i = j + 1
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}
