package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
)

// servePut answers PUT /v1/kv/{key}: the body is the value, possibly empty.
func (s *Server) servePut(w http.ResponseWriter, r *http.Request, key string) int {
	limits := s.b.Limits().WithDefaults()
	kb := []byte(key)
	if err := limits.CheckKey(kb); err != nil {
		return s.writeError(w, r, err)
	}
	if tok := s.token(r); !tok.Allowed(kb, auth.Write) {
		return s.forbid(w, r, tok, auth.Write, kb) // before reading the value
	}
	if r.ContentLength > int64(limits.MaxValue) {
		return s.writeError(w, r, fmt.Errorf("%w: value of %d bytes is larger than the limit of %d", argent.ErrTooLarge, r.ContentLength, limits.MaxValue))
	}
	value, err := readValue(http.MaxBytesReader(w, r.Body, int64(limits.MaxValue)), r.ContentLength)
	if err != nil {
		if isMaxBytes(err) {
			err = fmt.Errorf("%w: value is larger than the limit of %d bytes", argent.ErrTooLarge, limits.MaxValue)
		} else {
			err = fmt.Errorf("%w: read value: %v", argent.ErrInvalid, err)
		}
		return s.writeError(w, r, err)
	}
	return s.write(w, r, limits, argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: kb, Value: value}}})
}

// readValue reads a whole value body, sized by its Content-Length when
// known. It is never nil.
func readValue(body io.Reader, n int64) ([]byte, error) {
	if n >= 0 {
		buf := make([]byte, n)
		// net/http ends the body at its Content-Length.
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(body); err != nil {
		return nil, err
	}
	if b.Len() == 0 {
		return []byte{}, nil
	}
	return b.Bytes(), nil
}

// serveDelete answers DELETE /v1/kv/{key}.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, key string) int {
	limits := s.b.Limits().WithDefaults()
	kb := []byte(key)
	if err := limits.CheckKey(kb); err != nil {
		return s.writeError(w, r, err)
	}
	return s.write(w, r, limits, argent.Batch{Ops: []argent.Op{{Type: argent.OpDelete, Key: kb}}})
}

// txnRequest mirrors apiwire.TxnRequest with pointers, so that a missing key,
// op or mod_index is told apart from an empty one. The tests check that the
// two types have the same JSON fields.
type txnRequest struct {
	Conditions []txnCondition `json:"conditions"`
	Ops        []txnOp        `json:"ops"`
}

type txnCondition struct {
	Key      *string       `json:"key"`
	ModIndex *argent.Index `json:"mod_index"`
}

type txnOp struct {
	Op    *string `json:"op"`
	Key   *string `json:"key"`
	Value []byte  `json:"value"`
}

// batch converts the request, refusing missing fields and unknown ops. It
// does not check the limits.
func (t *txnRequest) batch() (argent.Batch, error) {
	var b argent.Batch
	for i, c := range t.Conditions {
		if c.Key == nil {
			return b, invalidf("condition %d has no key", i)
		}
		if c.ModIndex == nil {
			return b, invalidf("condition %d has no mod_index (0 means the key must be absent)", i)
		}
		b.Conditions = append(b.Conditions, argent.Condition{Key: []byte(*c.Key), ModIndex: *c.ModIndex})
	}
	b.Ops = make([]argent.Op, 0, len(t.Ops))
	for i, o := range t.Ops {
		if o.Op == nil {
			return b, invalidf("op %d has no op", i)
		}
		if o.Key == nil {
			return b, invalidf("op %d has no key", i)
		}
		op, err := apiwire.TxnOp{Op: *o.Op, Key: *o.Key, Value: o.Value}.ToOp()
		if err != nil {
			return b, fmt.Errorf("op %d: %w", i, err)
		}
		if op.Type == argent.OpPut && op.Value == nil {
			op.Value = []byte{}
		}
		b.Ops = append(b.Ops, op)
	}
	return b, nil
}

// serveTxn answers POST /v1/txn: one atomic batch with conditions.
func (s *Server) serveTxn(w http.ResponseWriter, r *http.Request) int {
	limits := s.b.Limits().WithDefaults()
	req, err := readJSONRequest(w, r, jsonBodyLimit(limits), parseTxnJSON)
	if err != nil {
		return s.writeError(w, r, err)
	}
	b, err := req.batch()
	if err != nil {
		return s.writeError(w, r, err)
	}
	return s.write(w, r, limits, b)
}

// write checks b against the limits, commits it and answers {"index":N}.
func (s *Server) write(w http.ResponseWriter, r *http.Request, limits argent.Limits, b argent.Batch) int {
	if err := limits.CheckBatch(&b); err != nil {
		return s.writeError(w, r, err)
	}
	// The whole batch or nothing: one key outside the token's rights
	// refuses it all.
	if tok := s.token(r); tok != nil {
		if key, right, bad := checkBatch(tok, &b); bad {
			return s.forbid(w, r, tok, right, key)
		}
	}
	idx, err := s.b.Write(r.Context(), b)
	var re *RedirectError
	switch {
	case errors.As(err, &re):
		w.Header().Set("Location", strings.TrimSuffix(re.Addr, "/")+r.URL.RequestURI())
		return s.writeCode(w, r, apiwire.CodeUnavailable, http.StatusTemporaryRedirect,
			"argent: this node takes no writes; send them to "+re.Addr)
	case err != nil:
		return s.writeError(w, r, err)
	}
	return writeIndex(w, idx)
}

// RedirectError is an error a Backend's Write may return to send the client
// to the node that takes writes instead of forwarding the batch itself: the
// Server answers 307 Temporary Redirect with Location set to Addr followed by
// the request's path and query, and a JSON body with code "unavailable" for
// clients that do not follow redirects.
type RedirectError struct {
	// Addr is the base URL of the node to send writes to, such as
	// "http://10.0.0.1:7400".
	Addr string
}

func (e *RedirectError) Error() string {
	return "argent: writes go to " + e.Addr
}
