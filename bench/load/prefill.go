package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

const (
	// prefillBatch is the number of keys of one prefill txn.
	prefillBatch = 1000
	// prefillWriters is the number of txns in flight during prefill.
	prefillWriters = 4
	// prefillTimeout bounds the prefill writes and the wait for the target.
	prefillTimeout = 5 * time.Minute
)

// prefill writes every key, cfg.value random bytes each, through cfg.root
// with POST /v1/txn, then waits until cfg.target's applied index reaches the
// last index written. It returns the time it took and that index.
func prefill(cfg config) (time.Duration, argent.Index, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), prefillTimeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: prefillWriters, DisableCompression: true}}
	defer hc.CloseIdleConnections()

	var (
		mu      sync.Mutex
		last    argent.Index
		firstEr error
		wg      sync.WaitGroup
	)
	starts := make(chan int)
	for w := range prefillWriters {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(cfg.seed, uint64(w)))
			for from := range starts {
				idx, err := prefillTxn(ctx, hc, cfg, r, from, min(from+prefillBatch, cfg.keys))
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
					cancel()
				}
				last = max(last, idx)
				mu.Unlock()
			}
		})
	}
	for from := 0; from < cfg.keys && ctx.Err() == nil; from += prefillBatch {
		select {
		case starts <- from:
		case <-ctx.Done():
		}
	}
	close(starts)
	wg.Wait()
	if firstEr != nil {
		return 0, 0, firstEr
	}
	if err := waitApplied(ctx, hc, cfg.target, last); err != nil {
		return 0, 0, err
	}
	return time.Since(start), last, nil
}

// prefillTxn writes keys [from, to) in one txn and returns its index.
func prefillTxn(ctx context.Context, hc *http.Client, cfg config, r *mrand.Rand, from, to int) (argent.Index, error) {
	req := client.TxnRequest{Ops: make([]client.TxnOp, 0, to-from)}
	for k := from; k < to; k++ {
		v := make([]byte, cfg.value)
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		req.Ops = append(req.Ops, client.TxnOp{Op: "put", Key: keyName(k), Value: v})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	var out client.IndexResponse
	if err := call(ctx, hc, http.MethodPost, "http://"+cfg.root+"/v1/txn", body, &out); err != nil {
		return 0, fmt.Errorf("txn of keys %d..%d: %w", from, to-1, err)
	}
	return out.Index, nil
}

// waitApplied polls target's /v1/status until its applied index is at
// least idx.
func waitApplied(ctx context.Context, hc *http.Client, target string, idx argent.Index) error {
	for {
		var st client.StatusResponse
		err := call(ctx, hc, http.MethodGet, "http://"+target+"/v1/status", nil, &st)
		if err == nil && st.AppliedIndex >= idx {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not apply index %d (at %d, last error %v): %w", target, idx, st.AppliedIndex, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call sends one request and decodes a 200 answer's JSON into out.
func call(ctx context.Context, hc *http.Client, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}
