package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// TestMain builds testdata/fakeargent, which stands in for argent, and points
// ARGENT_BIN at it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fakeargent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fakeargent")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/fakeargent").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakeargent: %v\n%s", err, out)
		return 1
	}
	os.Setenv("ARGENT_BIN", bin)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return code
}

func TestBuildBinary_Env(t *testing.T) {
	if got, want := cluster.BuildBinary(t), os.Getenv("ARGENT_BIN"); got != want {
		t.Fatalf("got %q, want $ARGENT_BIN %q", got, want)
	}
}

func TestFreeAddr(t *testing.T) {
	a, b := cluster.FreeAddr(t), cluster.FreeAddr(t)
	if !strings.HasPrefix(a, "127.0.0.1:") || a == b {
		t.Fatalf("got %q and %q, want two different 127.0.0.1 addresses", a, b)
	}
}

func TestStartRoot(t *testing.T) {
	n := cluster.StartRoot(t, "--upstream", "ignored")
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != "root" || st.AppliedIndex != 1 || st.NodeID != fmt.Sprintf("fake-%d", n.PID()) {
		t.Fatalf("status: got %+v, want role root, applied_index 1, node_id fake-%d", st, n.PID())
	}
	if st.Raw["extra"] != "x" {
		t.Fatalf("Raw: got %v, want extra=x", st.Raw)
	}
	if got, want := n.URL(), "http://"+n.Addr; got != want {
		t.Fatalf("URL: got %q, want %q", got, want)
	}
	wantArgs := []string{"root", "--data", n.DataDir, "--listen", n.Addr, "--upstream", "ignored"}
	if got := strings.Join(n.Args, " "); got != strings.Join(wantArgs, " ") {
		t.Fatalf("Args: got %q, want %q", got, wantArgs)
	}
	if !n.Running() {
		t.Fatal("Running: got false, want true")
	}
}

func TestStartReplica(t *testing.T) {
	root := cluster.StartRoot(t)
	r := cluster.StartReplica(t, []string{root.Addr, "127.0.0.1:1"})
	st := cluster.WaitApplied(t, r, 1, 5*time.Second)
	if want := root.Addr + ",127.0.0.1:1"; st.Role != "replica" || st.Upstream != want {
		t.Fatalf("status: got %+v, want role replica, upstream %q", st, want)
	}
}

func TestNewNode_Relay(t *testing.T) {
	n := cluster.NewNode(t, "relay", "--upstream", "127.0.0.1:1")
	if n.DataDir != "" || strings.Contains(strings.Join(n.Args, " "), "--data") {
		t.Fatalf("relay: got DataDir %q, Args %q; want no data directory", n.DataDir, n.Args)
	}
	n.Start()
	if st := n.WaitReady(5 * time.Second); st.Role != "relay" {
		t.Fatalf("role: got %q, want relay", st.Role)
	}
}

func TestNode_Kill(t *testing.T) {
	n := cluster.StartRoot(t)
	n.Kill()
	if n.Running() {
		t.Fatal("Running after Kill: got true, want false")
	}
	if _, err := n.Status(); err == nil {
		t.Fatal("Status after Kill: got nil error")
	}
	n.Kill() // no-op
}

func TestNode_Restart(t *testing.T) {
	n := cluster.StartRoot(t)
	pid := n.PID()
	n.Restart()
	st := n.WaitReady(5 * time.Second)
	if st.AppliedIndex != 2 {
		t.Fatalf("applied_index after Restart: got %d, want 2 (same data directory)", st.AppliedIndex)
	}
	if n.PID() == pid {
		t.Fatalf("PID after Restart: got the old %d", pid)
	}
	log, err := os.ReadFile(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(log), "=== cluster: "); got != 2 {
		t.Fatalf("log has %d start headers, want 2:\n%s", got, log)
	}
	if !strings.Contains(string(log), "start 2") {
		t.Fatalf("log lacks the node's own output:\n%s", log)
	}
}

func TestNode_PauseResume(t *testing.T) {
	n := cluster.StartRoot(t)
	n.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := n.StatusContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Status while paused: got %v, want deadline exceeded", err)
	}
	if !n.Running() {
		t.Fatal("Running while paused: got false, want true")
	}
	n.Resume()
	n.WaitReady(5 * time.Second)
}

func TestNode_Stop(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		pause   bool
		wantErr bool
	}{
		{name: "Graceful"},
		{name: "Paused", pause: true},
		{name: "IgnoresTerm", args: []string{"--ignore-term"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := cluster.StartRoot(t, tt.args...)
			n.StopTimeout = 300 * time.Millisecond
			if tt.pause {
				n.Pause()
			}
			err := n.Stop()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Stop: got %v, want error %v", err, tt.wantErr)
			}
			if n.Running() {
				t.Fatal("Running after Stop: got true")
			}
		})
	}
}

func TestNode_WaitExit(t *testing.T) {
	n := cluster.NewNode(t, "root", "--no-such-flag")
	n.Start()
	var exitErr *exec.ExitError
	if err := n.WaitExit(5 * time.Second); !errors.As(err, &exitErr) {
		t.Fatalf("WaitExit: got %v, want an exit error", err)
	}
}

func TestWaitFor(t *testing.T) {
	t.Run("Met", func(t *testing.T) {
		calls := 0
		cluster.WaitFor(t, 5*time.Second, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if calls != 3 {
			t.Fatalf("calls: got %d, want 3", calls)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		ft := &fatalTB{TB: t}
		start := time.Now()
		ft.run(func() {
			cluster.WaitFor(ft, 50*time.Millisecond, func() error { return errors.New("never") })
		})
		if !strings.Contains(ft.msg, "never") {
			t.Fatalf("Fatalf message: got %q, want the last error", ft.msg)
		}
		if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
			t.Fatalf("gave up after %v, want about 50ms", el)
		}
	})
}

// fatalTB records the message of Fatalf and ends the goroutine, as
// testing.T does, without failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn in a goroutine that Fatalf may end, and waits for it.
func (f *fatalTB) run(fn func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	wg.Wait()
}

func TestStartGroup(t *testing.T) {
	for _, proxies := range []bool{false, true} {
		t.Run(fmt.Sprintf("Proxies=%v", proxies), func(t *testing.T) {
			g := cluster.StartGroup(t, 3, cluster.GroupOptions{Proxies: proxies, Args: []string{"--upstream", "x"}})
			l, err := g.Leader()
			if err != nil || l != g.Members[0] {
				t.Fatalf("Leader: got %v, %v; want member 1 (%s)", l, err, g.Members[0].Name)
			}
			if got := g.WaitConverged(5 * time.Second); got != 1 {
				t.Fatalf("WaitConverged: got applied index %d, want 1", got)
			}
			for i, m := range g.Members {
				if g.ID(m) != uint64(i+1) || g.Member(uint64(i+1)) != m {
					t.Fatalf("member %d: ID %d, Member(%d) = %v", i, g.ID(m), i+1, g.Member(uint64(i+1)))
				}
				st, err := m.Status()
				if err != nil {
					t.Fatal(err)
				}
				if st.Upstream != "x" {
					t.Fatalf("%s: upstream %q, want the extra argument x", m.Name, st.Upstream)
				}
				if st.Group == nil || st.Group.ID != uint64(i+1) || len(st.Group.Members) != 3 {
					t.Fatalf("%s: group %+v, want member %d of 3", m.Name, st.Group, i+1)
				}
				for j, p := range st.Group.Members {
					want := g.Members[j].Addr
					if proxies && j != i {
						want = g.Links[i][j].Addr()
					}
					if p.ID != uint64(j+1) || p.Addr != want {
						t.Fatalf("%s: peer %d is %d=%s, want %d=%s", m.Name, j, p.ID, p.Addr, j+1, want)
					}
				}
			}
			if !proxies {
				return
			}
			// Links[0][1] leads to member 2; Isolate cuts it, Heal restores it.
			hc := &http.Client{Timeout: 5 * time.Second}
			defer hc.CloseIdleConnections()
			viaStatus := func() (cluster.Status, error) {
				resp, err := hc.Get("http://" + g.Links[0][1].Addr() + "/v1/status")
				if err != nil {
					return cluster.Status{}, err
				}
				defer resp.Body.Close()
				var st cluster.Status
				err = json.NewDecoder(resp.Body).Decode(&st)
				return st, err
			}
			if st, err := viaStatus(); err != nil || st.Group == nil || st.Group.ID != 2 {
				t.Fatalf("status through Links[0][1]: %+v, %v; want member 2", st, err)
			}
			g.Isolate(g.Members[1])
			if _, err := viaStatus(); err == nil {
				t.Fatal("status through Links[0][1] after Isolate(member 2): got an answer")
			}
			g.Heal(g.Members[1])
			if st, err := viaStatus(); err != nil || st.Group.ID != 2 {
				t.Fatalf("status through Links[0][1] after Heal: %+v, %v", st, err)
			}
		})
	}
}

func TestGroup_LeaderNeedsMajority(t *testing.T) {
	g := cluster.StartGroup(t, 3, cluster.GroupOptions{})
	g.Members[1].Kill()
	if l, err := g.Leader(); err != nil || l != g.Members[0] {
		t.Fatalf("Leader with member 2 down: %v, %v; want member 1", l, err)
	}
	g.Members[2].Kill()
	if l, err := g.Leader(); err == nil {
		t.Fatalf("Leader with 1 of 3 members up: got %s, want an error", l.Name)
	}
}

func TestGroup_JoinDrop(t *testing.T) {
	for _, proxies := range []bool{false, true} {
		t.Run(fmt.Sprintf("Proxies=%v", proxies), func(t *testing.T) {
			g := cluster.StartGroup(t, 3, cluster.GroupOptions{Proxies: proxies, Args: []string{"--upstream", "x"}})
			m, addr := g.Join("--ignore-term")
			if g.ID(m) != 4 || g.Member(4) != m || len(g.Members) != 4 || g.Members[3] != m {
				t.Fatalf("after Join: ID %d, Member(4) = %v, %d members; want ID 4 appended", g.ID(m), g.Member(4), len(g.Members))
			}
			if !m.Running() {
				t.Fatal("Join: the new member is not running")
			}
			// --peers lists the others, through its own links, then itself.
			var peers []string
			for i, o := range g.Members[:3] {
				a := o.Addr
				if proxies {
					if p := g.Links[3][i]; p == nil || p.Upstream() != o.Addr {
						t.Fatalf("Links[3][%d] = %v, want a proxy in front of %s", i, p, o.Addr)
					}
					a = g.Links[3][i].Addr()
				}
				peers = append(peers, fmt.Sprintf("%d=%s", i+1, a))
			}
			peers = append(peers, "4="+m.Addr)
			args := strings.Join(m.Args, " ")
			for _, want := range []string{"--id 4 --join --peers " + strings.Join(peers, ","), "--upstream x --ignore-term"} {
				if !strings.Contains(args, want) {
					t.Fatalf("Args %q, want them to hold %q", args, want)
				}
			}
			// The others reach it at addr: itself, or one proxy in front of it.
			for i := range 3 {
				p := g.Links[i][3]
				switch {
				case !proxies && (p != nil || addr != m.Addr):
					t.Fatalf("without proxies: Links[%d][3] = %v, address %s; want nil and %s", i, p, addr, m.Addr)
				case proxies && (p == nil || p.Addr() != addr || p.Upstream() != m.Addr):
					t.Fatalf("Links[%d][3] = %v, address %s; want the proxy at %s in front of %s", i, p, addr, addr, m.Addr)
				}
			}
			st, err := m.Status()
			if err != nil || st.Group == nil || st.Group.ID != 4 || len(st.Group.Members) != 4 {
				t.Fatalf("status of the new member: %+v, %v", st.Group, err)
			}

			// Drop member 2: the others keep their IDs and links; a new
			// member gets ID 5, not 2.
			two := g.Members[1]
			var dropped []string
			if proxies {
				for _, l := range [][2]int{{0, 1}, {1, 0}, {1, 3}, {3, 1}} {
					dropped = append(dropped, g.Links[l[0]][l[1]].Addr())
				}
			}
			g.Drop(two)
			if len(g.Members) != 3 || g.Member(2) != nil || g.ID(two) != 0 || g.ID(m) != 4 || g.Member(3) != g.Members[1] {
				t.Fatalf("after Drop: %d members, Member(2) = %v, ID(m) = %d", len(g.Members), g.Member(2), g.ID(m))
			}
			if !two.Running() {
				t.Fatal("Drop stopped the process")
			}
			if len(g.Links) != 3 || len(g.Links[0]) != 3 {
				t.Fatalf("Links after Drop: %d rows of %d", len(g.Links), len(g.Links[0]))
			}
			for _, a := range dropped {
				if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
					c.Close()
					t.Fatalf("the proxy at %s of a dropped link still accepts connections", a)
				}
			}
			if l, err := g.Leader(); err != nil || l != g.Members[0] {
				t.Fatalf("Leader after Drop: %v, %v; want member 1", l, err)
			}
			if proxies {
				g.Isolate(m) // every link of the new member is in Links
				g.Heal(m)
			}
			five, _ := g.Join()
			if g.ID(five) != 5 || g.Member(5) != five {
				t.Fatalf("second Join: ID %d, want 5", g.ID(five))
			}
		})
	}
}
