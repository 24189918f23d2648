package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/node"
)

// freeBase returns a port p on 127.0.0.1 such that p, p+3 and p+4 (the
// ports of a three-member root group in argent dev) are free.
func freeBase(t *testing.T) int {
	t.Helper()
	return freePorts(t, 3, 4)
}

// freePorts returns a port p on 127.0.0.1 such that p and p+d for each
// offset d are free.
func freePorts(t *testing.T, offsets ...int) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := p+slices.Max(append(offsets, 0)) < 65536
		for _, d := range offsets {
			if !ok {
				break
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+d))
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

// argent dev's data center: a second replica, a relay and four proxies
// sharing L2 shards. Every proxy reads what the root wrote; reads at the
// proxies that do not own a key's shard are answered by its owner, and the
// relay names the four proxies as its children.
func TestDev_DataCenter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	base := freePorts(t, 1, 2, 3, 4, 5)
	c := &DevCmd{Data: t.TempDir(), RootListen: "127.0.0.1:0", Roots: 1, ProxyListen: fmt.Sprintf("127.0.0.1:%d", base), Proxies: 4,
		ProxyCache: 1 << 20, WindowBytes: 1 << 10, DCListen: fmt.Sprintf("127.0.0.1:%d", base+1)}
	roots, err := c.startRoots(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	defer roots[0].Close()
	var ops []argent.Op
	for i := range 200 {
		ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	want, err := roots[0].Write(ctx, argent.Batch{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := node.Start(ctx, node.Config{Role: node.RoleReplica, DataDir: t.TempDir(), Listen: "127.0.0.1:0", Upstreams: []string{roots[0].Addr()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	if _, err := rep.Store().WaitApplied(ctx, 30*time.Second, want); err != nil {
		t.Fatal(err)
	}
	started, proxies, err := c.startDC(ctx, log, []string{roots[0].Addr()}, rep.Addr(), want)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Close()
		}
	}()
	if len(started) != 6 || len(proxies) != 4 || started[1].Role() != node.RoleRelay {
		t.Fatalf("started %d nodes, %d proxies", len(started), len(proxies))
	}
	if peers := proxies[1].Status().DCPeers; len(peers) != 4 {
		t.Errorf("a proxy's status names %d L2 peers, want 4: %v", len(peers), peers)
	}
	tiers := map[string]int{}
	for _, p := range proxies {
		cl, err := client.New(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			v, err := cl.Get(ctx, []byte(fmt.Sprintf("k%03d", i)), client.ReadOptions{MinIndex: want})
			if err != nil || string(v.Value) != fmt.Sprintf("v%d", i) {
				t.Fatalf("read k%03d at %s: %q, %v", i, p.Addr(), v.Value, err)
			}
			tiers[v.Tier]++
		}
	}
	t.Logf("reads by tier: %v", tiers)
	if tiers["l2"] == 0 {
		t.Errorf("no read answered by an L2 owner: %v", tiers)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := started[1].Status()
		n := 0
		for _, ch := range st.Children {
			if ch.Role == node.RoleProxy && ch.DC == devDC {
				n++
			}
		}
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay names %d proxies of the DC, want 4: %+v", n, st.Children)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
