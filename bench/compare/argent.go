package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// argentStore reads at a replica with GET /v1/kv/{key} and POST /v1/mget
// and writes at the root with PUT /v1/kv/{key}, each connection with the
// raw HTTP/1.1 client of bench/load (a fraction of net/http's client CPU).
type argentStore struct {
	replica []*rawhttp.Conn
	root    []*rawhttp.Conn
}

func newArgentStore(rootAddr, replicaAddr string, conns int) *argentStore {
	s := &argentStore{}
	for range conns {
		s.replica = append(s.replica, rawhttp.New(replicaAddr))
		s.root = append(s.root, rawhttp.New(rootAddr))
	}
	return s
}

// newArgentWriters is an argentStore that reads and writes at the roots at
// addrs (the members of a root group, or one root): connection i at
// addrs[i % len(addrs)], so that the writers spread evenly over them.
func newArgentWriters(addrs []string, conns int) *argentStore {
	s := &argentStore{}
	for i := range conns {
		a := addrs[i%len(addrs)]
		s.replica = append(s.replica, rawhttp.New(a))
		s.root = append(s.root, rawhttp.New(a))
	}
	return s
}

func httpErr(status int) error {
	switch status {
	case 200:
		return nil
	case 404:
		return errMiss
	}
	return fmt.Errorf("status %d", status)
}

func (s *argentStore) get(_ context.Context, c int, key []byte) error {
	status, _, err := s.replica[c].Get(key)
	if err != nil {
		return err
	}
	return httpErr(status)
}

func (s *argentStore) put(_ context.Context, c int, key, value []byte) error {
	status, _, err := s.root[c].Put(key, value)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

func (s *argentStore) mget(_ context.Context, c int, keys [][]byte) error {
	status, _, err := s.replica[c].MGet(keys)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

func (s *argentStore) setDeadline(c int, t time.Time) {
	s.replica[c].SetDeadline(t)
	s.root[c].SetDeadline(t)
}

func (s *argentStore) close() {
	for i := range s.replica {
		s.replica[i].Close()
		s.root[i].Close()
	}
}

// loadArgent writes keys [0, n) named by name with values of value
// through the root in POST /v1/txn batches, then waits until every replica
// has applied the last one.
func loadArgent(ctx context.Context, root *benchnode.Proc, replicas []*benchnode.Proc, n int, name func(int) string, value func(int) []byte) error {
	batch := min(1000, max(1, (1<<20)/max(1, len(value(0)))))
	var (
		mu   sync.Mutex
		last argent.Index
	)
	err := inBatches(ctx, n, batch, 4, func(ctx context.Context, from, to int) error {
		b := argent.Batch{Ops: make([]argent.Op, 0, to-from)}
		for id := from; id < to; id++ {
			b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(name(id)), Value: value(id)})
		}
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		idx, err := root.Client.Txn(tctx, b)
		if err != nil {
			return fmt.Errorf("argent: txn of keys %d..%d: %w", from, to-1, err)
		}
		mu.Lock()
		last = max(last, idx)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range replicas {
		if err := r.WaitApplied(ctx, last, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}
