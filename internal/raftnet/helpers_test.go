package raftnet_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/raftnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testGroup is the group of the tests' members unless a test says otherwise.
var testGroup = argent.DatasetID{0xa1, 0xb2}

// member is one Transport served by an httptest server on 127.0.0.1, with
// what it received and what it was told.
type member struct {
	id   uint64
	tr   *raftnet.Transport
	srv  *httptest.Server
	addr string
	got  *inbox
	rep  *reports
	logs *logRecorder
}

// newMember starts a member with the test defaults (fast retries), edited by
// opts, and closes it at cleanup.
func newMember(t testing.TB, id uint64, opts ...func(*raftnet.Config)) *member {
	t.Helper()
	m := startMember(t, id, opts...)
	t.Cleanup(m.close)
	return m
}

// startMember is newMember without the cleanup.
func startMember(t testing.TB, id uint64, opts ...func(*raftnet.Config)) *member {
	t.Helper()
	m := &member{id: id, got: &inbox{}, rep: &reports{}, logs: &logRecorder{}}
	cfg := raftnet.Config{
		ID:           id,
		Group:        testGroup,
		Deliver:      m.got.add,
		Unreachable:  m.rep.unreachable,
		SnapshotDone: m.rep.snapshotDone,
		Logger:       slog.New(m.logs),
		RetryMin:     5 * time.Millisecond,
		RetryMax:     50 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m.tr = raftnet.New(cfg)
	mux := http.NewServeMux()
	mux.Handle(raftnet.Path, m.tr.Handler())
	m.srv = httptest.NewServer(mux)
	m.addr = m.srv.Listener.Addr().String()
	return m
}

// close closes the transport, then the server (whose Close waits for the
// handlers the transport ends).
func (m *member) close() {
	_ = m.tr.Close()
	m.srv.Close()
}

// connect makes each member a peer of every other one, at its own address.
func connect(ms ...*member) {
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.tr.SetPeer(b.id, b.addr)
			}
		}
	}
}

// msg returns a MsgApp from from to to with index i, the tests' way to
// number messages.
func msg(from, to, i uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(from), To: new(to), Index: new(i), Term: new(uint64(1))}
}

// inbox is a Deliver that keeps what it is given. block, when set, makes
// Deliver wait until it is closed.
type inbox struct {
	mu    sync.Mutex
	msgs  []*raftpb.Message
	block chan struct{}
}

func (b *inbox) add(m *raftpb.Message) {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block != nil {
		<-block
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

// from returns the indexes of the messages received from id, in order.
func (b *inbox) from(id uint64) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	for _, m := range b.msgs {
		if m.GetFrom() == id {
			out = append(out, m.GetIndex())
		}
	}
	return out
}

func (b *inbox) all() []*raftpb.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// reports records the Unreachable and SnapshotDone calls.
type reports struct {
	mu    sync.Mutex
	unr   map[uint64]int
	snaps []snapResult
}

type snapResult struct {
	id uint64
	ok bool
}

func (r *reports) unreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unr == nil {
		r.unr = make(map[uint64]int)
	}
	r.unr[id]++
}

func (r *reports) snapshotDone(id uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, snapResult{id, ok})
}

func (r *reports) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unr[id]
}

func (r *reports) snapshots() []snapResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.snaps)
}

// logRecorder is a slog.Handler that keeps every record, to check what a
// member logged and how often.
type logRecorder struct {
	mu      sync.Mutex
	records []string // "LEVEL msg key=value ..."
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, b.String())
	return nil
}

// matching returns the records that contain every one of subs.
func (l *logRecorder) matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(r, s)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing t after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// seq returns 1..n.
func seq(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}
