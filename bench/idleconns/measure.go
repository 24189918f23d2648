package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// Bounds of one connection's steps: a step that takes longer fails the run.
const (
	dialTimeout   = 5 * time.Second
	answerTimeout = 5 * time.Second
)

// measurePort starts p's process and, once it is idle, opens n connections
// to it, dialers at a time (TLS: each with a full handshake), then sends
// one request on each and reads the first line of its answer; it reports
// the process's RSS before and with the connections open, the time and
// the process's CPU time the opening took, and stops the process.
func measurePort(ctx context.Context, p port, n, dialers int, tc *tls.Config) (portResult, error) {
	r := portResult{Name: p.name, TLS: p.tls}
	if !p.tls {
		tc = nil
	}
	proc, addr, err := p.start(ctx)
	if err != nil {
		return r, err
	}
	defer proc.Stop()
	pid := proc.PID()
	time.Sleep(500 * time.Millisecond)
	if _, r.RSSIdle, err = benchnode.ProcMem(pid); err != nil {
		return r, err
	}
	cpu0, err := benchnode.ProcCPU(pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	conns, err := dialAll(ctx, addr, tc, n, dialers)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return r, err
	}
	r.OpenSeconds = time.Since(start).Seconds()
	// The server ends a handshake after the client: give it the moment.
	time.Sleep(250 * time.Millisecond)
	cpu1, err := benchnode.ProcCPU(pid)
	if err != nil {
		return r, err
	}
	r.OpenCPUSeconds = cpu1 - cpu0
	if tlsConn, ok := conns[0].(*tls.Conn); ok {
		r.Protocol = describeTLS(tlsConn.ConnectionState())
	}
	for i, c := range conns {
		if err := ask(c, p.req, p.want); err != nil {
			return r, fmt.Errorf("connection %d: %w", i, err)
		}
	}
	time.Sleep(2 * time.Second) // let the process settle
	if _, r.RSSWith, err = benchnode.ProcMem(pid); err != nil {
		return r, err
	}
	r.BytesPerConn = float64(r.RSSWith-r.RSSIdle) / float64(n)
	return r, nil
}

// dialAll opens n connections to addr, dialers at a time, and returns them
// in the order they were asked for. On an error it returns those opened so
// far (the others nil) for the caller to close.
func dialAll(ctx context.Context, addr string, tc *tls.Config, n, dialers int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(dialers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dial(ctx, addr, tc)
				if err != nil {
					cancel(fmt.Errorf("connection %d: %w", i, err))
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	return conns, context.Cause(ctx)
}

// dial connects to addr and, with tc, completes a TLS handshake.
func dial(ctx context.Context, addr string, tc *tls.Config) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || tc == nil {
		return c, err
	}
	tconn := tls.Client(c, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return tconn, nil
}

// ask sends req on c and checks that the first line of the answer starts
// with want.
func ask(c net.Conn, req, want string) error {
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(answerTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, want) {
		return fmt.Errorf("answered %q, want %q: %w", line, want, errors.Join(err))
	}
	return c.SetReadDeadline(time.Time{})
}

// probe opens one connection, asks req and closes it: whether the port
// serves yet.
func probe(ctx context.Context, addr string, tc *tls.Config, req, want string) error {
	c, err := dial(ctx, addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	return ask(c, req, want)
}

// describeTLS names a connection's version, key exchange and cipher suite.
func describeTLS(cs tls.ConnectionState) string {
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(cs.Version), cs.CurveID, tls.CipherSuiteName(cs.CipherSuite))
}
