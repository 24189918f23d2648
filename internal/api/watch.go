package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/limit"
	"github.com/argent-kv/argent/internal/logstore"
)

// watchChunkBytes bounds the log bytes one Store.ReadLog call reads. The
// stream is flushed after every chunk, and the context and the progress
// ticker are checked between chunks.
const watchChunkBytes = 256 << 10

var noCache = []string{"no-cache"}

// serveWatch answers GET /v1/watch?prefix=P&from=N with newline-delimited
// JSON: every batch from N on that touches P (only its ops that do), in
// order, then new ones as they are applied, with progress markers at least
// every Options.ProgressInterval, until the client goes or Close is called.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) int {
	raw := r.URL.RawQuery
	prefix, _, err := queryParam(raw, "prefix")
	if err != nil {
		return s.writeError(w, r, err)
	}
	from, err := queryIndex(raw, "from")
	if err != nil {
		return s.writeError(w, r, err)
	}
	st := s.b.Reader()
	if from == 0 {
		from = st.Applied() + 1
	}
	if first := st.LogFirst(); from < first {
		return s.writeError(w, r, fmt.Errorf("%w: log starts at %d, asked for %d", argent.ErrCompacted, first, from))
	}
	if max := s.opts.MaxWatchers; max > 0 {
		n := s.watchers.Add(1)
		defer s.watchers.Add(-1)
		if n > int64(max) {
			s.refusals.Inc(limit.Watchers)
			return s.writeCode(w, r, apiwire.CodeOverloaded, http.StatusServiceUnavailable,
				fmt.Sprintf("argent: overloaded: the node has %d watch streams open, its limit; retry later", max))
		}
	}
	rc := http.NewResponseController(w)
	// A stream outlives any write timeout of the http.Server.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h["Content-Type"] = ndjsonType
	h["Cache-Control"] = noCache
	h["X-Content-Type-Options"] = noSniff
	h[apiwire.HeaderTier] = s.tierValue()
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return http.StatusOK
	}
	if err := rc.Flush(); err != nil {
		return http.StatusOK
	}
	if s.metrics != nil {
		s.metrics.watchers.Inc()
		defer s.metrics.watchers.Dec()
	}
	ws := &watchStream{s: s, st: st, w: w, rc: rc, prefix: []byte(prefix), next: from, tok: s.token(r)}
	if ws.tok != nil {
		ws.secret = auth.SecretFromContext(r.Context())
	}
	ws.enc = json.NewEncoder(w)
	ws.enc.SetEscapeHTML(false)
	ws.run(r.Context())
	return http.StatusOK
}

// watchStream is one watch after its headers were sent.
type watchStream struct {
	s      *Server
	st     Reader
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *json.Encoder
	prefix []byte

	// tok is the token the stream shows ops to (nil: all); secret is what
	// the client presented, checked again at each progress marker so that
	// a reload that removes or narrows the token reaches open streams.
	tok    *auth.Token
	secret string

	next argent.Index // the next log index to look at
	ops  []argent.Op  // scratch: the matching ops of one entry
	err  error        // the first write error: the client is gone
}

// run streams until ctx is done, the Server closes, or a write or the log
// fails.
func (ws *watchStream) run(ctx context.Context) {
	ticker := time.NewTicker(ws.s.opts.ProgressInterval)
	defer ticker.Stop()
	first := true
	for {
		// Take the channel before looking at Applied so no advance is missed.
		changed := ws.st.Changed()
		for ws.next <= ws.st.Applied() {
			next, err := ws.st.ReadLog(ws.next, watchChunkBytes, ws.entry)
			if err == nil && next == ws.next {
				// Cannot happen: entries are stored before Applied moves.
				err = fmt.Errorf("%w: log has no entry %d, applied %d", argent.ErrCorruption, next, ws.st.Applied())
			}
			ws.next = next
			if ws.err != nil {
				return
			}
			if err != nil {
				ws.fail(err)
				return
			}
			if !ws.flush() {
				return
			}
			select {
			case <-ticker.C:
				if !ws.progress() {
					return
				}
			case <-ctx.Done():
				return
			case <-ws.s.done:
				return
			default:
			}
		}
		if first {
			// Tell the client at once how far the stream has come.
			first = false
			if !ws.progress() {
				return
			}
		}
		select {
		case <-changed:
		case <-ticker.C:
			if !ws.progress() {
				return
			}
		case <-ctx.Done():
			return
		case <-ws.s.done:
			return
		}
	}
}

// entry is the Store.ReadLog callback: it sends e's ops that touch the
// prefix, if any.
func (ws *watchStream) entry(e *logstore.Entry) bool {
	ws.ops = ws.ops[:0]
	for _, op := range e.Ops {
		if matchOp(ws.prefix, &op) && visible(ws.tok, &op) {
			ws.ops = append(ws.ops, op)
		}
	}
	if len(ws.ops) == 0 {
		return true
	}
	if err := ws.enc.Encode(apiwire.NewWatchLine(e.Index, ws.ops)); err != nil {
		ws.err = err
		return false
	}
	return true
}

// matchOp reports whether op touches a key under prefix: its key starts with
// prefix, or it deletes a prefix of prefix (and so every key under it).
func matchOp(prefix []byte, op *argent.Op) bool {
	return bytes.HasPrefix(op.Key, prefix) ||
		op.Type == argent.OpDeletePrefix && bytes.HasPrefix(prefix, op.Key)
}

// visible reports whether tok may see op: read on its key, or for a
// delete_prefix, read on some key it may delete.
func visible(tok *auth.Token, op *argent.Op) bool {
	if op.Type == argent.OpDeletePrefix {
		return tok.Touches(op.Key)
	}
	return tok.Allowed(op.Key, auth.Read)
}

// upTo returns the index through which every matching batch was sent: the
// last index looked at, but no more than the store's applied index (a watch
// from a future index has not looked at anything yet).
func (ws *watchStream) upTo() argent.Index {
	return min(ws.next-1, ws.st.Applied())
}

// progress sends and flushes a progress marker. A stream whose token is
// no longer valid ends with an error line instead.
func (ws *watchStream) progress() bool {
	if ws.tok != nil {
		tok, err := ws.s.opts.Auth.Authenticate(ws.secret)
		if err != nil {
			ws.s.opts.Auth.Refused(auth.Reason(err), auth.ProtoHTTP)
			ws.fail(err)
			return false
		}
		ws.tok = tok
	}
	if err := ws.enc.Encode(apiwire.NewProgressLine(ws.upTo())); err != nil {
		ws.err = err
		return false
	}
	return ws.flush()
}

func (ws *watchStream) flush() bool {
	if err := ws.rc.Flush(); err != nil {
		ws.err = err
		return false
	}
	return true
}

// fail ends the stream with an error line, for a log that can no longer
// serve it (trimmed under a slow watcher, say).
func (ws *watchStream) fail(err error) {
	_, body := apiwire.NewErrorBody(err)
	level := ws.s.opts.Logger.Warn
	if !errors.Is(err, argent.ErrCompacted) && !errors.Is(err, argent.ErrUnauthorized) {
		level = ws.s.opts.Logger.Error
	}
	level("api: watch stream ended", "prefix", string(ws.prefix), "next", ws.next, "err", err)
	_ = ws.enc.Encode(apiwire.WatchLine{Index: ws.upTo(), Error: &body.Error})
	ws.flush()
}
