package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// store is one system under test as the workloads see it: a fixed set of
// connections, numbered from 0, each used by one worker goroutine at a
// time. Reads go where that system serves reads (a replica, except for
// etcd's single node), writes where it takes them.
type store interface {
	// get reads key; errMiss when it is absent.
	get(ctx context.Context, conn int, key []byte) error
	// put writes key and returns once the system acknowledged it.
	put(ctx context.Context, conn int, key, value []byte) error
	// mget reads every key in one request; absent keys are not errors.
	mget(ctx context.Context, conn int, keys [][]byte) error
	// setDeadline bounds the I/O of connection conn by t, for clients that
	// do not take the bound from a context.
	setDeadline(conn int, t time.Time)
}

// system is a store with the name it is reported under and the server
// processes whose CPU counts for it.
type system struct {
	name string // "argent", "etcd-ser", "etcd-lin", "redis", "redis-aof"
	st   store
	pids []int
}

// inBatches calls fn for consecutive ranges [from, to) of [0, n), batch
// items each, with par calls at once, and returns the first error.
func inBatches(ctx context.Context, n, batch, par int, fn func(ctx context.Context, from, to int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	starts := make(chan int)
	for range par {
		wg.Go(func() {
			for from := range starts {
				if err := fn(ctx, from, min(from+batch, n)); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	for from := 0; from < n; from += batch {
		select {
		case starts <- from:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(starts)
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}
