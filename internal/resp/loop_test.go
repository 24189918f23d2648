package resp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/resp"
)

// TestPipelineOrderAcrossHandOffs pipelines commands that the event loop
// answers (GET, ECHO) between commands that a goroutine runs (SET, SCAN):
// every reply must come in the order of the commands, and each GET must see
// the SET before it.
func TestPipelineOrderAcrossHandOffs(t *testing.T) {
	_, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	ctx := context.Background()
	for round := range 5 {
		p := c.Pipeline()
		type step struct {
			cmd  redis.Cmder
			want string // "": a nil reply
		}
		var steps []step
		for i := range 40 {
			k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d-%d", round, i)
			before := ""
			if round > 0 {
				before = fmt.Sprintf("v%d-%d", round-1, i)
			}
			steps = append(steps,
				step{p.Get(ctx, k), before},
				step{p.Set(ctx, k, v, 0), "OK"},
				step{p.Get(ctx, k), v},
				step{p.Echo(ctx, k), k})
			if i%10 == 9 {
				steps = append(steps, step{p.Do(ctx, "SCAN", "0", "MATCH", "k0*", "COUNT", "1"), "scan"})
			}
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		for i, s := range steps {
			switch cmd := s.cmd.(type) {
			case *redis.StringCmd:
				got, err := cmd.Result()
				if s.want == "" && errors.Is(err, redis.Nil) {
					continue
				}
				if err != nil || got != s.want {
					t.Fatalf("round %d, step %d (%v): %q, %v, want %q", round, i, cmd.Args(), got, err, s.want)
				}
			case *redis.StatusCmd:
				if got, err := cmd.Result(); err != nil || got != s.want {
					t.Fatalf("round %d, step %d (%v): %q, %v", round, i, cmd.Args(), got, err)
				}
			case *redis.Cmd:
				if page, err := cmd.Slice(); err != nil || len(page) != 2 {
					t.Fatalf("round %d, step %d (%v): %v, %v", round, i, cmd.Args(), page, err)
				}
			}
		}
	}
}

// TestInputSplitAcrossReads sends commands a few bytes at a time, so that
// the loop sees incomplete commands, also right after a hand-off.
func TestInputSplitAcrossReads(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	b.put(t, "a", "1")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	in := "*2\r\n$3\r\nGET\r\n$1\r\na\r\n" +
		"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\n22\r\n" +
		"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n" +
		"PING\r\n"
	for i := 0; i < len(in); i += 3 {
		if _, err := io.WriteString(nc, in[i:min(i+3, len(in))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	want := "$1\r\n1\r\n+OK\r\n$2\r\n22\r\n+PONG\r\n"
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
		t.Fatalf("replies %q, %v; want %q", got, err, want)
	}
}

// TestClientThatDoesNotRead checks that a client that sends reads but
// takes none of the replies cannot make the server hold unbounded replies
// or input: the server stops answering it, and closes it once the input it
// sent meanwhile passes the limit.
func TestClientThatDoesNotRead(t *testing.T) {
	b, s, addr := startServer(t, argent.Limits{})
	resp.SetMaxPending(s, 1<<20)
	b.put(t, "big", strings.Repeat("x", 64<<10))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	cmd := strings.Repeat("GET big\r\n", 64)
	deadline := time.Now().Add(10 * time.Second)
	nc.SetWriteDeadline(deadline)
	var werr error
	for time.Now().Before(deadline) {
		if _, werr = io.WriteString(nc, cmd); werr != nil {
			break
		}
	}
	if werr == nil {
		t.Fatal("the server kept taking commands from a client that reads no replies")
	}
	if ne, ok := werr.(net.Error); ok && ne.Timeout() {
		t.Fatalf("write timed out instead of the server closing: %v", werr)
	}
}

// TestInputWhileWaitingIsBounded checks that input sent while a command
// waits is queued only up to the limit.
func TestInputWhileWaitingIsBounded(t *testing.T) {
	_, s, addr := startServer(t, argent.Limits{})
	resp.SetMaxPending(s, 1<<20)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The GET waits for an index that never comes (200 ms in tests).
	if _, err := io.WriteString(nc, "READINDEX 1000\r\nGET a\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	if l, err := r.ReadString('\n'); err != nil || l != "+OK\r\n" {
		t.Fatalf("READINDEX: %q, %v", l, err)
	}
	floodUntilCut(t, nc, r, "a waiting command")
}

// floodUntilCut sends 6 MB of PINGs, past the 1 MiB limit the test set,
// and fails unless the server closes the connection.
func floodUntilCut(t *testing.T, nc net.Conn, r io.Reader, behind string) {
	t.Helper()
	chunk := strings.Repeat("PING\r\n", 10000)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var werr error
	for range 100 {
		if _, werr = io.WriteString(nc, chunk); werr != nil {
			break
		}
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, rerr := io.Copy(io.Discard, r)
	if ne, ok := rerr.(net.Error); werr == nil && ok && ne.Timeout() {
		t.Fatalf("connection still open after 6 MB of input behind %s: read %v", behind, rerr)
	}
}

// TestInputWhileWritesWaitIsBounded checks that input sent while the loop
// has SETs in flight is queued only up to the limit.
func TestInputWhileWritesWaitIsBounded(t *testing.T) {
	b, s, addr := startAsyncServer(t, argent.Limits{})
	b.refuse.Store(0)
	b.hold(t)
	resp.SetMaxPending(s, 1<<20)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "SET a 1\r\nGET a\r\n"); err != nil {
		t.Fatal(err)
	}
	floodUntilCut(t, nc, nc, "a SET in flight")
}

// TestSlowReaderGetsEveryReply pipelines more replies than the server
// keeps unsent for a connection, to a client that reads them slowly: the
// server waits for it, and every reply arrives whole and in order.
func TestSlowReaderGetsEveryReply(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	val := strings.Repeat("v", 64<<10)
	b.put(t, "big", val)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 200 // 13 MB of replies, past the 4 MiB the server keeps unsent
	go io.WriteString(nc, strings.Repeat("GET big\r\n", n)+"PING\r\n")
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReaderSize(nc, 4<<10)
	want := fmt.Sprintf("$%d\r\n%s\r\n", len(val), val)
	got := make([]byte, len(want))
	for i := range n {
		if i%20 == 0 {
			time.Sleep(20 * time.Millisecond) // a slow reader
		}
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("reply %d: %q..., %v", i, got[:min(len(got), 20)], err)
		}
	}
	if l, err := r.ReadString('\n'); err != nil || l != "+PONG\r\n" {
		t.Fatalf("last reply %q, %v", l, err)
	}
}

// localReader is the store as an api.LocalReader (as a proxy is): keys
// under "miss/" are not answered locally, as a proxy's misses, and Get
// counts the reads that had to wait. With hang set, Get of a miss waits
// until its context ends, as a proxy's miss at a replica that never
// answers, and then sends the context's error on hang.
type localReader struct {
	*kv.Store
	gets    atomic.Int64
	started chan struct{} // with hang: a value when a miss starts waiting
	hang    chan error
}

func (l *localReader) GetLocal(ctx context.Context, key []byte, at argent.Index) (argent.Value, bool, error) {
	if bytes.HasPrefix(key, []byte("miss/")) {
		return argent.Value{}, false, nil
	}
	v, err := l.Store.Get(ctx, key, at)
	return v, true, err
}

func (l *localReader) Get(ctx context.Context, key []byte, at argent.Index) (argent.Value, error) {
	l.gets.Add(1)
	if l.hang != nil && bytes.HasPrefix(key, []byte("miss/")) {
		l.started <- struct{}{}
		<-ctx.Done()
		l.hang <- ctx.Err()
		return argent.Value{}, fmt.Errorf("miss of %q: %w", key, ctx.Err())
	}
	return l.Store.Get(ctx, key, at)
}

// TestConn_ReadStopsWhenConnectionEnds checks that a read that must wait
// (a proxy's miss) gets a context that ends when its connection is reset
// by the client or when the server closes, so the miss stops asking.
func TestConn_ReadStopsWhenConnectionEnds(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(t *testing.T, s *resp.Server, nc *net.TCPConn)
	}{
		{"ClientReset", func(t *testing.T, _ *resp.Server, nc *net.TCPConn) {
			if err := nc.SetLinger(0); err != nil { // close with a reset
				t.Fatal(err)
			}
			nc.Close()
		}},
		{"ServerClose", func(t *testing.T, s *resp.Server, _ *net.TCPConn) {
			go s.Close()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, s, addr := startServer(t, argent.Limits{})
			l := &localReader{Store: b.store, started: make(chan struct{}, 1), hang: make(chan error, 1)}
			b.local.Store(l)
			b.put(t, "miss/a", "1")
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte("*2\r\n$3\r\nGET\r\n$6\r\nmiss/a\r\n")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-l.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the miss did not start within 5 s")
			}
			tt.end(t, s, nc.(*net.TCPConn))
			select {
			case err := <-l.hang:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("the miss ended with %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the miss's context did not end within 5 s of the connection's end")
			}
		})
	}
}

// TestLocalReaderOnLoop checks that at a node whose reads may need another
// node (a proxy), the reads it answers locally are answered on the loop,
// and a miss goes to a goroutine, with every reply in order.
func TestLocalReaderOnLoop(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	l := &localReader{Store: b.store}
	b.local.Store(l)
	b.put(t, "hit", "1", "miss/a", "2")
	c := newClient(t, addr)
	ctx := context.Background()
	for range 10 {
		if got, err := c.Get(ctx, "hit").Result(); err != nil || got != "1" {
			t.Fatalf("GET hit = %q, %v", got, err)
		}
	}
	if n := l.gets.Load(); n != 0 {
		t.Fatalf("%d local reads went through Get, want 0", n)
	}
	p := c.Pipeline()
	h1, m, h2, e := p.Get(ctx, "hit"), p.Get(ctx, "miss/a"), p.Get(ctx, "hit"), p.Echo(ctx, "e")
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if h1.Val() != "1" || m.Val() != "2" || h2.Val() != "1" || e.Val() != "e" {
		t.Fatalf("pipeline: %q %q %q %q", h1.Val(), m.Val(), h2.Val(), e.Val())
	}
	if n := l.gets.Load(); n == 0 {
		t.Fatal("the miss did not go through Get")
	}
	// After the miss the connection is back on the loop.
	before := l.gets.Load()
	if got, err := c.Get(ctx, "hit").Result(); err != nil || got != "1" || l.gets.Load() != before {
		t.Fatalf("GET hit after a miss = %q, %v; Get calls %d -> %d", got, err, before, l.gets.Load())
	}
}
