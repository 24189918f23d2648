package root

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/writeq"
)

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }

func cond(k string, mod argent.Index) []argent.Condition {
	return []argent.Condition{{Key: []byte(k), ModIndex: mod}}
}

// TestCommit_MergedConditions commits groups of client batches as the
// committer would and checks each batch's answer and the one entry they make:
// conditions see the batches merged before them, a failed batch is left out
// alone, and a group whose batches all fail takes no index.
func TestCommit_MergedConditions(t *testing.T) {
	tests := []struct {
		name    string
		before  []argent.Op // committed first, at index 1
		batches []argent.Batch
		want    []argent.Index // 0: a ConditionError
		ops     []argent.Op    // the merged entry's ops
	}{{
		name: "CreateTwice",
		batches: []argent.Batch{
			{Conditions: cond("k", 0), Ops: []argent.Op{put("k", "first")}},
			{Conditions: cond("k", 0), Ops: []argent.Op{put("k", "second")}},
			{Ops: []argent.Op{put("j", "x")}},
		},
		want: []argent.Index{1, 0, 1},
		ops:  []argent.Op{put("k", "first"), put("j", "x")},
	}, {
		name:   "CASAgainstEarlierBatch",
		before: []argent.Op{put("k", "v1")},
		batches: []argent.Batch{
			{Conditions: cond("k", 1), Ops: []argent.Op{put("k", "v2")}},
			// k now has the merged entry's mod index, not 1.
			{Conditions: cond("k", 1), Ops: []argent.Op{put("k", "v3")}},
			{Conditions: cond("k", 2), Ops: []argent.Op{put("k", "v4")}},
		},
		want: []argent.Index{2, 0, 2},
		ops:  []argent.Op{put("k", "v2"), put("k", "v4")},
	}, {
		name:   "AbsentAfterEarlierDelete",
		before: []argent.Op{put("k", "v1")},
		batches: []argent.Batch{
			{Conditions: cond("k", 0), Ops: []argent.Op{put("x", "no")}},
			{Ops: []argent.Op{del("k")}},
			{Conditions: cond("k", 0), Ops: []argent.Op{put("k", "again"), put("y", "yes")}},
		},
		want: []argent.Index{0, 2, 2},
		ops:  []argent.Op{del("k"), put("k", "again"), put("y", "yes")},
	}, {
		name:   "AllFail",
		before: []argent.Op{put("k", "v1")},
		batches: []argent.Batch{
			{Conditions: cond("k", 0), Ops: []argent.Op{put("k", "x")}},
			{Conditions: cond("j", 5), Ops: []argent.Op{put("j", "x")}},
		},
		want: []argent.Index{0, 0},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := kv.Open("/db", &kv.Options{FS: vfs.NewMem()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r := New(s, Config{})
			first := argent.Index(1)
			if tc.before != nil {
				w := s.NewWriter()
				if _, err := w.Append(tc.before, r.cfg.Now()); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				first = 2
			}
			m := r.openMerge()
			for _, b := range tc.batches {
				m.add(&writeq.Request{Batch: b})
			}
			g := r.commit(m)
			for i, res := range g.results {
				want := tc.want[i]
				if want != 0 {
					want = first
				}
				var ce *argent.ConditionError
				switch {
				case want == 0 && !errors.As(res.err, &ce):
					t.Errorf("batch %d: %d, %v; want a ConditionError", i, res.index, res.err)
				case want != 0 && (res.err != nil || res.index != want):
					t.Errorf("batch %d: %d, %v; want index %d", i, res.index, res.err, want)
				}
			}
			if g == nil {
				t.Fatal("commit failed")
			}
			if err := s.SyncAndPublish(g.state); err != nil {
				t.Fatal(err)
			}
			if tc.ops == nil {
				if s.Applied() != first-1 {
					t.Fatalf("applied %d after a group that committed nothing, want %d", s.Applied(), first-1)
				}
				return
			}
			if s.Applied() != first {
				t.Fatalf("applied %d, want one merged entry at %d", s.Applied(), first)
			}
			_, err = s.ReadLog(first, 0, func(e *logstore.Entry) bool {
				if len(e.Ops) != len(tc.ops) {
					t.Fatalf("entry %d has ops %v, want %v", e.Index, e.Ops, tc.ops)
				}
				for i, op := range e.Ops {
					if op.Type != tc.ops[i].Type || string(op.Key) != string(tc.ops[i].Key) || string(op.Value) != string(tc.ops[i].Value) {
						t.Fatalf("entry %d op %d = %v, want %v", e.Index, i, op, tc.ops[i])
					}
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
