package tests

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// recordTB records Errorf calls instead of failing the test.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordTB) Logf(string, ...any) {}
func (r *recordTB) Helper()             {}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}
func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }
func delPrefix(p string) argent.Op {
	return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)}
}

// checkerLog is the log of the checker tests.
var checkerLog = []logEntry{
	{1, []argent.Op{put("a", "1"), put("b/1", "x")}},
	{2, []argent.Op{put("b/2", "y"), del("a")}},
	{3, []argent.Op{delPrefix("b/"), put("b/3", "z")}},
	{4, []argent.Op{put("a/x", "3"), put("a", "4"), del("a")}},
	{5, []argent.Op{put("c", "5")}},
}

func TestTruth(t *testing.T) {
	tr := newTruth(checkerLog)
	tests := []struct {
		key  string
		s    argent.Index
		want string // value@mod or "absent"
	}{
		{"a", 0, "absent"}, {"a", 1, "1@1"}, {"a", 2, "absent"}, {"a", 4, "absent"},
		{"b/1", 1, "x@1"}, {"b/1", 2, "x@1"}, {"b/1", 3, "absent"},
		{"b/2", 2, "y@2"}, {"b/2", 3, "absent"}, {"b/3", 3, "z@3"},
		{"a/x", 3, "absent"}, {"a/x", 5, "3@4"}, {"c", 5, "5@5"}, {"zz", 5, "absent"},
	}
	for _, tt := range tests {
		got := "absent"
		if v, mod, ok := tr.at(tt.key, tt.s); ok {
			got = fmt.Sprintf("%s@%d", v, mod)
		}
		if got != tt.want {
			t.Errorf("at(%q, %d) = %s, want %s", tt.key, tt.s, got, tt.want)
		}
	}
	items, more := tr.scan("", "", 2, 5)
	if got := fmtItems(items); got != `["a/x"="3"@4, "b/3"="z"@3]` || !more {
		t.Errorf("scan of 2 at 5 = %s more=%v", got, more)
	}
	items, more = tr.scan("b/", "b/1", 10, 2)
	if got := fmtItems(items); got != `["b/2"="y"@2]` || more {
		t.Errorf("scan b/ after b/1 at 2 = %s more=%v", got, more)
	}
}

// TestChecker checks that the workload checks find planted violations, so
// that a pass of the multi-process tests means something.
func TestChecker(t *testing.T) {
	tr := newTruth(checkerLog)
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	item := func(k, v string, mod argent.Index) client.Item {
		return client.Item{Key: k, Value: []byte(v), ModIndex: mod}
	}
	absent := func(k string) client.Item { return client.Item{Key: k, Absent: true} }
	read := func(kind string, start, end int, s argent.Index, keys []string, items ...client.Item) *readRec {
		return &readRec{node: "replica", worker: "r", kind: kind, keys: keys, start: at(start), end: at(end), s: s, items: items}
	}
	scan := func(start, end int, s argent.Index, prefix, after string, limit int, next string, items ...client.Item) *readRec {
		r := read("scan", start, end, s, nil, items...)
		r.prefix, r.after, r.limit, r.next = prefix, after, limit, next
		return r
	}
	tests := []struct {
		name  string
		log   []logEntry // default checkerLog
		reads []*readRec
		want  []string // substrings of the errors, in order
	}{
		{name: "Good", reads: []*readRec{
			read("get", 0, 1, 1, []string{"a"}, item("a", "1", 1)),
			read("get", 2, 4, 2, []string{"a"}, absent("a")),
			read("mget", 4, 5, 3, []string{"b/1", "b/3", "a"}, absent("b/1"), item("b/3", "z", 3), absent("a")),
			scan(6, 7, 5, "", "", 2, "b/3", item("a/x", "3", 4), item("b/3", "z", 3)),
			scan(8, 9, 5, "", "b/3", 2, "", item("c", "5", 5)),
			scan(2, 3, 2, "b/", "", 0, "", item("b/1", "x", 1), item("b/2", "y", 2)),
		}},
		{name: "StaleGet", reads: []*readRec{
			read("get", 0, 1, 2, []string{"a"}, item("a", "1", 1)),
		}, want: []string{`got "a"="1"@1, want "a" absent at S=2`}},
		{name: "WrongModIndex", reads: []*readRec{
			read("get", 0, 1, 5, []string{"c"}, item("c", "5", 4)),
		}, want: []string{`got "c"="5"@4, want "c"="5"@5`}},
		{name: "HalfBatch", reads: []*readRec{
			read("mget", 0, 1, 3, []string{"b/2", "b/3"}, item("b/2", "y", 2), item("b/3", "z", 3)),
		}, want: []string{`key 0 of 2: got "b/2"="y"@2, want "b/2" absent`}},
		{name: "ScanMissesKey", reads: []*readRec{
			scan(0, 1, 5, "", "", 10, "", item("a/x", "3", 4), item("c", "5", 5)),
		}, want: []string{"page has 2 items"}},
		{name: "ScanNoNext", reads: []*readRec{
			scan(0, 1, 5, "", "", 1, "", item("a/x", "3", 4)),
		}, want: []string{"page says it is the last"}},
		{name: "ScanNextSkips", reads: []*readRec{
			scan(0, 1, 5, "", "", 1, "b/4", item("a/x", "3", 4)),
		}, want: []string{`next "b/4" skips key "b/3"`}},
		{name: "MinIndex", reads: []*readRec{
			func() *readRec {
				r := read("get", 0, 1, 1, []string{"a"}, item("a", "1", 1))
				r.minIndex = 2
				return r
			}(),
		}, want: []string{"answered from S=1 < min_index=2"}},
		{name: "Future", reads: []*readRec{
			read("get", 0, 1, 6, []string{"c"}, item("c", "5", 5)),
		}, want: []string{"beyond the end of the root's log"}},
		{name: "GoesBack", reads: []*readRec{
			read("get", 0, 1, 2, []string{"a"}, absent("a")),
			read("get", 2, 3, 1, []string{"a"}, item("a", "1", 1)),
			read("get", 1, 4, 1, []string{"a"}, item("a", "1", 1)), // concurrent: fine
		}, want: []string{"S went back from 2 to 1"}},
		// A merged entry is one state: a read sees all of its client
		// batches or none.
		{name: "MergedEntry", log: mergedLog, reads: []*readRec{
			read("mget", 0, 1, 2, []string{"a", "b", "c"}, item("a", "2", 2), item("b", "2", 2), item("c", "1", 2)),
			read("mget", 0, 3, 1, []string{"a", "b", "c"}, item("a", "1", 1), item("b", "1", 1), absent("c")),
		}},
		{name: "HalfMergedEntry", log: mergedLog, reads: []*readRec{
			read("mget", 0, 1, 2, []string{"a", "b"}, item("a", "2", 2), item("b", "1", 1)),
		}, want: []string{`key 1 of 2: got "b"="1"@1, want "b"="2"@2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tr
			if tt.log != nil {
				tr = newTruth(tt.log)
			}
			w := newWorkload(1, nil, nil, workloadConfig{})
			w.t0 = t0
			w.mu.reads["replica"] = tt.reads
			rec := &recordTB{TB: t}
			w.checkReads(rec, tr, "replica")
			w.checkMonotonic(rec, "replica")
			checkFound(t, rec.errs, tt.want)
		})
	}
}

func TestChecker_Writes(t *testing.T) {
	tr := newTruth(checkerLog)
	b := func(ops ...argent.Op) argent.Batch { return argent.Batch{Ops: ops} }
	ack := func(i argent.Index, batch argent.Batch) *writeRec {
		return &writeRec{worker: "w", kind: "txn", batch: batch, index: i, outcome: acked}
	}
	good := []*writeRec{
		ack(1, checkerLog[0].asBatch()), ack(2, checkerLog[1].asBatch()), ack(3, checkerLog[2].asBatch()),
		ack(4, checkerLog[3].asBatch()),
		{worker: "w", kind: "put", batch: b(put("c", "5")), outcome: unknown},
		{worker: "w", kind: "put", batch: b(put("d", "6")), outcome: unknown},
	}
	tests := []struct {
		name   string
		log    []logEntry // default checkerLog
		writes []*writeRec
		want   []string
	}{
		{name: "Good", writes: good},
		{name: "Lost", writes: append(good[:len(good):len(good)], ack(6, b(put("e", "1")))), want: []string{"an acknowledged write was lost"}},
		{name: "WrongOps", writes: append([]*writeRec{ack(5, b(put("c", "6")))}, good[:4]...), want: []string{"but the log holds", "which no client sent"}},
		{name: "Phantom", writes: good[:4], want: []string{"index 5 holds [put(\"c\"=\"5\")], which no client sent"}},
		{name: "Rejected", writes: append(good[:4:4], &writeRec{worker: "w", kind: "cas", batch: b(put("c", "5")), outcome: rejected}), want: []string{"was refused"}},
		{name: "Condition", writes: []*writeRec{
			ack(1, checkerLog[0].asBatch()), ack(2, checkerLog[1].asBatch()), ack(3, checkerLog[2].asBatch()),
			ack(4, checkerLog[3].asBatch()),
			{worker: "w", kind: "cas", index: 5, outcome: acked, batch: argent.Batch{
				Conditions: []argent.Condition{{Key: []byte("b/3"), ModIndex: 2}}, Ops: []argent.Op{put("c", "5")}}},
		}, want: []string{`condition mod_index("b/3")=2, but its mod index at 4 was 3`}},
		{name: "AckedTwiceOnce", writes: append(good[:4:4], ack(5, b(put("c", "5"))), &writeRec{worker: "w2", kind: "put", batch: b(put("c", "5")), index: 5, outcome: acked}),
			want: []string{`w2: acknowledged put at index 5 with ops [put("c"="5")], but the log holds [put("c"="5")] there`}},

		// Merged entries (docs/CONTRACT.md section 1, "Merged batch"): mergedLog's
		// entry 2 is batchA then batchB, entry 3 is batchC then batchD.
		{name: "MergedInLogOrder", log: mergedLog, writes: mergedWrites(nil)},
		{name: "MergedRecordedInOtherOrder", log: mergedLog, writes: reversed(mergedWrites(nil))},
		{name: "MergedOtherOrderInLog", log: swapEntry(mergedLog, 2, batchB, batchA), writes: mergedWrites(nil)},
		{name: "MergedWithUnknown", log: mergedLog, writes: mergedWrites(func(wr *writeRec) {
			if wr.worker == "b" {
				wr.index, wr.outcome = 0, unknown
			}
		})},
		// batchD's condition holds only after batchC (MergedInLogOrder).
		{name: "MergedConditionBeforeItsCause", log: swapEntry(mergedLog, 3, batchD, batchC), writes: mergedWrites(nil),
			want: []string{`d: txn at index 3 acknowledged with condition mod_index("d")=3, but its mod index at 2 was 0`}},
		{name: "MergedConditionIgnoresEarlierBatch", log: mergedLog, writes: mergedWrites(func(wr *writeRec) {
			if wr.worker == "d" {
				wr.batch.Conditions[0].ModIndex = 0 // "d" must be absent, but batchC put it
			}
		}), want: []string{`d: txn at index 3 acknowledged with condition mod_index("d")=0, but its mod index at 2 and the 1 client batches before it in entry 3 ([put("d"="1")]) was 3`}},
		{name: "MergedPhantom", log: withEntry(mergedLog, 2, slices.Concat(batchA, []argent.Op{put("x", "9")}, batchB)), writes: mergedWrites(nil),
			want: []string{`index 2 holds [put("x"="9")] (ops 2..2 of its 5), which no client sent`}},
		{name: "MergedRefused", log: mergedLog, writes: mergedWrites(func(wr *writeRec) {
			if wr.worker == "b" {
				wr.index, wr.outcome = 0, rejected
			}
		}), want: []string{`index 2 holds [delete("b") put("b"="2")] (ops 2..3 of its 4), which b sent and was refused`}},
		{name: "MergedMissingBatch", log: withEntry(mergedLog, 2, batchA), writes: mergedWrites(nil), want: []string{
			`b: acknowledged txn at index 2 with ops [delete("b") put("b"="2")], but the log holds [put("a"="2") put("c"="1")] there`,
		}},
		{name: "MergedSplit", log: splitLog, writes: mergedWrites(nil), want: []string{
			`a: acknowledged txn at index 2 with ops [put("a"="2") put("c"="1")], but the log holds [put("a"="2") delete("b") put("b"="2")] there`,
			`index 2 holds [put("a"="2")] (ops 0..0 of its 3), which is only part of the batch a sent`,
			`index 3 holds [put("c"="1")] (ops 0..0 of its 3), which is only part of the batch a sent`,
		}},
		{name: "MergedAtWrongIndex", log: mergedLog, writes: mergedWrites(func(wr *writeRec) {
			if wr.worker == "c" {
				wr.index = 2
			}
		}), want: []string{
			`c: acknowledged txn at index 2 with ops [put("d"="1")], but the log holds`,
			`index 3 holds [put("d"="1")] (ops 0..0 of its 2), which c sent and was acknowledged at index 2`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tr
			if tt.log != nil {
				tr = newTruth(tt.log)
			}
			w := newWorkload(1, nil, nil, workloadConfig{})
			w.mu.writes = tt.writes
			rec := &recordTB{TB: t}
			w.checkWrites(rec, tr)
			checkFound(t, rec.errs, tt.want)
		})
	}
}

// The client batches of mergedLog.
var (
	batchA = []argent.Op{put("a", "2"), put("c", "1")}
	batchB = []argent.Op{del("b"), put("b", "2")}
	batchC = []argent.Op{put("d", "1")}
	batchD = []argent.Op{put("e", "1")} // if mod_index("d")=3: needs batchC before it
)

// mergedLog is a log whose entries 2 and 3 each merge two client batches.
var mergedLog = []logEntry{
	{1, []argent.Op{put("a", "1"), put("b", "1")}},
	{2, slices.Concat(batchA, batchB)},
	{3, slices.Concat(batchC, batchD)},
	{4, []argent.Op{del("e")}},
}

// splitLog holds mergedLog's batchA split over entries 2 and 3.
var splitLog = []logEntry{
	mergedLog[0],
	{2, slices.Concat(batchA[:1], batchB)},
	{3, slices.Concat(batchA[1:], batchC, batchD)},
	mergedLog[3],
}

// mergedWrites returns the writes of mergedLog, each acknowledged with
// its index, after edit (when not nil) changed each.
func mergedWrites(edit func(*writeRec)) []*writeRec {
	ack := func(worker string, i argent.Index, ops []argent.Op, conds ...argent.Condition) *writeRec {
		return &writeRec{worker: worker, kind: "txn", index: i, outcome: acked,
			batch: argent.Batch{Conditions: conds, Ops: slices.Clone(ops)}}
	}
	ws := []*writeRec{
		ack("w", 1, mergedLog[0].Ops),
		ack("a", 2, batchA),
		ack("b", 2, batchB),
		ack("c", 3, batchC),
		ack("d", 3, batchD, argent.Condition{Key: []byte("d"), ModIndex: 3}),
		ack("w", 4, mergedLog[3].Ops),
	}
	if edit != nil {
		for _, wr := range ws {
			edit(wr)
		}
	}
	return ws
}

func reversed(ws []*writeRec) []*writeRec {
	out := slices.Clone(ws)
	slices.Reverse(out)
	return out
}

// withEntry returns log with entry i's ops replaced by ops.
func withEntry(log []logEntry, i argent.Index, ops []argent.Op) []logEntry {
	out := slices.Clone(log)
	out[i-1] = logEntry{Index: i, Ops: ops}
	return out
}

// swapEntry returns log with entry i holding the batches first and second
// in that order.
func swapEntry(log []logEntry, i argent.Index, first, second []argent.Op) []logEntry {
	return withEntry(log, i, slices.Concat(first, second))
}

// asBatch returns the entry's ops as a batch.
func (e logEntry) asBatch() argent.Batch { return argent.Batch{Ops: e.Ops} }

// checkFound checks that errs are exactly as many as want and each holds
// its substring.
func checkFound(t *testing.T, errs, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(want), strings.Join(errs, "\n"))
	}
	for i := range want {
		if !strings.Contains(errs[i], want[i]) {
			t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want[i])
		}
	}
}

// A write the node refused (4xx, or 507 below a free-disk floor) certainly
// did not commit, so the checker may require it absent from the log; any
// other failure leaves the outcome unknown.
func TestDefiniteFailure(t *testing.T) {
	answer := func(status int, code string) error {
		return fmt.Errorf("put: %w", &client.Error{Status: status, Code: code, Message: "m"})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "ConditionFailed", err: answer(409, client.CodeConditionFailed), want: true},
		{name: "Invalid", err: answer(400, client.CodeInvalid), want: true},
		{name: "InsufficientStorage", err: answer(507, client.CodeInsufficientStorage), want: true},
		{name: "Unavailable", err: answer(503, client.CodeUnavailable)},
		{name: "Internal", err: answer(500, client.CodeInternal)},
		{name: "Transport", err: fmt.Errorf("put: connection reset")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := definiteFailure(tc.err); got != tc.want {
				t.Fatalf("definiteFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
