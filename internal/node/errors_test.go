package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// httpAnswer is an HTTP answer with its body and decoded error, if any.
type httpAnswer struct {
	status int
	header http.Header
	body   []byte
	err    apiwire.ErrorDetail // zero unless the body is a JSON error
}

func (a httpAnswer) String() string {
	return fmt.Sprintf("%d %s %q", a.status, a.header.Get("Content-Type"), a.body)
}

// do sends one request to addr with the default client.
func do(t *testing.T, method, addr, path, body string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) httpAnswer {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := httpAnswer{status: resp.StatusCode, header: resp.Header, body: b}
	var eb apiwire.ErrorBody
	if json.Unmarshal(b, &eb) == nil {
		a.err = eb.Error
	}
	return a
}

// TestNode_NotReadyUntilFirstState starts a replica (and a proxy below it)
// whose upstream is cut: before it reaches its first state every read
// answers 503 not_ready, over HTTP and RESP, never 404. Once the link
// comes back it serves: after the root's entries, or at once for an empty
// dataset, which the upstream's heartbeat tells it.
func TestNode_NotReadyUntilFirstState(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes int
	}{
		{name: "EmptyDataset", writes: 0},
		{name: "Dataset", writes: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := start(t, node.Config{Role: node.RoleRoot})
			if tt.writes > 0 {
				write(t, newClient(t, root), tt.writes, "k")
			}
			p := faultproxy.Start(t, root.Addr())
			p.Cut()
			replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{p.Addr()}, RESPListen: "127.0.0.1:0"})
			proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{replica.Addr()}, CacheSize: 16 << 20})
			reads := []struct{ name, method, path, body string }{
				{"Get", "GET", "/v1/kv/k/0000", ""},
				{"GetMinIndex", "GET", "/v1/kv/k/0000?min_index=0", ""},
				{"MGet", "POST", "/v1/mget", `{"keys":["k/0000","x"]}`},
				{"Scan", "GET", "/v1/kv?prefix=k/", ""},
			}
			for _, n := range []*node.Node{replica, proxy} {
				role := n.Status().Role
				for _, r := range reads {
					a := do(t, r.method, n.Addr(), r.path, r.body)
					if a.status != http.StatusServiceUnavailable || a.err.Code != apiwire.CodeNotReady || a.header.Get(apiwire.HeaderIndex) != "0" {
						t.Errorf("%s %s before its first state: %v, want 503 %s at index 0", role, r.name, a, apiwire.CodeNotReady)
					}
				}
				_, err := newClient(t, n).Get(context.Background(), []byte("k/0000"), client.ReadOptions{})
				if !errors.Is(err, argent.ErrUnavailable) || errors.Is(err, argent.ErrNotFound) {
					t.Errorf("%s: client Get = %v, want an error wrapping ErrUnavailable", role, err)
				}
			}
			rc := redis.NewClient(&redis.Options{Addr: replica.RESPAddr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
			t.Cleanup(func() { rc.Close() })
			if err := rc.Get(context.Background(), "k/0000").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOTREADY") {
				t.Errorf("RESP GET before the first state = %v, want NOTREADY", err)
			}

			// A read with min_index waits for the node to get there, as
			// for any index not reached yet.
			waited := make(chan httpAnswer, 1)
			if tt.writes > 0 {
				go func() {
					resp, err := http.Get("http://" + replica.Addr() + "/v1/kv/k/0000?min_index=1&wait=20s")
					if err != nil {
						waited <- httpAnswer{body: []byte(err.Error())}
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					waited <- httpAnswer{status: resp.StatusCode, header: resp.Header, body: b}
				}()
				time.Sleep(50 * time.Millisecond) // let it start waiting
			}

			p.Restore()
			if tt.writes > 0 {
				if a := <-waited; a.status != http.StatusOK {
					t.Errorf("GET with min_index=1 sent before the first state = %v, want 200 once it came", a)
				}
			}
			want := http.StatusNotFound
			if tt.writes > 0 {
				want = http.StatusOK
			}
			for _, n := range []*node.Node{replica, proxy} {
				waitFor(t, 20*time.Second, func() error {
					if a := do(t, "GET", n.Addr(), "/v1/kv/k/0000", ""); a.status != want {
						return fmt.Errorf("%s: GET = %v, want %d", n.Status().Role, a, want)
					}
					return nil
				})
			}
			if err := rc.Get(context.Background(), "k/0000").Err(); err != nil && (tt.writes > 0 || err != redis.Nil) {
				t.Errorf("RESP GET once ready = %v", err)
			}
		})
	}
}

// TestNode_WriteRootUnreachable checks that a write a replica cannot get to
// the root answers 503 root_unreachable naming the address that failed,
// whether the replica's own upstream is down, one further up is, or it has
// never reached one.
func TestNode_WriteRootUnreachable(t *testing.T) {
	check := func(t *testing.T, n *node.Node, addr string) {
		t.Helper()
		a := do(t, "PUT", n.Addr(), "/v1/kv/w", "v")
		if a.status != http.StatusServiceUnavailable || a.err.Code != apiwire.CodeRootUnreachable || !strings.Contains(a.err.Message, addr) {
			t.Errorf("PUT = %v, want 503 %s naming %s", a, apiwire.CodeRootUnreachable, addr)
		}
		_, err := newClient(t, n).Put(context.Background(), []byte("w"), []byte("v"))
		var ce *apiwire.Error
		if !errors.As(err, &ce) || ce.Code != apiwire.CodeRootUnreachable || !errors.Is(err, argent.ErrUnavailable) {
			t.Errorf("client Put = %v, want a %s error wrapping ErrUnavailable", err, apiwire.CodeRootUnreachable)
		}
	}
	t.Run("RootDown", func(t *testing.T) {
		root := start(t, node.Config{Role: node.RoleRoot})
		replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
		waitApplied(t, replica, write(t, newClient(t, root), 1, "a"))
		root.Close()
		check(t, replica, root.Addr())
	})
	t.Run("RootDownTwoHops", func(t *testing.T) {
		root := start(t, node.Config{Role: node.RoleRoot})
		mid := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}})
		leaf := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{mid.Addr()}})
		waitApplied(t, leaf, write(t, newClient(t, root), 1, "a"))
		root.Close()
		check(t, leaf, root.Addr()) // mid's answer, passed on
	})
	t.Run("NoUpstreamYet", func(t *testing.T) {
		root := start(t, node.Config{Role: node.RoleRoot})
		p := faultproxy.Start(t, root.Addr())
		p.Cut()
		replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{p.Addr()}})
		check(t, replica, p.Addr())
	})
}

// TestNode_ErrorsAreJSON checks that unknown paths and wrong methods get
// JSON errors, on connections the fast lane serves (a lane request first)
// and on ones net/http serves from the start, including the node-to-node
// routes' wrong methods.
func TestNode_ErrorsAreJSON(t *testing.T) {
	n := start(t, node.Config{Role: node.RoleRoot})
	for _, tt := range []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"UnknownPath", "GET", "/nope", 404, apiwire.CodeNotFound},
		{"UnknownUnderV1", "GET", "/v1/nothing", 404, apiwire.CodeNotFound},
		{"UnknownUnderInternal", "GET", "/internal/v1/nothing", 404, apiwire.CodeNotFound},
		{"UnknownPost", "POST", "/nope", 404, apiwire.CodeNotFound},
		{"WrongMethodOnKey", "POST", "/v1/kv/a", 405, apiwire.CodeInvalid},
		{"WrongMethodOnMGet", "GET", "/v1/mget", 405, apiwire.CodeInvalid},
		{"WrongMethodOnLog", "POST", "/internal/v1/log", 405, apiwire.CodeInvalid},
		{"PatchOnKey", "PATCH", "/v1/kv/a", 405, apiwire.CodeInvalid},
	} {
		for _, lane := range []bool{true, false} {
			name := tt.name + map[bool]string{true: "AfterLane", false: "NetHTTP"}[lane]
			t.Run(name, func(t *testing.T) {
				var a httpAnswer
				if lane {
					a = afterLaneRequest(t, n.Addr(), tt.method, tt.path)
				} else {
					a = do(t, tt.method, n.Addr(), tt.path, "")
				}
				if a.status != tt.status || a.err.Code != tt.code || a.err.Message == "" || a.header.Get("Content-Type") != "application/json" {
					t.Errorf("%s %s = %v, want %d JSON %s", tt.method, tt.path, a, tt.status, tt.code)
				}
			})
		}
	}
}

// afterLaneRequest sends, on one keep-alive connection, a request the fast
// lane serves and then method path, and returns the second answer.
func afterLaneRequest(t *testing.T, addr, method, path string) httpAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	raw := "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n" +
		method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var a httpAnswer
	for i := range 2 {
		req, _ := http.NewRequest(method, path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		a = readAnswer(t, resp)
		resp.Body.Close()
		if i == 0 && a.status != http.StatusOK {
			t.Fatalf("lane request /v1/status = %v", a)
		}
	}
	return a
}

// holdEnv names the data directory TestNode_HoldDataDir holds open, in the
// child process TestNode_DataDirInUse starts.
const holdEnv = "ARGENT_TEST_HOLD_DATA_DIR"

// TestNode_HoldDataDir is not a test: run by TestNode_DataDirInUse as a
// child process, it opens the store in $ARGENT_TEST_HOLD_DATA_DIR, says
// "locked" and holds it until its stdin closes.
func TestNode_HoldDataDir(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process of TestNode_DataDirInUse")
	}
	s, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestNode_DataDirInUse checks that a node started on a data directory
// another node holds, in this process or another, fails with an error that
// says so and names the lock file, not "resource temporarily unavailable".
func TestNode_DataDirInUse(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hold  func(t *testing.T, dir string)
		want  string
		errno error // the lock error the message explains, if any
	}{
		{name: "OtherProcess", hold: holdInChild, want: "is in use by another process", errno: syscall.EAGAIN},
		{name: "SameProcess", hold: func(t *testing.T, dir string) {
			start(t, node.Config{Role: node.RoleReplica, DataDir: dir, Upstreams: []string{"127.0.0.1:1"}})
		}, want: "is in use by another node of this process"},
	} {
		for _, role := range []string{node.RoleRoot, node.RoleProxy} {
			t.Run(tt.name+"/"+role, func(t *testing.T) {
				dir := t.TempDir()
				tt.hold(t, dir)
				cfg := node.Config{Role: role, DataDir: dir, Listen: "127.0.0.1:0"}
				if role == node.RoleProxy {
					cfg.Upstreams, cfg.CacheSize = []string{"127.0.0.1:1"}, 1<<20
				}
				n, err := node.Start(context.Background(), cfg)
				if err == nil {
					n.Close()
					t.Fatal("second node on the data directory started")
				}
				want := fmt.Sprintf("data directory %s %s (lock held on %s)", dir, tt.want, filepath.Join(dir, "LOCK"))
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start = %q, want it to say %q", err, want)
				}
				if tt.errno != nil && !errors.Is(err, tt.errno) {
					t.Errorf("Start = %v, want it to wrap %v", err, tt.errno)
				}
			})
		}
	}
}

// holdInChild opens dir's store in a child process (this test binary
// running TestNode_HoldDataDir) until the test ends.
func holdInChild(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNode_HoldDataDir$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper process said %q, %v; stderr %s", line, err, stderr.String())
	}
}

// checkWrites507 sends a put, a delete and a txn to the node at addr and
// checks that each is refused with 507 insufficient_storage and a message
// holding why.
func checkWrites507(t *testing.T, addr, why string) {
	t.Helper()
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/v1/kv/a", "v"},
		{"DELETE", "/v1/kv/a", ""},
		{"POST", "/v1/txn", `{"ops":[{"op":"put","key":"a","value":"aGk="}]}`},
	} {
		a := do(t, w.method, addr, w.path, w.body)
		if a.status != http.StatusInsufficientStorage || a.err.Code != apiwire.CodeInsufficientStorage || !strings.Contains(a.err.Message, why) {
			t.Errorf("%s %s at %s = %v, want 507 %s saying %q", w.method, w.path, addr, a, apiwire.CodeInsufficientStorage, why)
		}
	}
}

// TestNode_DiskBelowFloorAnswers507 starts a root whose floor of free disk
// space is more than any disk has: every write is refused with 507
// insufficient_storage and changes nothing, reads go on, and the status
// and the argent_disk_full gauge say why.
func TestNode_DiskBelowFloorAnswers507(t *testing.T) {
	n := start(t, node.Config{Role: node.RoleRoot, MinFreeDisk: 1 << 62})
	checkWrites507(t, n.Addr(), "below the floor")
	if a := do(t, "GET", n.Addr(), "/v1/kv/a", ""); a.status != http.StatusNotFound {
		t.Errorf("read below the floor = %v, want 404", a)
	}
	var st apiwire.StatusResponse
	if a := do(t, "GET", n.Addr(), "/v1/status", ""); json.Unmarshal(a.body, &st) != nil || !st.DiskFull || st.AppliedIndex != 0 {
		t.Errorf("status = %v, want disk_full at index 0", a)
	}
	if a := do(t, "GET", n.Addr(), "/metrics", ""); !strings.Contains(string(a.body), "\nargent_disk_full 1\n") {
		t.Errorf("/metrics has no argent_disk_full 1")
	}
}
