package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// watchEvent is one event of a watch and when it arrived.
type watchEvent struct {
	client.Event
	at time.Time
}

// watchCollector reads a watch in a goroutine and keeps every event.
type watchCollector struct {
	desc   string
	w      *client.Watcher
	cancel context.CancelFunc // ends the watch's request
	done   chan struct{}

	mu struct {
		sync.Mutex
		events []watchEvent
		err    error // the error that ended the watch
	}
}

func startWatch(t *testing.T, c *client.Client, prefix string, from argent.Index) *watchCollector {
	t.Helper()
	wc := &watchCollector{desc: fmt.Sprintf("watch %s prefix=%q from=%d", c.Addr(), prefix, from), done: make(chan struct{})}
	var p []byte
	if prefix != "" {
		p = []byte(prefix)
	}
	// A node that never answers must not hold the test until its timeout.
	ctx, cancel := context.WithCancel(context.Background())
	opening := time.AfterFunc(watchWait, cancel)
	w, err := c.Watch(ctx, p, from)
	if !opening.Stop() {
		err = fmt.Errorf("no answer within %v: %w", watchWait, err)
	}
	if err != nil {
		cancel()
		t.Fatalf("%s: %v", wc.desc, err)
	}
	wc.w, wc.cancel = w, cancel
	t.Cleanup(func() { wc.stop() })
	go func() {
		defer close(wc.done)
		for {
			ev, err := w.Next()
			wc.mu.Lock()
			if err != nil {
				wc.mu.err = err
				wc.mu.Unlock()
				return
			}
			wc.mu.events = append(wc.mu.events, watchEvent{Event: ev, at: time.Now()})
			wc.mu.Unlock()
		}
	}()
	return wc
}

// snapshot returns the events so far and the error that ended the watch, if
// it has ended.
func (wc *watchCollector) snapshot() ([]watchEvent, error) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return append([]watchEvent(nil), wc.mu.events...), wc.mu.err
}

// watchWait bounds the wait for a watch to open, and for its reader to end
// once the watch is closed.
const watchWait = 10 * time.Second

// stop ends the watch and returns its events, and the error that ended it
// before stop, if any (or that its reader did not end within watchWait).
func (wc *watchCollector) stop() ([]watchEvent, error) {
	wc.w.Close()
	wc.cancel()
	select {
	case <-wc.done:
	case <-time.After(watchWait):
		evs, _ := wc.snapshot()
		return evs, fmt.Errorf("the watch's reader did not end within %v of Close", watchWait)
	}
	evs, err := wc.snapshot()
	if errors.Is(err, argent.ErrClosed) {
		err = nil
	}
	return evs, err
}

// waitUntil polls until done(events) or the watch ends or timeout passes,
// and reports whether done held.
func (wc *watchCollector) waitUntil(timeout time.Duration, done func([]watchEvent) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		evs, err := wc.snapshot()
		if done(evs) {
			return true
		}
		if err != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reached reports whether events hold a batch at final or a progress
// marker at or above it.
func reached(final argent.Index) func([]watchEvent) bool {
	return func(evs []watchEvent) bool {
		return len(evs) > 0 && evs[len(evs)-1].Index >= final
	}
}

func batchesOf(evs []watchEvent) []logEntry {
	var out []logEntry
	for _, ev := range evs {
		if !ev.Progress {
			out = append(out, logEntry{Index: ev.Index, Ops: ev.Ops})
		}
	}
	return out
}

// matchOp reports whether op belongs in a watch of prefix: its key is under
// the prefix, or it deletes a prefix that overlaps it.
func matchOp(prefix string, op argent.Op) bool {
	p := []byte(prefix)
	return bytes.HasPrefix(op.Key, p) || op.Type == argent.OpDeletePrefix && bytes.HasPrefix(p, op.Key)
}

// filterLog returns the log as a watch of prefix should show it.
func filterLog(entries []logEntry, prefix string) []logEntry {
	var out []logEntry
	for _, e := range entries {
		var ops []argent.Op
		for _, op := range e.Ops {
			if matchOp(prefix, op) {
				ops = append(ops, op)
			}
		}
		if len(ops) > 0 {
			out = append(out, logEntry{Index: e.Index, Ops: ops})
		}
	}
	return out
}

// checkStream checks a watch's events against want, the batches it must
// show in order, and its progress markers: a marker P comes only after
// every wanted batch <= P.
func checkStream(t *testing.T, seed uint64, desc string, evs []watchEvent, want []logEntry) {
	t.Helper()
	rep := &reporter{t: t, what: desc, seed: seed}
	defer rep.done()
	got := 0
	for _, ev := range evs {
		if ev.Progress {
			if got < len(want) && want[got].Index <= ev.Index {
				rep.errorf("progress marker %d before batch %d was sent", ev.Index, want[got].Index)
			}
			continue
		}
		switch {
		case got >= len(want):
			rep.errorf("unexpected batch %d %s after the last expected one", ev.Index, fmtOps(ev.Ops))
		case ev.Index != want[got].Index:
			rep.errorf("got batch %d, want batch %d (a gap, a duplicate or a batch that does not match)", ev.Index, want[got].Index)
			return
		case !opsEqual(ev.Ops, want[got].Ops):
			rep.errorf("batch %d: got ops %s, want %s", ev.Index, fmtOps(ev.Ops), fmtOps(want[got].Ops))
		}
		got++
	}
	if got < len(want) {
		rep.errorf("stream ended after %d of %d batches; next missing: %d", got, len(want), want[got].Index)
	}
}

// TestWatch_Stream checks docs/CONTRACT.md section 3 promise 4 at a replica: a
// watch from 1 opened before the writes shows every batch in order, without
// gaps or duplicates, each with exactly the ops written; progress markers
// come while idle; a watch resumed from a middle index shows the same
// suffix; and a watch with a prefix shows only the matching ops.
func TestWatch_Stream(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	replica := cluster.StartReplica(t, []string{root.Addr})
	rc, pc := newClient(t, root), newClient(t, replica)

	full := startWatch(t, pc, "", 1)

	w := newWorkload(seed, rc, pc, workloadConfig{writers: 4, duration: 3 * time.Second, maxOps: 150})
	w.start()
	w.wait()
	w.logSummary(t)
	w.checkProblems(t)

	// Every index was acknowledged to a writer (to several when the root
	// merged their batches into one entry), and the root's log holds
	// exactly the acknowledged batches: that log is what the watch must
	// show.
	w.mu.Lock()
	ackedAt := map[argent.Index]bool{}
	for _, wr := range w.mu.writes {
		switch wr.outcome {
		case unknown:
			t.Errorf("write failed without a 4xx (no faults were injected): %v", wr.err)
		case acked:
			ackedAt[wr.index] = true
		}
	}
	w.mu.Unlock()
	final := argent.Index(w.maxAcked.Load())
	if final == 0 {
		t.Fatal("no write was acknowledged")
	}
	for i := argent.Index(1); i <= final; i++ {
		if !ackedAt[i] {
			t.Fatalf("index %d was acknowledged to no writer (final %d)", i, final)
		}
	}
	tr := finalTruth(t, w, root)
	w.checkWrites(t, tr)
	if tr.final() != final {
		t.Fatalf("the root's log ends at %d, but the last acknowledged write is at %d", tr.final(), final)
	}
	want := tr.entries
	if st := readStatus(t, rc); st.AppliedIndex != final {
		t.Errorf("root's applied index is %d, want %d (the last acknowledged write)", st.AppliedIndex, final)
	}

	cluster.WaitApplied(t, replica, uint64(final), 15*time.Second)
	if !full.waitUntil(15*time.Second, reached(final)) {
		evs, err := full.snapshot()
		t.Fatalf("%s: did not reach index %d within 15 s; %d events, last %v, err %v", full.desc, final, len(evs), lastEvent(evs), err)
	}

	// Idle: progress markers keep coming.
	idleStart := time.Now()
	time.Sleep(3500 * time.Millisecond)
	idleEnd := time.Now()
	evs, err := full.stop()
	if err != nil {
		t.Errorf("%s ended by itself: %v", full.desc, err)
	}
	checkStream(t, seed, full.desc, evs, want)
	checkIdle(t, full.desc, evs, idleStart, idleEnd, final)

	// Resume from the middle: the same suffix, at the replica and the root.
	mid := final/2 + 1
	for _, c := range []*client.Client{pc, rc} {
		wc := startWatch(t, c, "", mid)
		if !wc.waitUntil(15*time.Second, reached(final)) {
			t.Errorf("%s: did not reach index %d within 15 s", wc.desc, final)
		}
		evs, err := wc.stop()
		if err != nil {
			t.Errorf("%s: %v", wc.desc, err)
		}
		checkStream(t, seed, wc.desc, evs, want[mid-1:])
	}

	// From the next index: no batch, but progress markers.
	next := startWatch(t, pc, "", final+1)
	if !next.waitUntil(3*time.Second, func(evs []watchEvent) bool { return len(evs) > 0 }) {
		t.Errorf("%s: no progress marker within 3 s", next.desc)
	}
	evs, _ = next.stop()
	if b := batchesOf(evs); len(b) > 0 {
		t.Errorf("%s: got batch %d %s, but the log ends at %d", next.desc, b[0].Index, fmtOps(b[0].Ops), final)
	}

	// A prefix gets only the matching ops, at the replica and the root.
	for _, pw := range []struct {
		c      *client.Client
		prefix string
	}{{pc, "a/1/"}, {pc, "c/"}, {rc, "b/2"}, {pc, "e/"}} {
		wantP := filterLog(want, pw.prefix)
		wc := startWatch(t, pw.c, pw.prefix, 1)
		if !wc.waitUntil(15*time.Second, func(evs []watchEvent) bool {
			for _, ev := range evs {
				if ev.Index >= final && ev.Progress {
					return true
				}
			}
			return false
		}) {
			t.Errorf("%s: no progress marker at %d within 15 s", wc.desc, final)
		}
		evs, err := wc.stop()
		if err != nil {
			t.Errorf("%s: %v", wc.desc, err)
		}
		checkStream(t, seed, wc.desc, evs, wantP)
		t.Logf("%s: %d batches", wc.desc, len(wantP))
	}
}

// checkIdle checks that while nothing was written, events (progress
// markers) arrived at least every 3 s, and one said the stream is at final.
func checkIdle(t *testing.T, desc string, evs []watchEvent, start, end time.Time, final argent.Index) {
	t.Helper()
	const maxGap = 3 * time.Second
	last := start
	atFinal := false
	for _, ev := range evs {
		if ev.at.Before(start) || ev.at.After(end) {
			continue
		}
		if !ev.Progress {
			t.Errorf("%s: batch %d while idle", desc, ev.Index)
		}
		if gap := ev.at.Sub(last); gap > maxGap {
			t.Errorf("%s: no event for %v while idle (want a progress marker at least every %v)", desc, gap, maxGap)
		}
		last = ev.at
		atFinal = atFinal || ev.Index >= final
	}
	if gap := end.Sub(last); gap > maxGap {
		t.Errorf("%s: no event for the last %v of the idle time", desc, gap)
	}
	if !atFinal {
		t.Errorf("%s: no progress marker at index >= %d while idle", desc, final)
	}
}

func lastEvent(evs []watchEvent) string {
	if len(evs) == 0 {
		return "none"
	}
	ev := evs[len(evs)-1]
	if ev.Progress {
		return fmt.Sprintf("progress %d", ev.Index)
	}
	return fmt.Sprintf("batch %d", ev.Index)
}
