package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/argent-kv/argent"
)

// freeBase returns a port p on 127.0.0.1 such that p, p+3 and p+4 (the
// ports of a three-member root group in argent dev) are free.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := p+4 < 65536
		for _, q := range []int{p + 3, p + 4} {
			if !ok {
				break
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free ports")
	return 0
}

// argent dev --roots 3 starts a three-member group that elects a leader and
// takes writes at any member; other member counts are refused.
func TestDev_Roots(t *testing.T) {
	base := freeBase(t)
	c := &DevCmd{Data: t.TempDir(), RootListen: fmt.Sprintf("127.0.0.1:%d", base), Roots: 3}
	roots, err := c.startRoots(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, r := range roots {
			r.Close()
		}
	}()
	if len(roots) != 3 {
		t.Fatalf("%d roots, want 3", len(roots))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := roots[2].Status().Group
		if g != nil && g.Leader != 0 && len(g.Members) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader among the dev roots: %+v", g)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := argent.Batch{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")}}}
	if _, err := roots[1].Write(ctx, b); err != nil {
		t.Fatalf("write at member 2: %v", err)
	}
	for _, n := range []int{2, 4} {
		c := &DevCmd{Data: t.TempDir(), RootListen: "127.0.0.1:0", Roots: n}
		if _, err := c.startRoots(context.Background(), slog.New(slog.DiscardHandler)); err == nil {
			t.Fatalf("--roots %d accepted", n)
		}
	}
}
