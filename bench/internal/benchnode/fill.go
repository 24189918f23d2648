package benchnode

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"

	"github.com/argent-kv/argent"
)

const (
	fillBatch   = 1000 // keys per txn
	fillWriters = 4    // txns in flight
)

// Fill writes keys 0..n-1, named by name, with value random bytes each
// (seeded), through the node p (the root) with POST /v1/txn, 1,000 keys
// per txn and four txns in flight, and returns the highest index
// acknowledged: once a node has applied it, it holds every key. The first
// failed txn stops the fill.
func Fill(ctx context.Context, p *Proc, n int, name func(int) string, value int, seed uint64) (argent.Index, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		last     argent.Index
		firstErr error
		wg       sync.WaitGroup
	)
	starts := make(chan int)
	for w := range fillWriters {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(seed, uint64(w)))
			for from := range starts {
				to := min(from+fillBatch, n)
				b := argent.Batch{Ops: make([]argent.Op, 0, to-from)}
				for k := from; k < to; k++ {
					v := make([]byte, value)
					for i := range v {
						v[i] = byte(r.Uint32())
					}
					b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(name(k)), Value: v})
				}
				idx, err := p.Client.Txn(ctx, b)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("txn of keys %d..%d: %w", from, to-1, err)
					cancel()
				}
				last = max(last, idx)
				mu.Unlock()
			}
		})
	}
	for from := 0; from < n && ctx.Err() == nil; from += fillBatch {
		select {
		case starts <- from:
		case <-ctx.Done():
		}
	}
	close(starts)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return last, ctx.Err()
}
