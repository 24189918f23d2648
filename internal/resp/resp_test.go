package resp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/resp"
)

// gnet's package-level goroutine pool (ants) starts its two housekeeping
// goroutines when the package is loaded; they are not the server's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"))
}

// TestManyReader checks that MGET and EXISTS read their keys in one GetMany
// when the node's reader has it (a proxy: one replica lookup for all its
// misses), with the same answers as key by key.
func TestManyReader(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	m := &manyReader{Store: b.store}
	b.many.Store(m)
	b.put(t, "a", "1", "b", "2")
	c := newClient(t, addr)
	ctx := context.Background()
	got, err := c.MGet(ctx, "a", "x", "b").Result()
	if err != nil || !slices.Equal(got, []any{"1", nil, "2"}) {
		t.Fatalf("MGET = %v, %v", got, err)
	}
	if n, err := c.Exists(ctx, "a", "x", "b", "a").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS = %d, %v, want 3", n, err)
	}
	if n := m.calls.Load(); n != 2 {
		t.Errorf("GetMany called %d times for one MGET and one EXISTS, want 2", n)
	}
}

// TestNotReady checks that a node without its first state answers every
// read with a NOTREADY error instead of nil replies, that writes still go
// through, and that reads are served once it is ready.
func TestNotReady(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	b.notReady.Store(true)
	c := newClient(t, addr)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		cmd  []any
	}{
		{"Get", []any{"GET", "a"}},
		{"MGet", []any{"MGET", "a", "b"}},
		{"Exists", []any{"EXISTS", "a"}},
		{"Scan", []any{"SCAN", "0"}},
		{"Del", []any{"DEL", "a"}}, // counts the keys it deletes by reading them
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Do(ctx, tt.cmd...).Err()
			if err == nil || !strings.HasPrefix(err.Error(), "NOTREADY ") || !strings.Contains(err.Error(), "first state") {
				t.Errorf("%v = %v, want a NOTREADY error", tt.cmd, err)
			}
		})
	}
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Errorf("SET on a node not ready = %v, want it forwarded as any write", err)
	}
	b.notReady.Store(false)
	if got, err := c.Get(ctx, "a").Result(); err != nil || got != "1" {
		t.Errorf("GET once ready = %q, %v, want 1", got, err)
	}
}

func TestCommands(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{MaxKey: 32, MaxValue: 64})
	c := newClient(t, addr)
	ctx := context.Background()

	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if got, err := c.Echo(ctx, "hi").Result(); err != nil || got != "hi" {
		t.Fatalf("ECHO = %q, %v", got, err)
	}
	if err := c.Get(ctx, "a").Err(); err != redis.Nil {
		t.Fatalf("GET missing: %v, want redis.Nil", err)
	}
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	b.put(t, "b", "2", "c", "")
	if got, err := c.Get(ctx, "a").Result(); err != nil || got != "1" {
		t.Fatalf("GET a = %q, %v", got, err)
	}
	if got, err := c.Get(ctx, "c").Result(); err != nil || got != "" {
		t.Fatalf("GET c = %q, %v", got, err)
	}
	got, err := c.MGet(ctx, "a", "x", "b").Result()
	if err != nil || !slices.Equal(got, []any{"1", nil, "2"}) {
		t.Fatalf("MGET = %v, %v", got, err)
	}
	if n, err := c.Exists(ctx, "a", "x", "b", "a").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS = %d, %v, want 3", n, err)
	}
	if n, err := c.Del(ctx, "a", "x", "a").Result(); err != nil || n != 1 {
		t.Fatalf("DEL = %d, %v, want 1", n, err)
	}
	if err := c.Get(ctx, "a").Err(); err != redis.Nil {
		t.Fatalf("GET after DEL: %v", err)
	}
	// Limits and options.
	if err := c.Set(ctx, strings.Repeat("k", 33), "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "ERR") {
		t.Fatalf("SET long key: %v", err)
	}
	if err := c.Set(ctx, "k", strings.Repeat("v", 65), 0).Err(); err == nil {
		t.Fatal("SET large value: no error")
	}
	if err := c.Get(ctx, strings.Repeat("k", 33)).Err(); err == nil || err == redis.Nil {
		t.Fatalf("GET long key: %v", err)
	}
	if err := c.Get(ctx, "").Err(); err == nil || err == redis.Nil {
		t.Fatalf("GET empty key: %v", err)
	}
	if err := c.Set(ctx, "k", "v", time.Minute).Err(); err == nil {
		t.Fatal("SET EX: no error")
	}
	if err := c.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Fatalf("SELECT 0: %v", err)
	}
	if err := c.Do(ctx, "SELECT", "1").Err(); err == nil {
		t.Fatal("SELECT 1: no error")
	}
	err = c.Do(ctx, "FLUSHALL").Err()
	if err == nil || err.Error() != "ERR unknown command 'FLUSHALL'" {
		t.Fatalf("FLUSHALL: %v", err)
	}
	if err := c.Do(ctx, "get").Err(); err == nil || !strings.Contains(err.Error(), "wrong number of arguments") {
		t.Fatalf("GET without key: %v", err)
	}
	// The connection still works after errors.
	if got, err := c.Do(ctx, "ping", "x").Text(); err != nil || got != "x" {
		t.Fatalf("PING x = %q, %v", got, err)
	}
}

func TestWriteError(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	ctx := context.Background()
	b.mu.Lock()
	b.writeErr = fmt.Errorf("root unreachable:\r\n%w", argent.ErrUnavailable)
	b.mu.Unlock()
	if err := c.Set(ctx, "a", "1", 0).Err(); err == nil || err.Error() != "ERR root unreachable:  argent: unavailable" {
		t.Fatalf("SET with failing Write: %v", err)
	}
	b.store.Close() // reads now fail
	if err := c.Get(ctx, "a").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
		t.Fatalf("GET on closed store: %v", err)
	}
}

func TestScan(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	ctx := context.Background()
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("egress/host/%02d", i)
		want = append(want, k)
		b.put(t, k, "v")
	}
	b.put(t, "egress/hosts", "v", "egress/hos", "v", "other", "v", "a*b", "v")

	var keys []string
	// go-redis parses cursors as integers, so page with raw commands.
	cur := "0"
	pages := 0
	for {
		res, err := c.Do(ctx, "SCAN", cur, "MATCH", "egress/host/*", "COUNT", "10").Slice()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		cur = res[0].(string)
		for _, k := range res[1].([]any) {
			keys = append(keys, k.(string))
		}
		pages++
		if cur == "0" {
			break
		}
		if pages > 10 {
			t.Fatal("SCAN does not end")
		}
	}
	if !slices.Equal(keys, want) || pages != 3 {
		t.Fatalf("SCAN pages %d keys %v", pages, keys)
	}
	// Exact key, escaped glob character, whole key space.
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"other", []string{"other"}},
		{"nope", nil},
		{`a\*b`, []string{"a*b"}},
		{"egress/hos*", append(append([]string{"egress/hos"}, want...), "egress/hosts")},
	} {
		res, err := c.Do(ctx, "scan", "0", "match", tc.pattern, "count", "100").Slice()
		if err != nil {
			t.Fatalf("SCAN %q: %v", tc.pattern, err)
		}
		var got []string
		for _, k := range res[1].([]any) {
			got = append(got, k.(string))
		}
		if res[0] != "0" || !slices.Equal(got, tc.want) {
			t.Errorf("SCAN %q = %v %v, want %v", tc.pattern, res[0], got, tc.want)
		}
	}
	all, cur2, err := c.Scan(ctx, 0, "", 1000).Result()
	if err != nil || cur2 != 0 || len(all) != 29 {
		t.Fatalf("SCAN all = %d keys, cursor %d, %v", len(all), cur2, err)
	}
	for _, p := range []string{"a*b", "*x", "a?", "[ab]*", "egress/**"} {
		err := c.Do(ctx, "SCAN", "0", "MATCH", p).Err()
		if err == nil || err.Error() != "ERR only prefix* patterns are supported" {
			t.Errorf("SCAN MATCH %q: %v", p, err)
		}
	}
	if err := c.Do(ctx, "SCAN", "zz").Err(); err == nil {
		t.Error("SCAN bad cursor: no error")
	}
}

func TestInfo(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	b.put(t, "a", "1")
	b.put(t, "a", "2")
	got, err := c.Info(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"# Replication", "role:replica", "argent_applied_index:2", "argent_root_index:4", "argent_lag_seconds:1.500", "argent_dataset_id:"} {
		if !strings.Contains(got, line) {
			t.Errorf("INFO lacks %q:\n%s", line, got)
		}
	}
}

func TestReadIndex(t *testing.T) {
	b, _, addr := startServer(t, argent.Limits{})
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	ctx := context.Background()
	i := b.put(t, "a", "1")
	if err := c.Do(ctx, "READINDEX", uint64(i)).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "a").Result(); err != nil || got != "1" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	// A read ahead of the store times out...
	if err := c.Do(ctx, "READINDEX", uint64(i+1)).Err(); err != nil {
		t.Fatal(err)
	}
	err := c.Get(ctx, "a").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "TIMEOUT") {
		t.Fatalf("GET ahead: %v, want TIMEOUT", err)
	}
	// ...and waits for a write that arrives in time. The writer is waited
	// for before the test ends, even when the GET fails: a write after the
	// store closed panics ("pebble: closed") and hides the failure.
	wrote := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, err := b.Write(context.Background(), argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("a"), Value: []byte("2")}}})
		wrote <- err
	}()
	defer func() {
		if err := <-wrote; err != nil {
			t.Errorf("put a=2: %v", err)
		}
	}()
	if got, err := c.Get(ctx, "a").Result(); err != nil || got != "2" {
		t.Fatalf("GET after wait = %q, %v", got, err)
	}
	if err := c.Do(ctx, "READINDEX", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "READINDEX", "x").Err(); err == nil {
		t.Fatal("READINDEX x: no error")
	}
}

// raw sends in on a new connection and returns what the server sends back
// until it closes the connection or a short deadline passes.
func raw(t *testing.T, addr, in string, closeWrite bool) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, in); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		nc.(*net.TCPConn).CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	out, _ := io.ReadAll(nc)
	return string(out)
}

func TestMalformed(t *testing.T) {
	_, _, addr := startServer(t, argent.Limits{})
	for _, tc := range []struct {
		name, in   string
		closeWrite bool
		want       string // prefix of the reply
	}{
		{"bad type byte", "*1\r\n+PING\r\n", false, "-ERR Protocol error"},
		{"huge bulk", "*1\r\n$9223372036854775807\r\n", false, "-ERR Protocol error"},
		{"overflowing bulk", "*1\r\n$99999999999999999999999\r\n", false, "-ERR Protocol error"},
		{"negative bulk", "*1\r\n$-5\r\n", false, "-ERR Protocol error"},
		{"huge multibulk", "*2000000\r\n", false, "-ERR Protocol error"},
		{"bad multibulk", "*x\r\n", false, "-ERR Protocol error"},
		{"missing CRLF", "*1\r\n$4\r\nPINGxx", false, "-ERR Protocol error"},
		{"long line", "*1\r\n$" + strings.Repeat("1", 70000), false, "-ERR Protocol error"},
		{"truncated", "*2\r\n$3\r\nGET\r\n$5\r\nab", true, ""},
		{"garbage", "\x00\xff\x01garbage\r\n", false, "-ERR unknown command '???garbage'"},
		{"inline", "PING\r\nECHO hi\n\r\n", false, "+PONG\r\n$2\r\nhi\r\n"},
		{"pipelined", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n*0\r\n*1\r\n$4\r\nquit\r\n", false, "+PONG\r\n$1\r\nx\r\n+OK\r\n"},
		// The same input behind a SET, which runs on a goroutine.
		{"bad type byte after a write", "*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n1\r\n*1\r\n+PING\r\n", false, "+OK\r\n-ERR Protocol error"},
		{"truncated after a write", "*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$5\r\nab", true, "+OK\r\n"},
		{"shut down after a write", "SET w 3\r\nGET w\r\nDEL w\r\nEXISTS w\r\n", true, "+OK\r\n$1\r\n3\r\n:1\r\n:0\r\n"},
		{"quit after a write", "SET w 2\r\nGET w\r\nQUIT\r\nPING\r\n", false, "+OK\r\n$1\r\n2\r\n+OK\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := raw(t, addr, tc.in, tc.closeWrite)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("reply %q, want prefix %q", got, tc.want)
			}
		})
	}
	// The server still answers.
	if got := raw(t, addr, "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n", false); got != "+PONG\r\n+OK\r\n" {
		t.Fatalf("after malformed input: %q", got)
	}
}

// TestCloseEndsConnections checks that Close ends idle connections and
// reads waiting for READINDEX, without leaking goroutines.
func TestCloseEndsConnections(t *testing.T) {
	b := newFakeBackend(t, argent.Limits{})
	s := resp.New(b, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waiting, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	io.WriteString(waiting, "READINDEX 100\r\nGET a\r\n")
	r := bufio.NewReader(waiting)
	if l, _ := r.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("READINDEX: %q", l)
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		// The waiting read may answer TIMEOUT before the close.
		if _, err := r.ReadString('\n'); err == nil {
			t.Fatal("connection still open")
		}
	}
	if err := s.Serve(ln); err != resp.ErrClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	b, _, addr := startServer(t, argent.Limits{})
	b.put(t, "greeting", "hello")
	_, port, _ := net.SplitHostPort(addr)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("PING"); got != "PONG" {
		t.Fatalf("redis-cli PING = %q", got)
	}
	if got := run("GET", "greeting"); got != "hello" {
		t.Fatalf("redis-cli GET = %q", got)
	}
	if got := run("--scan", "--pattern", "gree*"); got != "greeting" {
		t.Fatalf("redis-cli --scan = %q", got)
	}
	if got := run("NOSUCH", "x"); !strings.Contains(got, "unknown command 'NOSUCH'") {
		t.Fatalf("redis-cli NOSUCH = %q", got)
	}
	if bench, err := exec.LookPath("redis-benchmark"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bench, "-p", port, "-t", "ping,get,set", "-n", "2000", "-c", "4", "-q").CombinedOutput()
		if err != nil || strings.Contains(string(out), "WARNING") || strings.Contains(string(out), "rror") {
			t.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
	}
}

func TestLargeValueAndPipeline(t *testing.T) {
	_, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	ctx := context.Background()
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB: read in several chunks
	if err := c.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET big: %d bytes, %v", len(got), err)
	}
	small := big[:1000]
	if err := c.Set(ctx, "small", small, 0).Err(); err != nil {
		t.Fatal(err)
	}
	p := c.Pipeline()
	var cmds []*redis.StringCmd
	for i := range 200 {
		if i%2 == 0 {
			cmds = append(cmds, p.Get(ctx, "small"))
		} else {
			cmds = append(cmds, p.Echo(ctx, fmt.Sprint(i)))
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		want := small
		if i%2 == 1 {
			want = fmt.Sprint(i)
		}
		if cmd.Val() != want {
			t.Fatalf("pipelined reply %d: %d bytes", i, len(cmd.Val()))
		}
	}
}
