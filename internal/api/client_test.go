package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// TestServer_Client drives the server with the public client package, so the
// two agree on paths, encodings and errors.
func TestServer_Client(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ts.URL, client.WithHTTPClient(ts.Client()))
	if err != nil {
		t.Fatal(err)
	}

	w, err := c.Watch(ctx, []byte("cfg/"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	key := []byte("cfg/a b/../c%")
	i1, err := c.Put(ctx, key, []byte("v1"))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	v, err := c.Get(ctx, key, client.ReadOptions{MinIndex: i1})
	if err != nil || string(v.Value) != "v1" || v.ModIndex != i1 || v.Index < i1 || v.Tier != "root" {
		t.Fatalf("get = %+v, %v", v, err)
	}
	if _, err := c.Put(ctx, []byte("cfg/empty"), nil); err != nil {
		t.Fatalf("put empty: %v", err)
	}
	v, err = c.Get(ctx, []byte("cfg/empty"), client.ReadOptions{})
	if err != nil || v.Value == nil || len(v.Value) != 0 {
		t.Fatalf("get empty = %+v, %v", v, err)
	}
	v, err = c.Get(ctx, []byte("cfg/none"), client.ReadOptions{})
	if !errors.Is(err, argent.ErrNotFound) || v.Index == 0 {
		t.Fatalf("get absent = %+v, %v; want ErrNotFound with an index", v, err)
	}
	_, err = c.Get(ctx, key, client.ReadOptions{MinIndex: 1000, Wait: 10 * time.Millisecond})
	if !errors.Is(err, argent.ErrTimeout) {
		t.Fatalf("get beyond applied: %v, want ErrTimeout", err)
	}

	i3, err := c.Txn(ctx, argent.Batch{
		Conditions: []argent.Condition{{Key: key, ModIndex: i1}, {Key: []byte("cfg/lock"), ModIndex: 0}},
		Ops:        []argent.Op{put("cfg/lock", "me"), del("cfg/empty")},
	})
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	_, err = c.Txn(ctx, argent.Batch{
		Conditions: []argent.Condition{{Key: []byte("cfg/lock"), ModIndex: 0}},
		Ops:        []argent.Op{put("cfg/lock", "you")},
	})
	var ce *argent.ConditionError
	if !errors.As(err, &ce) || string(ce.Key) != "cfg/lock" || ce.Want != 0 || ce.Got != i3 {
		t.Fatalf("txn on a held lock: %v (%+v), want a ConditionError got %d", err, ce, i3)
	}

	idx, items, err := c.MGet(ctx, [][]byte{[]byte("cfg/lock"), []byte("cfg/empty")}, client.ReadOptions{MinIndex: i3})
	if err != nil || idx < i3 || len(items) != 2 || string(items[0].Value) != "me" || !items[1].Absent {
		t.Fatalf("mget = %d %+v, %v", idx, items, err)
	}
	p, err := c.Scan(ctx, []byte("cfg/"), nil, 1, client.ReadOptions{})
	if err != nil || len(p.Items) != 1 || p.Items[0].Key != string(key) || string(p.Next) != string(key) {
		t.Fatalf("scan = %+v, %v", p, err)
	}
	p, err = c.Scan(ctx, []byte("cfg/"), p.Next, 0, client.ReadOptions{MinIndex: p.Index})
	if err != nil || len(p.Items) != 1 || p.Items[0].Key != "cfg/lock" || p.Next != nil {
		t.Fatalf("scan page 2 = %+v, %v", p, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.AppliedIndex != i3 {
		t.Fatalf("status = %+v, %v", st, err)
	}

	var seen []argent.Index
	for len(seen) < 3 {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if !ev.Progress {
			seen = append(seen, ev.Index)
		}
	}
	if seen[0] != i1 || seen[2] != i3 {
		t.Errorf("watched batches %v, want %d, %d, %d", seen, i1, i1+1, i3)
	}

	if _, err := c.Watch(ctx, []byte("cfg/"), 0); err != nil {
		t.Errorf("watch from now: %v", err)
	}
}
