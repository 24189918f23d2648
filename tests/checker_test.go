package tests

import (
	"fmt"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorkload(1, nil, nil, workloadConfig{})
			w.mu.writes = tt.writes
			rec := &recordTB{TB: t}
			w.checkWrites(rec, tr)
			checkFound(t, rec.errs, tt.want)
		})
	}
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
