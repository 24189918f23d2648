// Package wirecheck checksums the node-to-node answers that carry data end
// to end, so that bytes damaged between two nodes are refused instead of
// cached.
//
// A proxy keeps what a replica, relay or L2 owner answered in a persistent
// cache, and a relay publishes it to every proxy of its data center: one
// flipped bit in a lookup's value, index or status would be served for as
// long as the key stays cached. TCP's 16-bit checksum misses some damage,
// and TLS, which would catch it, is optional. The log stream and snapshots
// have their own CRC-framed records (package wire); these request-answer
// exchanges get this package.
//
// Handler wraps a server's handler: it hashes the request as received
// (method, request URI and body) and, once the handler answered, sends
//
//	Argent-Request-Sum: CRC-32C of the request as received (8 hex digits)
//	Argent-Sum:         CRC-32C of the status, every other Argent-* header and the body
//
// Transport wraps a client's transport: it hashes the request as sent,
// reads the whole answer and refuses it (ErrCorrupt) unless both sums are
// present and match. So a request damaged on the way (another key asked
// for) and an answer damaged on the way are both caught. Answers are
// buffered whole, which suits these bounded request-answer exchanges and
// not streams; streams checksum their own records.
package wirecheck

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Headers of a checked answer.
const (
	HeaderSum        = "Argent-Sum"
	HeaderRequestSum = "Argent-Request-Sum"
)

// ErrCorrupt marks an answer whose checksums are missing or do not match.
var ErrCorrupt = errors.New("wirecheck: answer damaged in transit")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// requestHash hashes what identifies a request: its method, request URI and
// body.
func requestHash(method, uri string) hash.Hash32 {
	h := crc32.New(castagnoli)
	_, _ = io.WriteString(h, method)
	_, _ = io.WriteString(h, " ")
	_, _ = io.WriteString(h, uri)
	_, _ = io.WriteString(h, "\n")
	return h
}

// answerSum hashes an answer: its status, its Argent-* headers but
// HeaderSum (by canonical name, sorted, every value) and its body.
func answerSum(status int, hd http.Header, body []byte) uint32 {
	h := crc32.New(castagnoli)
	_, _ = io.WriteString(h, strconv.Itoa(status))
	_, _ = io.WriteString(h, "\n")
	names := make([]string, 0, 4)
	for name := range hd {
		if strings.HasPrefix(name, "Argent-") && name != HeaderSum {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range hd[name] {
			_, _ = io.WriteString(h, name)
			_, _ = io.WriteString(h, ": ")
			_, _ = io.WriteString(h, v)
			_, _ = io.WriteString(h, "\n")
		}
	}
	_, _ = h.Write(body)
	return h.Sum32()
}

func formatSum(s uint32) string { return fmt.Sprintf("%08x", s) }

// Handler returns next with its answers checksummed (see the package doc).
// The answer is buffered whole before it is sent.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.RequestURI // as received
		if uri == "" {
			uri = r.URL.RequestURI()
		}
		rh := requestHash(r.Method, uri)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = hashedBody{ReadCloser: r.Body, h: rh}
		}
		bw := &bufferedWriter{header: make(http.Header)}
		next.ServeHTTP(bw, r)
		if bw.status == 0 && r.Context().Err() != nil {
			return // the asker left before an answer
		}
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		if r.Method == http.MethodHead {
			bw.body.Reset()
		}
		// A handler that answered without reading the whole body (an
		// error, mostly) still gets the sum of the request as sent: the
		// rest is read here, up to a bound.
		if hb, ok := r.Body.(hashedBody); ok {
			_, _ = io.Copy(io.Discard, io.LimitReader(hb, maxDrain))
		}
		hd := w.Header()
		for k, v := range bw.header {
			hd[k] = v
		}
		hd.Set(HeaderRequestSum, formatSum(rh.Sum32()))
		hd.Set(HeaderSum, formatSum(answerSum(bw.status, hd, bw.body.Bytes())))
		hd.Set("Content-Length", strconv.Itoa(bw.body.Len()))
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// maxDrain bounds the request body read after the handler.
const maxDrain = 1 << 20

// hashedBody hashes a request body as the handler reads it.
type hashedBody struct {
	io.ReadCloser
	h hash.Hash32
}

func (b hashedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	_, _ = b.h.Write(p[:n])
	return n, err
}

// bufferedWriter holds a handler's answer until it is checksummed.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// Transport is an http.RoundTripper that checks the answers of a Handler
// (see the package doc). An answer without both sums, with a sum that does
// not match, or longer than MaxBody fails the round trip with an error
// wrapping ErrCorrupt; the caller tries again or elsewhere, as after a
// broken connection.
type Transport struct {
	// Base sends the requests. Default http.DefaultTransport.
	Base http.RoundTripper
	// MaxBody bounds an answer's body. Default 128 MiB.
	MaxBody int64
	// OnCorrupt, if set, is called for every answer refused.
	OnCorrupt func(req *http.Request, err error)
}

// DefaultMaxBody is Transport's default MaxBody: two maximal batches.
const DefaultMaxBody = 128 << 20

// RoundTrip sends req and checks its answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rh := requestHash(req.Method, req.URL.RequestURI())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, fmt.Errorf("wirecheck: %s %s: a request body must be replayable (GetBody)", req.Method, req.URL.Path)
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("wirecheck: read request body: %w", err)
		}
		_, err = io.Copy(rh, body)
		body.Close()
		if err != nil {
			return nil, fmt.Errorf("wirecheck: read request body: %w", err)
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("wirecheck: read answer of %s: %w", req.URL.Redacted(), err)
	}
	if err := check(resp, body, rh.Sum32(), limit); err != nil {
		err = fmt.Errorf("%w: %s %s: %v", ErrCorrupt, req.Method, req.URL.Redacted(), err)
		if t.OnCorrupt != nil {
			t.OnCorrupt(req, err)
		}
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// check verifies an answer's sums against what was sent.
func check(resp *http.Response, body []byte, sent uint32, limit int64) error {
	if int64(len(body)) > limit {
		return fmt.Errorf("answer longer than %d bytes", limit)
	}
	got, want := resp.Header.Get(HeaderRequestSum), formatSum(sent)
	if got != want {
		return fmt.Errorf("the request arrived as %q, sent as %s", got, want)
	}
	sum := resp.Header.Get(HeaderSum)
	if sum == "" {
		return fmt.Errorf("no %s header", HeaderSum)
	}
	if want := formatSum(answerSum(resp.StatusCode, resp.Header, body)); sum != want {
		return fmt.Errorf("%s %s, computed %s", HeaderSum, sum, want)
	}
	return nil
}

// Client returns an *http.Client with hc's settings whose requests go
// through t, over hc's transport unless t.Base is set. A nil hc means
// http.DefaultClient.
func Client(hc *http.Client, t Transport) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if t.Base == nil {
		t.Base = hc.Transport
	}
	c := *hc
	c.Transport = &t
	return &c
}
