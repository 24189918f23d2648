package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// mustWatch starts a watch and closes it at cleanup.
func mustWatch(t *testing.T, c *client.Client, prefix string, from argent.Index) *client.Watcher {
	t.Helper()
	w, err := c.Watch(t.Context(), []byte(prefix), from)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, from, err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// batchWait bounds how long nextBatch waits for a batch.
const batchWait = 5 * time.Second

// nextBatch returns the next event that is not a progress marker, and
// fails the test if none comes within batchWait: progress markers keep
// coming while a batch is missing, so skipping them alone would never
// end, and a silent stream is closed to end a blocked Next.
func nextBatch(t *testing.T, w *client.Watcher) client.Event {
	t.Helper()
	deadline := time.Now().Add(batchWait)
	timer := time.AfterFunc(batchWait, func() { _ = w.Close() })
	defer timer.Stop()
	markers := 0
	for {
		ev, err := w.Next()
		switch {
		case err == nil && !ev.Progress:
			return ev
		case err != nil && time.Now().After(deadline):
			t.Fatalf("watch: no batch within %v (%d progress markers): %v", batchWait, markers, err)
		case err != nil:
			t.Fatalf("Next: %v", err)
		case time.Now().After(deadline):
			t.Fatalf("watch: no batch within %v, only progress markers (%d, the last at %d)", batchWait, markers+1, ev.Index)
		}
		markers++
	}
}

func TestClient_Watch(t *testing.T) {
	_, c := newFake(t)
	ctx := t.Context()
	for _, k := range []string{"p/a", "q/a", "p/b"} {
		if _, err := c.Put(ctx, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	w := mustWatch(t, c, "p/", 1)
	want := []client.Event{
		{Index: 1, Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("p/a"), Value: []byte("vp/a")}}},
		{Index: 3, Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("p/b"), Value: []byte("vp/b")}}},
	}
	for _, ev := range want {
		if got := nextBatch(t, w); !reflect.DeepEqual(got, ev) {
			t.Errorf("Next = %+v, want %+v", got, ev)
		}
	}

	// A progress marker comes while nothing is written.
	ev, err := w.Next()
	if err != nil || !ev.Progress || ev.Index != 3 || ev.Ops != nil {
		t.Errorf("Next = %+v, %v; want progress at 3", ev, err)
	}

	// New batches arrive live.
	if _, err := c.Txn(ctx, argent.Batch{Ops: []argent.Op{
		{Type: argent.OpDelete, Key: []byte("p/a")},
		{Type: argent.OpPut, Key: []byte("q/b"), Value: []byte("x")},
		{Type: argent.OpDeletePrefix, Key: []byte("p/")},
	}}); err != nil {
		t.Fatal(err)
	}
	wantLive := client.Event{Index: 4, Ops: []argent.Op{
		{Type: argent.OpDelete, Key: []byte("p/a")},
		{Type: argent.OpDeletePrefix, Key: []byte("p/")},
	}}
	if got := nextBatch(t, w); !reflect.DeepEqual(got, wantLive) {
		t.Errorf("Next = %+v, want %+v", got, wantLive)
	}
}

func TestClient_Watch_FromNow(t *testing.T) {
	_, c := newFake(t)
	if _, err := c.Put(t.Context(), []byte("k"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	w := mustWatch(t, c, "", 0)
	if ev, err := w.Next(); err != nil || !ev.Progress || ev.Index != 1 {
		t.Fatalf("Next = %+v, %v; want progress at 1", ev, err)
	}
	if _, err := c.Put(t.Context(), []byte("k"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if ev := nextBatch(t, w); ev.Index != 2 || string(ev.Ops[0].Value) != "new" {
		t.Errorf("Next = %+v, want the put at 2", ev)
	}
}

func TestClient_Watch_Query(t *testing.T) {
	got := make(chan *http.Request, 1)
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r
	})
	w := mustWatch(t, c, "a b/\xff", 42)
	r := <-got
	want := url.Values{"prefix": {"a b/\xff"}, "from": {"42"}}
	if r.URL.Path != "/v1/watch" || !reflect.DeepEqual(r.URL.Query(), want) {
		t.Errorf("request = %s %v, want /v1/watch %v", r.URL.Path, r.URL.Query(), want)
	}
	if _, err := w.Next(); err != io.EOF {
		t.Errorf("Next on an empty stream = %v, want io.EOF", err)
	}
}

func TestClient_Watch_Error(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"error":{"code":"compacted","message":"index 3 is compacted"}}`))
	})
	if _, err := c.Watch(t.Context(), nil, 3); !errors.Is(err, argent.ErrCompacted) {
		t.Errorf("Watch = %v, want ErrCompacted", err)
	}
}

func TestWatcher_Next(t *testing.T) {
	put := func(idx argent.Index, k, v string) client.Event {
		return client.Event{Index: idx, Ops: []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}}}
	}
	progress := func(idx argent.Index) client.Event { return client.Event{Index: idx, Progress: true} }
	for _, tt := range []struct {
		name    string
		from    argent.Index
		stream  string
		want    []client.Event
		wantErr func(error) bool
	}{
		{
			name: "CleanEnd", from: 5,
			stream: `{"index":5,"ops":[{"op":"put","key":"k","value":"aGk="}]}` + "\n" +
				`{"index":7,"progress":true}` + "\n" +
				`{"index":8,"ops":[{"op":"put","key":"k","value":""},{"op":"delete","key":"j"}]}` + "\n",
			want: []client.Event{put(5, "k", "hi"), progress(7),
				{Index: 8, Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte{}}, {Type: argent.OpDelete, Key: []byte("j")}}}},
			wantErr: func(err error) bool { return err == io.EOF },
		},
		{
			name:    "ProgressBelowFrom",
			from:    100,
			stream:  `{"index":50,"progress":true}` + "\n" + `{"index":60,"progress":true}` + "\n" + `{"index":100,"ops":[{"op":"put","key":"k","value":"aGk="}]}` + "\n",
			want:    []client.Event{progress(50), progress(60), put(100, "k", "hi")},
			wantErr: func(err error) bool { return err == io.EOF },
		},
		{
			name:   "ErrorLine",
			stream: `{"index":1,"ops":[{"op":"put","key":"k","value":"aGk="}]}` + "\n" + `{"index":1,"error":{"code":"compacted","message":"fell behind"}}` + "\n",
			want:   []client.Event{put(1, "k", "hi")},
			wantErr: func(err error) bool {
				var ce *client.Error
				return errors.Is(err, argent.ErrCompacted) && errors.As(err, &ce)
			},
		},
		{
			name:    "Truncated",
			stream:  `{"index":1,"ops":[{"op":"put","key":"k","value":"aGk="}]}` + "\n" + `{"index":2,"ops":[{"op":"pu`,
			want:    []client.Event{put(1, "k", "hi")},
			wantErr: func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) },
		},
		{
			name:    "Garbage",
			stream:  "not json\n",
			wantErr: func(err error) bool { return err != nil && err != io.EOF },
		},
		{
			name:    "UnknownOp",
			stream:  `{"index":1,"ops":[{"op":"merge","key":"k"}]}` + "\n",
			wantErr: func(err error) bool { return errors.Is(err, argent.ErrInvalid) },
		},
		{
			name:    "Duplicate",
			stream:  `{"index":3,"ops":[{"op":"delete","key":"k"}]}` + "\n" + `{"index":3,"ops":[{"op":"delete","key":"k"}]}` + "\n",
			want:    []client.Event{{Index: 3, Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("k")}}}},
			wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "batch 3 after index 3") },
		},
		{
			name:    "BatchAfterProgress",
			stream:  `{"index":5,"progress":true}` + "\n" + `{"index":4,"ops":[{"op":"delete","key":"k"}]}` + "\n",
			want:    []client.Event{progress(5)},
			wantErr: func(err error) bool { return err != nil && err != io.EOF },
		},
		{
			name:    "ProgressBackwards",
			stream:  `{"index":5,"ops":[{"op":"delete","key":"k"}]}` + "\n" + `{"index":4,"progress":true}` + "\n",
			want:    []client.Event{{Index: 5, Ops: []argent.Op{{Type: argent.OpDelete, Key: []byte("k")}}}},
			wantErr: func(err error) bool { return err != nil && err != io.EOF },
		},
		{
			name:    "BeforeFrom",
			from:    10,
			stream:  `{"index":9,"ops":[{"op":"delete","key":"k"}]}` + "\n",
			wantErr: func(err error) bool { return err != nil && err != io.EOF },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				_, _ = w.Write([]byte(tt.stream))
			})
			w := mustWatch(t, c, "", tt.from)
			for _, want := range tt.want {
				got, err := w.Next()
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Next = %+v, want %+v", got, want)
				}
			}
			_, err := w.Next()
			if !tt.wantErr(err) {
				t.Errorf("last Next = %v", err)
			}
			if _, again := w.Next(); again != err {
				t.Errorf("Next after error = %v, want the same %v", again, err)
			}
		})
	}
}

// blockingWatch returns a client whose watch sends one progress marker and
// then stays open until the request ends.
func blockingWatch(t *testing.T) *client.Client {
	return rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"index":1,"progress":true}` + "\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
}

func TestWatcher_Close(t *testing.T) {
	c := blockingWatch(t)
	w := mustWatch(t, c, "", 0)
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, argent.ErrClosed) {
			t.Errorf("Next = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWatcher_ContextCancel(t *testing.T) {
	c := blockingWatch(t)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := c.Watch(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := w.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next = %v, want context.Canceled", err)
	}
}
