package benchnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"time"
)

// StartRedis runs bin (redis-server from the PATH when empty) in c on a
// free loopback port, with RDB snapshots off and its files in a directory
// of its own, plus extra arguments. It fails with an error naming the
// package to install when there is no redis-server.
func StartRedis(ctx context.Context, c *Cluster, bin, name string, extra ...string) (*Proc, error) {
	if bin == "" {
		bin = "redis-server"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (%w): apt-get install -y redis-server", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir, err := c.NewDir(name)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", "", "--daemonize", "no", "--logfile", ""}, extra...)
	return c.StartProcess(ctx, Spec{Name: name, Bin: bin, Args: args, Addr: addr, Ready: func(ctx context.Context) error {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		b := make([]byte, 7)
		if _, err := io.ReadFull(conn, b); err != nil {
			return err
		}
		if string(b) != "+PONG\r\n" {
			return fmt.Errorf("redis at %s answered PING with %q", addr, b)
		}
		return nil
	}})
}
