package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/limit"
)

// openPath reports whether a path is served without a token when the
// Server checks tokens: the node-to-node endpoints under /internal/ (which
// are authorised by the transport, not by client tokens), /v1/status
// (children probe their upstreams with it, and it holds no keys or values)
// and /metrics (scrapers).
func openPath(p string) bool {
	return strings.HasPrefix(p, "/internal/") || p == "/v1/status" || p == "/metrics"
}

// authenticate checks the bearer token of r, when the Server has rules and
// the path is not open. It returns r with the token in its context (for
// the per-key checks and for a write forwarded to the root), or the status
// of the 401 it sent.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, int) {
	a := s.opts.Auth
	if a == nil || openPath(r.URL.Path) {
		return r, 0
	}
	secret := auth.BearerToken(r.Header.Get("Authorization"))
	tok, err := a.Authenticate(secret)
	if err != nil {
		a.Refused(auth.Reason(err), auth.ProtoHTTP)
		w.Header().Set("WWW-Authenticate", `Bearer realm="argent"`)
		return r, s.writeError(w, r, err)
	}
	if !a.Allow(tok) {
		s.refusals.Inc(limit.Rate)
		w.Header().Set("Retry-After", "1")
		return r, s.writeCode(w, r, apiwire.CodeRateLimited, http.StatusTooManyRequests,
			fmt.Sprintf("argent: rate limited: token %q sent more requests than its rate allows; retry later", tok.Name))
	}
	return r.WithContext(auth.NewContext(r.Context(), tok, secret)), 0
}

// token returns the token r was authenticated with, or nil (anything goes)
// when the Server checks no tokens.
func (s *Server) token(r *http.Request) *auth.Token {
	if s.opts.Auth == nil {
		return nil
	}
	tok, _ := auth.FromContext(r.Context())
	return tok
}

// forbid answers 403 for a token without right on key.
func (s *Server) forbid(w http.ResponseWriter, r *http.Request, tok *auth.Token, right auth.Right, key []byte) int {
	s.opts.Auth.Refused(auth.ReasonForbidden, auth.ProtoHTTP)
	s.opts.Logger.Debug("api: forbidden", "token", tok.Name, "right", right.String(), "key", string(key), "path", r.URL.Path)
	return s.writeError(w, r, auth.Forbidden(tok, right, key))
}

// checkBatch finds the first key of b that tok may not touch: every op's
// key (a delete_prefix's prefix) needs the write right, and every
// condition's key both rights (a condition reads the key's mod index). It
// returns nil, 0 and false when tok may write the whole batch.
func checkBatch(tok *auth.Token, b *argent.Batch) ([]byte, auth.Right, bool) {
	if tok == nil {
		return nil, 0, false
	}
	for _, c := range b.Conditions {
		if !tok.Allowed(c.Key, auth.Read) {
			return c.Key, auth.Read, true
		}
		if !tok.Allowed(c.Key, auth.Write) {
			return c.Key, auth.Write, true
		}
	}
	for _, op := range b.Ops {
		if !tok.Allowed(op.Key, auth.Write) {
			return op.Key, auth.Write, true
		}
	}
	return nil, 0, false
}

// ScanRanges reads one scan page over ranges, disjoint prefixes in key
// order (auth.Token.ReadRanges: the part of a scan's prefix a token may
// read), as if they were one prefix: up to limit items after after, and
// whether more may follow.
func ScanRanges(ctx context.Context, st Reader, ranges [][]byte, after []byte, limit int, at argent.Index) ([]argent.Item, bool, error) {
	if len(ranges) == 1 {
		return st.Scan(ctx, ranges[0], after, limit, at)
	}
	var out []argent.Item
	for i, p := range ranges {
		if len(after) > 0 && bytes.Compare(after, p) > 0 && !bytes.HasPrefix(after, p) {
			continue // every key under p sorts before after
		}
		items, more, err := st.Scan(ctx, p, after, limit-len(out), at)
		if err != nil {
			return nil, false, err
		}
		out = append(out, items...)
		if len(out) >= limit {
			return out, more || i < len(ranges)-1, nil
		}
	}
	return out, false, nil
}
