package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/dcstream"
	"github.com/argent-kv/argent/internal/lookup"
)

var ds = argent.DatasetID{9}

// Concurrent lookups of one key at one index share one upstream lookup.
func TestRelay_LookupsShared(t *testing.T) {
	rep := startReplica(t, &fakeReplica{ds: ds, values: map[string]string{"k": "v"}, gate: make(chan struct{})})
	rl, addr := startRelay(t, ds, rep.addr())
	c := lookupClient(t, addr, ds)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Get(context.Background(), []byte("k"), 10)
			if err == nil && (string(r.Value.Value) != "v" || r.Index != 10 || r.ModIndex != 1) {
				err = fmt.Errorf("got %+v", r)
			}
			errs <- err
		}()
	}
	waitFor(t, 5*time.Second, func() error {
		if got := rl.Stats().Lookups.Load(); got != n {
			return fmt.Errorf("%d lookups arrived", got)
		}
		return nil
	})
	close(rep.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := rep.keys.Load(); got != 1 {
		t.Fatalf("replica asked for %d keys, want 1", got)
	}
	if up, sh := rl.Stats().UpstreamLookups.Load(), rl.Stats().Shared.Load(); up != 1 || sh != n-1 {
		t.Fatalf("upstream lookups %d, shared %d; want 1, %d", up, sh, n-1)
	}
}

// A many-key lookup asks its keys in one upstream request, and a replica
// behind the index asked for is answered as of its own index.
func TestRelay_LookupPassesThrough(t *testing.T) {
	for _, tt := range []struct {
		name    string
		applied argent.Index
		want    argent.Index
	}{
		{"AtIndex", 100, 10},
		{"ReplicaBehind", 7, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := startReplica(t, &fakeReplica{ds: ds, applied: tt.applied, values: map[string]string{"a": "1", "c": "3"}})
			_, addr := startRelay(t, ds, rep.addr())
			c := lookupClient(t, addr, ds)
			keys := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
			rs, err := c.GetMany(context.Background(), keys, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 3 || rs[0].Index != tt.want || string(rs[0].Value.Value) != "1" || !rs[1].Absent || string(rs[2].Value.Value) != "3" {
				t.Fatalf("GetMany = %+v", rs)
			}
			if got := rep.requests.Load(); got != 1 {
				t.Fatalf("replica got %d requests, want 1", got)
			}
			r, err := c.Get(context.Background(), []byte("b"), 10)
			if err != nil || !r.Absent || r.Index != tt.want {
				t.Fatalf("Get of an absent key = %+v, %v; want absent as of %d", r, err, tt.want)
			}
		})
	}
}

func TestRelay_LookupFailover(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first func(t *testing.T) string
	}{
		{"Unreachable", func(t *testing.T) string {
			rep := startReplica(t, &fakeReplica{ds: ds})
			a := rep.addr()
			rep.srv.Close()
			return a
		}},
		{"NoData", func(t *testing.T) string {
			return startReplica(t, &fakeReplica{ds: ds, fail: 503, failCode: "unavailable"}).addr()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			good := startReplica(t, &fakeReplica{ds: ds, values: map[string]string{"k": "v"}})
			_, addr := startRelay(t, ds, tt.first(t), good.addr())
			r, err := lookupClient(t, addr, ds).Get(context.Background(), []byte("k"), 5)
			if err != nil || string(r.Value.Value) != "v" {
				t.Fatalf("Get = %+v, %v", r, err)
			}
		})
	}
}

func TestRelay_LookupErrors(t *testing.T) {
	rep := startReplica(t, &fakeReplica{ds: ds, applied: 40, fail: 410, failCode: "compacted"})
	_, addr := startRelay(t, ds, rep.addr())
	_, err := lookupClient(t, addr, ds).Get(context.Background(), []byte("k"), 5)
	var le *lookup.Error
	if !errors.Is(err, argent.ErrCompacted) || !errors.As(err, &le) || le.Index != 40 {
		t.Fatalf("Get = %v, want compacted with the replica's index 40", err)
	}
	_, err = lookupClient(t, addr, argent.DatasetID{1}).Get(context.Background(), []byte("k"), 5)
	if !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Fatalf("Get from another dataset = %v, want ErrDatasetMismatch", err)
	}
	_, err = lookupClient(t, addr, ds).GetMany(context.Background(), [][]byte{make([]byte, 2000)}, 5)
	if !errors.Is(err, argent.ErrInvalid) && !errors.Is(err, argent.ErrTooLarge) {
		t.Fatalf("GetMany of a key over the limit = %v", err)
	}
}

// Every miss the relay resolved reaches the subscribers of its stream,
// with the index the replica answered at.
func TestRelay_PublishesMisses(t *testing.T) {
	rep := startReplica(t, &fakeReplica{ds: ds, applied: 8, values: map[string]string{"a": "1"}})
	rl, addr := startRelay(t, ds, rep.addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan dcstream.Miss, 10)
	go func() {
		_ = dcstream.SubscribeWith(ctx, addr, &dcstream.SubscribeOptions{Dataset: ds}, func(m dcstream.Miss) { got <- m })
	}()
	waitFor(t, 5*time.Second, func() error {
		if rl.HubStats().Subscribers != 1 {
			return errors.New("not subscribed yet")
		}
		return nil
	})
	if _, err := lookupClient(t, addr, ds).GetMany(context.Background(), [][]byte{[]byte("a"), []byte("b")}, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []dcstream.Miss{{Key: []byte("a"), Value: []byte("1"), ModIndex: 1, Index: 8}, {Key: []byte("b"), Absent: true, Index: 8}} {
		select {
		case m := <-got:
			if string(m.Key) != string(want.Key) || string(m.Value) != string(want.Value) || m.ModIndex != want.ModIndex || m.Absent != want.Absent || m.Index != want.Index {
				t.Fatalf("miss %+v, want %+v", m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no miss published")
		}
	}
}
