package api_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/kv"
)

// fastProgress makes progress markers come every 20 ms.
func fastProgress(c *serverConfig) { c.opts.ProgressInterval = 20 * time.Millisecond }

// describe renders a batch line as "index:op key[=value] ...".
func describe(l apiwire.WatchLine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:", l.Index)
	for i, op := range l.Ops {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(op.Op + " " + op.Key)
		if op.Op == "put" {
			b.WriteString("=" + string(op.Value))
		}
	}
	return b.String()
}

func TestServer_WatchFilterAndOrder(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	ts.b.commit(t, put("w/a", "1"))                   // 1
	ts.b.commit(t, put("x/a", "2"))                   // 2: no match
	ts.b.commit(t, put("w/b", "3"), put("x/b", "4"))  // 3: only w/b
	ts.b.commit(t, delPrefix("w"))                    // 4: deletes every w/ key
	ts.b.commit(t, delPrefix("w/a/"))                 // 5: under the prefix
	ts.b.commit(t, del("x/a"))                        // 6: no match
	ts.b.commit(t, del("w/a"), delPrefix("x/"))       // 7: only w/a
	ts.b.commit(t, delPrefix(""), put("w/c", "5"))    // 8: delete everything matches
	ts.b.commit(t, put("w", "no"), put("ww/a", "no")) // 9: no match

	wc := ts.watch(t, "prefix=w/&from=1")
	if ct := wc.resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := []string{
		"1:put w/a=1",
		"3:put w/b=3",
		"4:delete_prefix w",
		"5:delete_prefix w/a/",
		"7:delete w/a",
		"8:delete_prefix  put w/c=5",
	}
	for _, w := range want {
		if got := describe(wc.nextBatch()); got != w {
			t.Fatalf("line = %q, want %q", got, w)
		}
	}
	// Then a progress marker for everything seen: the skipped batch 9 too.
	if l := wc.next(); !l.Progress || l.Index != 9 {
		t.Fatalf("line after the batches = %+v, want progress at 9", l)
	}
}

func TestServer_WatchLive(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	ts.b.commit(t, put("a/1", "old"))
	// from omitted: start after the current state.
	wc := ts.watch(t, "prefix=a/")
	if l := wc.next(); !l.Progress || l.Index != 1 {
		t.Fatalf("first line = %+v, want progress at 1", l)
	}
	ts.b.commit(t, put("b/1", "skip"))
	ts.b.commit(t, put("a/2", "new"))
	if got := describe(wc.nextBatch()); got != "3:put a/2=new" {
		t.Fatalf("line = %q, want 3:put a/2=new", got)
	}
	// from=0 is the same as no from.
	wc0 := ts.watch(t, "prefix=a/&from=0")
	if l := wc0.next(); !l.Progress || l.Index != 3 {
		t.Fatalf("first line = %+v, want progress at 3", l)
	}
}

// TestServer_WatchProgress checks that markers keep coming while nothing
// matches, never go backwards, and cover skipped batches.
func TestServer_WatchProgress(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	ts.b.commit(t, put("other", "1"))
	wc := ts.watch(t, "prefix=mine/&from=1")
	var last argent.Index
	for range 5 {
		l := wc.next()
		if !l.Progress {
			t.Fatalf("line = %+v, want only progress markers", l)
		}
		if l.Index < last {
			t.Fatalf("progress went back from %d to %d", last, l.Index)
		}
		last = l.Index
	}
	if last != 1 {
		t.Errorf("progress = %d, want 1", last)
	}
	for range 10 {
		ts.b.commit(t, put("other", "x"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for last < 11 && time.Now().Before(deadline) {
		l := wc.next()
		if !l.Progress || l.Index < last {
			t.Fatalf("line = %+v after progress %d", l, last)
		}
		last = l.Index
	}
	if last != 11 {
		t.Fatalf("progress reached %d, want 11", last)
	}
}

func TestServer_WatchDefaultProgressInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 1 s default interval")
	}
	ts := newTestServer(t)
	wc := ts.watch(t, "prefix=a")
	start := time.Now()
	wc.next() // the marker sent when first caught up
	l := wc.next()
	if took := time.Since(start); !l.Progress || took < 900*time.Millisecond || took > 2*time.Second {
		t.Errorf("second marker %+v after %v, want a marker after about 1s", l, took)
	}
}

// TestServer_WatchResume checks that a watch resumed from N+1 continues
// after N with no duplicates and no gaps.
func TestServer_WatchResume(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	for i := 1; i <= 6; i++ {
		ts.b.commit(t, put(fmt.Sprintf("r/%d", i), "v"))
	}
	wc := ts.watch(t, "prefix=r/&from=2")
	var last argent.Index
	for range 3 {
		last = wc.nextBatch().Index
	}
	if last != 4 {
		t.Fatalf("third batch from 2 = %d, want 4", last)
	}
	wc.close()
	wc2 := ts.watch(t, fmt.Sprintf("prefix=r/&from=%d", last+1))
	for _, want := range []argent.Index{5, 6} {
		if got := wc2.nextBatch().Index; got != want {
			t.Fatalf("resumed batch = %d, want %d", got, want)
		}
	}
	ts.b.commit(t, put("r/7", "v"))
	if got := wc2.nextBatch().Index; got != 7 {
		t.Fatalf("live batch = %d, want 7", got)
	}
}

// TestServer_WatchFutureFrom checks a watch from an index the node has not
// reached: progress stays at the applied index and batches start at from.
func TestServer_WatchFutureFrom(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	ts.b.commit(t, put("f/1", "v"))
	wc := ts.watch(t, "prefix=f/&from=4")
	if l := wc.next(); !l.Progress || l.Index != 1 {
		t.Fatalf("first line = %+v, want progress at the applied index 1", l)
	}
	ts.b.commit(t, put("f/2", "v"))
	ts.b.commit(t, put("f/3", "v"))
	ts.b.commit(t, put("f/4", "v"))
	if got := describe(wc.nextBatch()); got != "4:put f/4=v" {
		t.Fatalf("first batch = %q, want 4:put f/4=v", got)
	}
}

func TestServer_WatchCompacted(t *testing.T) {
	now := time.Now()
	ts := newTestServer(t, fastProgress, func(c *serverConfig) {
		c.kv = &kv.Options{LogDuration: time.Hour, Now: func() time.Time { return now }}
	})
	// Older than twice the log's window: the log drops them at once.
	old := now.Add(-3 * time.Hour)
	for i := 0; i < 5; i++ {
		ts.b.commitAt(t, old, put("c/old", "v"))
	}
	ts.b.commit(t, put("c/new", "v")) // 6
	if _, err := ts.b.store.Trim(); err != nil {
		t.Fatal(err)
	}
	if first := ts.b.store.LogFirst(); first != 6 {
		t.Fatalf("LogFirst = %d after trim, want 6", first)
	}
	for _, from := range []string{"1", "5"} {
		resp, body := ts.doString(t, "GET", "/v1/watch?prefix=c/&from="+from, "")
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("from %s: status %d, want 410: %s", from, resp.StatusCode, body)
		}
		if d := decodeError(t, resp, body); d.Code != apiwire.CodeCompacted {
			t.Errorf("code = %q, want compacted", d.Code)
		}
	}
	wc := ts.watch(t, "prefix=c/&from=6")
	if got := describe(wc.nextBatch()); got != "6:put c/new=v" {
		t.Errorf("first batch = %q", got)
	}
}

// TestServer_WatchEnds checks that a stream ends when the client goes and
// when the Server closes.
func TestServer_WatchEnds(t *testing.T) {
	ts := newTestServer(t, fastProgress)
	streams := func() float64 {
		mfs, _ := ts.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "argent_http_watch_streams" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	wc := ts.watch(t, "prefix=a")
	wc.next()
	waitFor(t, "one open stream", func() bool { return streams() == 1 })
	wc.close()
	waitFor(t, "the stream to end after the client left", func() bool { return streams() == 0 })

	wc2 := ts.watch(t, "prefix=a")
	wc2.next()
	ts.api.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := wc2.nextErr()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after Close: %v, want EOF", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream still sends lines 5s after Close, want EOF")
		}
	}
	waitFor(t, "no open stream after Close", func() bool { return streams() == 0 })
}
