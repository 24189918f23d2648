package main

import (
	"context"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// dataset is the keys and values one phase loads into every system.
type dataset struct {
	slug  string // "100k-256B": part of run IDs
	name  string // "100k × 256 B": for tables
	keys  int
	value int
	pool  *valuePool
	zipf  *zipf // over keys ranks
}

func newDataset(keys, value int, theta float64, seed uint64) *dataset {
	return &dataset{
		slug:  countSlug(keys) + "-" + sizeSlug(value),
		name:  countName(keys) + " × " + sizeName(value),
		keys:  keys,
		value: value,
		pool:  newValuePool(value, seed),
		zipf:  newZipf(uint64(keys), theta),
	}
}

// workerRand returns worker conn's random source for run id: fixed by the
// seed, different for every run and worker.
func workerRand(seed uint64, id string, conn int) *mrand.Rand {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	return mrand.New(mrand.NewPCG(seed^h, uint64(conn)))
}

// readWorker reads one key per request, chosen by keys.
type readWorker struct {
	st   store
	conn int
	r    *mrand.Rand
	keys keyChooser
	buf  []byte
}

func (w *readWorker) do(ctx context.Context) (int, error) {
	w.buf = appendKey(w.buf[:0], w.keys.next(w.r))
	return 0, w.st.get(ctx, w.conn, w.buf)
}

// writeWorker overwrites a uniformly chosen existing key with a new value.
type writeWorker struct {
	st   store
	conn int
	r    *mrand.Rand
	n    int
	pool *valuePool
	buf  []byte
}

func (w *writeWorker) do(ctx context.Context) (int, error) {
	w.buf = appendKey(w.buf[:0], w.r.IntN(w.n))
	return 0, w.st.put(ctx, w.conn, w.buf, w.pool.random(w.r))
}

// mgetWorker reads size uniformly chosen keys per request.
type mgetWorker struct {
	st   store
	conn int
	r    *mrand.Rand
	n    int
	keys [][]byte
	buf  []byte
}

func newMGetWorker(st store, conn int, r *mrand.Rand, n, size int) *mgetWorker {
	return &mgetWorker{st: st, conn: conn, r: r, n: n, keys: make([][]byte, size), buf: make([]byte, 0, size*maxKeyLen)}
}

func (w *mgetWorker) do(ctx context.Context) (int, error) {
	w.buf = w.buf[:0]
	for i := range w.keys {
		start := len(w.buf)
		w.buf = appendKey(w.buf, w.r.IntN(w.n))
		w.keys[i] = w.buf[start:len(w.buf):len(w.buf)]
	}
	return 0, w.st.mget(ctx, w.conn, w.keys)
}

// YCSB-style mixes: a share of writes, the rest reads.
const (
	ycsbB = "B" // 95 % reads, 5 % updates of existing keys, both Zipf
	ycsbD = "D" // 95 % reads of recent keys ("latest"), 5 % inserts of new keys
	// ycsbWriteShare is the share of writes in both mixes.
	ycsbWriteShare = 0.05
)

// ycsbState is what the workers of one D run share: the next key number
// to insert, and the newest key below which every insert was acknowledged
// (YCSB's acknowledged counter), so that reads ask only for keys the
// system has confirmed, and a miss means a replica had not caught up.
type ycsbState struct {
	next atomic.Int64
	// newest is the largest id with every id up to it acknowledged.
	newest atomic.Int64
	mu     struct {
		sync.Mutex
		acked map[int64]bool // acknowledged ids above newest
	}
}

func newYCSBState(n int) *ycsbState {
	s := &ycsbState{}
	s.next.Store(int64(n))
	s.newest.Store(int64(n - 1))
	s.mu.acked = make(map[int64]bool)
	return s
}

// ack records that insert id was acknowledged and moves newest up over
// every id acknowledged without a gap.
func (s *ycsbState) ack(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.acked[id] = true
	n := s.newest.Load()
	for s.mu.acked[n+1] {
		delete(s.mu.acked, n+1)
		n++
	}
	s.newest.Store(n)
}

// ycsbWorker runs mix B or D: reads at the system's read side, writes at
// its write side.
type ycsbWorker struct {
	st     store
	conn   int
	r      *mrand.Rand
	mix    string
	ds     *dataset
	shared *ycsbState
	reads  keyChooser
	buf    []byte
}

func newYCSBWorker(st store, conn int, r *mrand.Rand, mix string, ds *dataset, shared *ycsbState) *ycsbWorker {
	w := &ycsbWorker{st: st, conn: conn, r: r, mix: mix, ds: ds, shared: shared}
	if mix == ycsbD {
		w.reads = latestKeys{z: ds.zipf, last: func() int { return int(shared.newest.Load()) }}
	} else {
		w.reads = zipfKeys{z: ds.zipf}
	}
	return w
}

func (w *ycsbWorker) do(ctx context.Context) (int, error) {
	if w.r.Float64() >= ycsbWriteShare {
		w.buf = appendKey(w.buf[:0], w.reads.next(w.r))
		return 0, w.st.get(ctx, w.conn, w.buf)
	}
	if w.mix == ycsbB {
		w.buf = appendKey(w.buf[:0], zipfKeys{z: w.ds.zipf}.next(w.r))
		return 1, w.st.put(ctx, w.conn, w.buf, w.ds.pool.random(w.r))
	}
	id := w.shared.next.Add(1) - 1
	w.buf = appendKey(w.buf[:0], int(id))
	err := w.st.put(ctx, w.conn, w.buf, w.ds.pool.of(int(id)))
	if err == nil {
		w.shared.ack(id)
	}
	return 1, err
}

// runOn runs one workload on sys: workers connections, each driven by the
// worker mk returns for it.
func runOn(ctx context.Context, cfg config, sys system, id string, workers int, rate float64, kinds []string, keysPerOp int,
	mk func(conn int, r *mrand.Rand) worker) (*runResult, error) {
	return run(ctx, runSpec{
		id: id, system: sys.name, workers: workers, duration: cfg.duration, rate: rate,
		kinds: kinds, keysPerOp: keysPerOp, pids: sys.pids, timeout: cfg.timeout,
		newWorker: func(conn int, deadline time.Time) (worker, error) {
			sys.st.setDeadline(conn, deadline)
			return mk(conn, workerRand(cfg.seed, id, conn)), nil
		},
	})
}
