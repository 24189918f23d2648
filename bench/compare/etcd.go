package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdStore talks to one etcd server through go.etcd.io/etcd/client/v3,
// one client (and so one gRPC connection) per worker. Reads are Range
// requests, serializable (answered by the member from its own state, like
// a replica) or linearizable (confirmed through Raft first); an mget is a
// Txn of Gets, which etcd answers without Raft when every Get in it is
// serializable. Puts go through Raft and are fsynced before the answer.
type etcdStore struct {
	clis         []*clientv3.Client
	serializable bool
}

// etcdMaxTxnOps is etcd's default --max-txn-ops: the most operations one
// Txn may hold.
const etcdMaxTxnOps = 128

// newEtcdClient connects to the etcd server at addr (host:port).
func newEtcdClient(ctx context.Context, addr string) (*clientv3.Client, error) {
	return newEtcdClientOf(ctx, addr)
}

// newEtcdClientOf connects to the members of one etcd cluster at addrs
// (host:port each). With more than one, the client balances its requests
// over them round-robin, one gRPC connection to each member.
func newEtcdClientOf(ctx context.Context, addrs ...string) (*clientv3.Client, error) {
	eps := make([]string, len(addrs))
	for i, a := range addrs {
		eps[i] = "http://" + a
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          eps,
		DialTimeout:        5 * time.Second,
		Context:            ctx,
		Logger:             zap.NewNop(),
		MaxCallSendMsgSize: 8 << 20,
		MaxCallRecvMsgSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: client for %s: %w", strings.Join(addrs, ","), err)
	}
	return cli, nil
}

// newEtcdClients opens n clients to addrs, the members of one cluster:
// each client balances over all of them.
func newEtcdClients(ctx context.Context, n int, addrs ...string) ([]*clientv3.Client, error) {
	clis := make([]*clientv3.Client, 0, n)
	for range n {
		cli, err := newEtcdClientOf(ctx, addrs...)
		if err != nil {
			closeEtcdClients(clis)
			return nil, err
		}
		clis = append(clis, cli)
	}
	return clis, nil
}

func closeEtcdClients(clis []*clientv3.Client) {
	for _, c := range clis {
		_ = c.Close()
	}
}

func (s *etcdStore) readOpts() []clientv3.OpOption {
	if s.serializable {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

func (s *etcdStore) get(ctx context.Context, c int, key []byte) error {
	resp, err := s.clis[c].Get(ctx, string(key), s.readOpts()...)
	if err != nil {
		return err
	}
	if resp.Count == 0 {
		return errMiss
	}
	return nil
}

func (s *etcdStore) put(ctx context.Context, c int, key, value []byte) error {
	_, err := s.clis[c].Put(ctx, string(key), string(value))
	return err
}

func (s *etcdStore) mget(ctx context.Context, c int, keys [][]byte) error {
	if len(keys) > etcdMaxTxnOps {
		return fmt.Errorf("etcd: mget of %d keys: a txn holds at most %d", len(keys), etcdMaxTxnOps)
	}
	ops := make([]clientv3.Op, len(keys))
	opts := s.readOpts()
	for i, k := range keys {
		ops[i] = clientv3.OpGet(string(k), opts...)
	}
	resp, err := s.clis[c].Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return err
	}
	if len(resp.Responses) != len(keys) {
		return fmt.Errorf("etcd: txn of %d gets answered %d", len(keys), len(resp.Responses))
	}
	return nil
}

func (s *etcdStore) setDeadline(int, time.Time) {}

// etcdReady is nil once the server at addr answers a serializable Get.
func etcdReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		cli, err := newEtcdClient(ctx, addr)
		if err != nil {
			return err
		}
		defer cli.Close()
		_, err = cli.Get(ctx, "ready", clientv3.WithSerializable())
		return err
	}
}

// loadEtcd writes keys [0, n) in Txns of 128 puts, 8 at once.
func loadEtcd(ctx context.Context, clis []*clientv3.Client, n int, name func(int) string, value func(int) []byte) error {
	if len(clis) == 0 {
		return errors.New("etcd: no client to load with")
	}
	per := min(etcdMaxTxnOps, max(1, (1<<20)/max(1, len(value(0)))))
	return inBatches(ctx, n, per, 8, func(ctx context.Context, from, to int) error {
		ops := make([]clientv3.Op, 0, to-from)
		for id := from; id < to; id++ {
			ops = append(ops, clientv3.OpPut(name(id), string(value(id))))
		}
		cli := clis[(from/per)%len(clis)] // spread the loaders over the clients
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := cli.Txn(tctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("etcd: txn of keys %d..%d: %w", from, to-1, err)
		}
		return nil
	})
}
