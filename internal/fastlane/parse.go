package fastlane

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
)

// methods are the methods the lane takes, interned.
var methods = map[string]string{
	http.MethodGet:    http.MethodGet,
	http.MethodPut:    http.MethodPut,
	http.MethodPost:   http.MethodPost,
	http.MethodDelete: http.MethodDelete,
}

// commonHeaders interns the canonical names of frequent header fields.
var commonHeaders = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{"Accept", "Accept-Encoding", "Content-Type", "User-Agent", "Content-Length", "Host", "Connection"} {
		m[k] = k
	}
	return m
}()

// parse parses the request header held in the first n buffered bytes. If
// the request is simple, it consumes the header and returns the request,
// without its Body; otherwise it consumes nothing and returns errNotSimple.
func (lc *conn) parse(n int) (*http.Request, error) {
	buf, err := lc.br.Peek(n)
	if err != nil {
		return nil, errNotSimple
	}
	line, rest, _ := bytes.Cut(buf[:n-2], []byte("\r\n"))
	method, target, err := lc.parseRequestLine(line)
	if err != nil {
		return nil, err
	}
	clear(lc.hdr)
	host, cl, err := lc.parseHeader(rest)
	if err != nil {
		return nil, err
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, errNotSimple
	}
	if _, err := lc.br.Discard(n); err != nil {
		return nil, errNotSimple
	}
	req := new(http.Request)
	*req = *lc.l.base // carries the lane's context
	req.Method, req.URL, req.RequestURI = method, u, target
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header, req.Host, req.ContentLength, req.RemoteAddr = lc.hdr, host, cl, lc.remote
	req.TLS = lc.tls
	return req, nil
}

// parseRequestLine parses "METHOD /target HTTP/1.1" of a method the lane
// takes and a target Eligible accepts.
func (lc *conn) parseRequestLine(line []byte) (method, target string, err error) {
	m, rest, ok1 := bytes.Cut(line, []byte(" "))
	t, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || string(proto) != "HTTP/1.1" || len(t) == 0 || t[0] != '/' {
		return "", "", errNotSimple
	}
	method, ok := methods[string(m)]
	if !ok {
		return "", "", errNotSimple
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return "", "", errNotSimple
		}
	}
	path := t
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		path = t[:i]
	}
	if !lc.l.opts.Eligible(method, string(path)) {
		return "", "", errNotSimple
	}
	return method, string(t), nil
}

// parseHeader fills lc.hdr from the header lines (CRLF-separated, without
// the request line and the final empty line) and returns the Host and the
// Content-Length. Anything unusual is errNotSimple.
func (lc *conn) parseHeader(lines []byte) (host string, cl int64, err error) {
	haveHost, haveCL := false, false
	for len(lines) > 0 {
		var line []byte
		line, lines, _ = bytes.Cut(lines, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) || !isFieldValue(value) {
			return "", 0, errNotSimple
		}
		value = bytes.Trim(value, " \t")
		key, ok := commonHeaders[string(name)]
		if !ok {
			key = http.CanonicalHeaderKey(string(name))
		}
		switch key {
		case "Host":
			if haveHost || !isHost(value) {
				return "", 0, errNotSimple
			}
			haveHost, host = true, string(value)
			continue
		case "Content-Length":
			n, err := strconv.ParseUint(string(value), 10, 63)
			if haveCL || err != nil || n > uint64(lc.l.opts.MaxBody) {
				return "", 0, errNotSimple
			}
			haveCL, cl = true, int64(n)
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return "", 0, errNotSimple
		case "Connection":
			if !bytes.EqualFold(value, []byte("keep-alive")) {
				return "", 0, errNotSimple
			}
		}
		lc.hdr[key] = append(lc.hdr[key], string(value))
	}
	if !haveHost {
		return "", 0, errNotSimple
	}
	return host, cl, nil
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// isHost reports whether b is a plausible Host value: printable ASCII
// without spaces (a name or address and a port, brackets for IPv6).
func isHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// isFieldValue reports whether b holds no control characters but HTAB.
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
