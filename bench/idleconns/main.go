// Command idleconns measures what idle client connections cost a node:
// the resident memory (RSS) of a replica before and after N connections
// to its HTTP API and N to its RESP port have each made one request and
// then stay open, idle, as a fleet's kept-alive clients do. Redis, which
// users would put behind the same clients, gets the same N connections
// in the same run.
//
//	cd bench && go run ./idleconns [-n 10000]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

func main() {
	n := flag.Int("n", 10000, "idle connections per port")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	// Each port's n connections are opened, measured and closed in turn:
	// this process and the node each hold n at a time. Raise the soft
	// file limit to the hard one; the nodes inherit it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Max < uint64(n+1024) {
		return fmt.Errorf("the open files limit is %d; %d connections need %d", lim.Max, n, n+1024)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open files limit to %d: %w", lim.Cur, err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "argent-idleconns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchnode.BuildArgent(ctx, dir)
	if err != nil {
		return err
	}
	c := &benchnode.Cluster{Bin: bin, Dir: dir}
	defer c.Close(false)
	// A fresh root for each port: Go keeps freed memory a while, which
	// would count one port's connections against the next.
	for _, port := range []string{"HTTP", "RESP"} {
		respAddr, err := benchnode.FreeAddr()
		if err != nil {
			return err
		}
		root, err := c.Start(ctx, "root-"+port, "root", "--resp-listen", respAddr, "--max-connections", fmt.Sprint(n+100))
		if err != nil {
			return err
		}
		addr, req := root.Addr, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
		if port == "RESP" {
			addr, req = respAddr, "PING\r\n"
		}
		if err := measure(root.PID(), "argent "+port, n, addr, req); err != nil {
			return err
		}
		root.Stop()
	}
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Println("redis-server not installed (apt-get install redis-server): no peer figure")
		return nil
	}
	raddr, err := benchnode.FreeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(raddr)
	rdir, err := c.NewDir("redis")
	if err != nil {
		return err
	}
	rp, err := c.StartProcess(ctx, benchnode.Spec{Name: "redis", Bin: redis, Addr: raddr,
		Args: []string{"--port", port, "--bind", "127.0.0.1", "--dir", rdir, "--save", "", "--appendonly", "no", "--maxclients", fmt.Sprint(n + 100)},
		Ready: func(ctx context.Context) error {
			conn, err := net.DialTimeout("tcp", raddr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		}})
	if err != nil {
		return err
	}
	return measure(rp.PID(), "redis RESP", n, raddr, "PING\r\n")
}

// measure opens n connections to addr, sends req on each and reads its
// answer's first line, then reports pid's RSS before and with them open,
// and closes them.
func measure(pid int, name string, n int, addr, req string) error {
	time.Sleep(500 * time.Millisecond)
	_, before, err := benchnode.ProcMem(pid)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("%s: connection %d: %w", name, i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, req); err != nil {
			return fmt.Errorf("%s: connection %d: %w", name, i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !(strings.HasPrefix(line, "HTTP/1.1 200") || strings.HasPrefix(line, "+PONG")) {
			return fmt.Errorf("%s: connection %d answered %q: %w", name, i, line, errors.Join(err))
		}
	}
	opened := time.Since(start)
	time.Sleep(2 * time.Second) // let the node settle
	_, with, err := benchnode.ProcMem(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-12s RSS %6.1f MiB idle, %6.1f MiB with %d connections: %5.1f KiB per connection (opened in %v)\n",
		name, mib(before), mib(with), n, float64(with-before)/1024/float64(n), opened.Round(time.Millisecond))
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
