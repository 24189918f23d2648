package raftnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/wire"
)

// Handler returns the handler of the streams other members open to this
// one; the node mounts it at Path. It must get the server's own
// ResponseWriter (or one with an Unwrap method): a stream reads its request
// while the answer is open, and clears the server's read and write
// deadlines, through an http.ResponseController.
func (t *Transport) Handler() http.Handler { return http.HandlerFunc(t.serveStream) }

// inbound is one stream another member opened to this one.
type inbound struct {
	from  uint64
	group argent.DatasetID
	rc    *http.ResponseController
	done  chan struct{} // closed when its handler is done with it

	mu struct {
		sync.Mutex
		closed bool
	}
}

// close makes the stream's reads fail at once, so that its handler
// returns: Close, SetGroup, or a newer stream from the same sender. A
// Deliver in progress is not interrupted.
func (in *inbound) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.mu.closed {
		in.mu.closed = true
		_ = in.rc.SetReadDeadline(time.Now())
	}
}

func (in *inbound) isClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mu.closed
}

// serveStream admits a stream, answers 200 at once, and delivers its
// messages in order until it ends.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: raftnet: method %s not allowed on %s; allowed: POST",
			argent.ErrInvalid, r.Method, r.URL.Path))
		return
	}
	from, group, status, err := t.admit(r)
	if err != nil {
		t.refusedLog.Do(func() {
			t.cfg.Logger.Warn("raftnet: stream refused", "remote", r.RemoteAddr, "from", r.Header.Get(HeaderFrom), "err", err)
		})
		writeError(w, status, err)
		return
	}
	rc := http.NewResponseController(w)
	// Over HTTP/1 net/http must be told that the handler reads the request
	// while the answer is open; HTTP/2 always allows it (ErrNotSupported).
	_ = rc.EnableFullDuplex()
	// A stream outlives any deadline the node's server sets for requests.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	in := &inbound{from: from, group: group, rc: rc, done: make(chan struct{})}
	prev, received, err := t.register(in)
	if err != nil {
		close(in.done)
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	defer t.unregister(in)
	// A sender has one stream at a time: a new one means the old one is
	// dead to the sender (it reconnected before this side noticed). Wait
	// for the old handler, so that Deliver keeps its order for the sender.
	if prev != nil {
		select {
		case <-prev.done:
		case <-t.done:
			writeError(w, http.StatusServiceUnavailable, errClosed)
			return
		case <-r.Context().Done():
			return
		}
	}
	// The sender holds the body back until it hears 100 Continue (see
	// peer.connect); net/http would send it only at the first read, after
	// the answer, and a 200 before it would tell the sender not to send.
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		t.cfg.Logger.Debug("raftnet: stream answer", "from", from, "remote", r.RemoteAddr, "err", err)
		return
	}
	err = t.receive(r.Body, from, received)
	switch {
	case in.isClosed() || errors.Is(err, io.EOF):
		// Closed by this side, or ended by the sender.
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The sender went away or dropped the stream without ending its
		// body (a restart, a kill, a replaced stream): a cut, not damage.
		t.cfg.Logger.Debug("raftnet: stream cut", "from", from, "remote", r.RemoteAddr, "err", err)
	case errors.Is(err, argent.ErrCorruption):
		t.corruptLog.Do(func() {
			t.cfg.Logger.Error("raftnet: corrupt stream closed", "from", from, "remote", r.RemoteAddr, "err", err)
		})
	default:
		t.cfg.Logger.Debug("raftnet: stream ended", "from", from, "remote", r.RemoteAddr, "err", err)
	}
	if !errors.Is(err, io.EOF) {
		// Tell the sender why, for its log.
		reason := err
		if in.isClosed() {
			reason = errStreamDone
		}
		_, _ = fmt.Fprintf(w, "%v\n", reason)
		_ = rc.Flush()
	}
	// The server reads what is left of the request before it reuses the
	// connection; a live sender would hold it, so fail that read at once.
	_ = rc.SetReadDeadline(time.Now())
}

// admit checks a stream's headers: protocol version, the receiver it
// expects, its sender and group. It returns the sender and its group, or
// the status and error of a refusal.
func (t *Transport) admit(r *http.Request) (uint64, argent.DatasetID, int, error) {
	h := r.Header
	if v := h.Get(HeaderProtocol); v != ProtocolVersion {
		return 0, argent.DatasetID{}, http.StatusBadRequest,
			fmt.Errorf("%w: raftnet: protocol version %q, this member speaks %q", argent.ErrInvalid, v, ProtocolVersion)
	}
	to, err := strconv.ParseUint(h.Get(HeaderTo), 10, 64)
	if err != nil {
		return 0, argent.DatasetID{}, http.StatusBadRequest, fmt.Errorf("%w: raftnet: receiver ID: %w", argent.ErrInvalid, err)
	}
	if to != t.cfg.ID {
		// The sender's address book is wrong: another member listens here.
		return 0, argent.DatasetID{}, http.StatusMisdirectedRequest,
			fmt.Errorf("%w: raftnet: stream for member %d reached member %d", argent.ErrInvalid, to, t.cfg.ID)
	}
	from, err := strconv.ParseUint(h.Get(HeaderFrom), 10, 64)
	if err != nil || from == 0 {
		return 0, argent.DatasetID{}, http.StatusBadRequest, fmt.Errorf("%w: raftnet: sender ID %q", argent.ErrInvalid, h.Get(HeaderFrom))
	}
	if from == t.cfg.ID {
		return 0, argent.DatasetID{}, http.StatusBadRequest,
			fmt.Errorf("%w: raftnet: stream from member %d, which is this member's own ID", argent.ErrInvalid, from)
	}
	var group argent.DatasetID
	if v := h.Get(HeaderGroup); v != "" {
		if group, err = argent.ParseDatasetID(v); err != nil {
			return 0, argent.DatasetID{}, http.StatusBadRequest, fmt.Errorf("%w: raftnet: group: %w", argent.ErrInvalid, err)
		}
	}
	if ours := t.group(); !groupsMatch(group, ours) {
		return 0, argent.DatasetID{}, http.StatusConflict,
			fmt.Errorf("%w: raftnet: stream from member %d of group %s, this member is in %s", argent.ErrDatasetMismatch, from, group, ours)
	}
	return from, group, 0, nil
}

// groupsMatch reports whether members of groups a and b may talk: the same
// group, or one not known yet (zero; see Config.Group).
func groupsMatch(a, b argent.DatasetID) bool { return a == b || a.IsZero() || b.IsZero() }

// register makes in the open stream of its sender and returns the one it
// replaces, which it closes, and the sender's message counter.
func (t *Transport) register(in *inbound) (*inbound, *atomic.Uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil, nil, errClosed
	}
	prev := t.mu.inbound[in.from]
	if prev != nil {
		prev.close()
	}
	t.mu.inbound[in.from] = in
	n := t.mu.received[in.from]
	if n == nil {
		n = new(atomic.Uint64)
		t.mu.received[in.from] = n
	}
	t.wg.Add(1)
	return prev, n, nil
}

// unregister forgets in once its handler is done with it.
func (t *Transport) unregister(in *inbound) {
	t.mu.Lock()
	if t.mu.inbound[in.from] == in {
		delete(t.mu.inbound, in.from)
	}
	t.mu.Unlock()
	close(in.done)
	t.wg.Done()
}

// receive reads frames from body and delivers their messages, in order,
// until the stream ends or breaks. A frame that fails its checks, a message
// that does not decode, and a message not from the stream's sender to this
// member each end it with an error wrapping argent.ErrCorruption.
func (t *Transport) receive(body io.Reader, from uint64, received *atomic.Uint64) error {
	fr := wire.NewReader(body, MaxMessageSize)
	for {
		typ, payload, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		if typ != wire.FrameRaftMessage {
			return fmt.Errorf("%w: raftnet: frame of type %d in a Raft stream", argent.ErrCorruption, typ)
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("%w: raftnet: decode message: %w", argent.ErrCorruption, err)
		}
		if m.GetFrom() != from || m.GetTo() != t.cfg.ID {
			return fmt.Errorf("%w: raftnet: message from %d to %d in the stream from %d to %d",
				argent.ErrCorruption, m.GetFrom(), m.GetTo(), from, t.cfg.ID)
		}
		t.cfg.Deliver(m)
		received.Add(1)
	}
}

// writeError answers err as the API's JSON error with the given status.
func writeError(w http.ResponseWriter, status int, err error) {
	b, merr := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeOf(err), Message: err.Error()}})
	if merr != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"raftnet: cannot encode error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
