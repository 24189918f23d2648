package window_test

import (
	"bytes"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/window"
)

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}
func del(k string) argent.Op { return argent.Op{Type: argent.OpDelete, Key: []byte(k)} }
func delPrefix(p string) argent.Op {
	return argent.Op{Type: argent.OpDeletePrefix, Key: []byte(p)}
}

func TestWindow_Basics(t *testing.T) {
	w := window.New(10, window.Options{MaxBatches: 3})
	batches := [][]argent.Op{
		{put("a", "1"), put("b", "1")}, // 11
		{del("a")},                     // 12
		{put("c/1", "x"), delPrefix("c/"), put("c/2", "y")}, // 13
		{put("a", "2")}, // 14: evicts 11
	}
	for i, ops := range batches {
		if err := w.Apply(&argent.Entry{Index: argent.Index(11 + i), Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	if lo, hi := w.Bounds(); lo != 11 || hi != 14 {
		t.Fatalf("bounds (%d, %d], want (11, 14]", lo, hi)
	}
	tests := []struct {
		key         string
		from, to    argent.Index
		changed, ok bool
	}{
		{"a", 11, 14, true, true},
		{"a", 12, 13, false, true},
		{"b", 11, 14, false, true},
		{"b", 10, 14, false, false}, // 11 was evicted
		{"c/1", 12, 13, true, true},
		{"c/2", 12, 13, true, true},
		{"d", 11, 14, false, true},
		{"a", 11, 15, false, false}, // beyond hi
	}
	for _, tt := range tests {
		changed, ok := w.Changed([]byte(tt.key), tt.from, tt.to)
		if changed != tt.changed || ok != tt.ok {
			t.Errorf("Changed(%q, %d, %d) = %v, %v; want %v, %v", tt.key, tt.from, tt.to, changed, ok, tt.changed, tt.ok)
		}
	}
	if wr, found, ok := w.Latest([]byte("c/1"), 14); !ok || !found || !wr.Deleted || wr.Index != 13 {
		t.Errorf("Latest(c/1) = %+v %v %v: want the prefix delete at 13", wr, found, ok)
	}
	if wr, found, ok := w.Latest([]byte("c/2"), 13); !ok || !found || wr.Deleted || string(wr.Value) != "y" {
		t.Errorf("Latest(c/2) = %+v %v %v: want y put after the prefix delete", wr, found, ok)
	}
	var puts []string
	if !w.Puts(12, 14, func(k string) { puts = append(puts, k) }) {
		t.Fatal("Puts(12, 14) not ok")
	}
	if strings.Join(puts, ",") != "c/2,a" {
		t.Errorf("Puts(12, 14) = %q, want c/2 (13) and a (14)", puts)
	}
	if w.Puts(10, 14, func(string) {}) {
		t.Error("Puts(10, 14) ok with 11 evicted")
	}
	if err := w.Apply(&argent.Entry{Index: 16}); err == nil {
		t.Error("Apply of a gap succeeded")
	}
}

// TestWindow_Model checks Changed and Latest against the full history of
// every key, for random batches and window bounds.
func TestWindow_Model(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := []string{"a", "b", "p/1", "p/2", "p/q/3"}
		start := argent.Index(rapid.Uint64Range(0, 5).Draw(t, "start"))
		w := window.New(start, window.Options{
			MaxBatches: rapid.IntRange(1, 8).Draw(t, "maxBatches"),
			MaxBytes:   rapid.IntRange(100, 2000).Draw(t, "maxBytes"),
		})
		// states[i] is the data after batch start+i; absent keys are missing.
		states := []map[string]string{{}}
		n := rapid.IntRange(0, 20).Draw(t, "batches")
		for i := 0; i < n; i++ {
			ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) argent.Op {
				switch rapid.IntRange(0, 2).Draw(t, "type") {
				case 0:
					return put(rapid.SampledFrom(keys).Draw(t, "k"), rapid.StringMatching(`[a-z]{1,3}`).Draw(t, "v"))
				case 1:
					return del(rapid.SampledFrom(keys).Draw(t, "k"))
				}
				return delPrefix(rapid.SampledFrom([]string{"p/", "p/q", "a", ""}).Draw(t, "p"))
			}), 1, 4).Draw(t, "ops")
			next := make(map[string]string)
			for k, v := range states[len(states)-1] {
				next[k] = v
			}
			for _, op := range ops {
				switch op.Type {
				case argent.OpPut:
					next[string(op.Key)] = string(op.Value)
				case argent.OpDelete:
					delete(next, string(op.Key))
				case argent.OpDeletePrefix:
					for k := range next {
						if strings.HasPrefix(k, string(op.Key)) {
							delete(next, k)
						}
					}
				}
			}
			states = append(states, next)
			if err := w.Apply(&argent.Entry{Index: start + argent.Index(i+1), Ops: ops}); err != nil {
				t.Fatal(err)
			}
		}
		lo, hi := w.Bounds()
		if hi != start+argent.Index(n) || lo < start || lo > hi {
			t.Fatalf("bounds (%d, %d] after %d batches from %d", lo, hi, n, start)
		}
		state := func(i argent.Index) map[string]string { return states[i-start] }
		for _, k := range keys {
			for from := start; from <= hi; from++ {
				for to := from; to <= hi; to++ {
					changed, ok := w.Changed([]byte(k), from, to)
					if ok != (from >= lo) {
						t.Fatalf("Changed(%q, %d, %d) ok=%v with window (%d, %d]", k, from, to, ok, lo, hi)
					}
					if !ok {
						continue
					}
					// "Changed" may be true for a write that left the value
					// as it was; it must be true whenever the value moved.
					_, wasA := state(from)[k]
					vb, isB := state(to)[k]
					va := state(from)[k]
					if (wasA != isB || va != vb) && !changed {
						t.Fatalf("Changed(%q, %d, %d) = false, but %q/%v -> %q/%v", k, from, to, va, wasA, vb, isB)
					}
				}
				wr, found, ok := w.Latest([]byte(k), from)
				if ok != (from >= lo) {
					t.Fatalf("Latest(%q, %d) ok=%v with window (%d, %d]", k, from, ok, lo, hi)
				}
				if !ok {
					continue
				}
				if !found {
					// Nothing in (lo, from] wrote k: its value is the one at lo.
					vl, inL := state(lo)[k]
					vf, inF := state(from)[k]
					if vl != vf || inL != inF {
						t.Fatalf("Latest(%q, %d) found no write, but %q/%v at %d -> %q/%v", k, from, vl, inL, lo, vf, inF)
					}
					continue
				}
				v, present := state(from)[k]
				if wr.Deleted == present || present && !bytes.Equal(wr.Value, []byte(v)) {
					t.Fatalf("Latest(%q, %d) = %+v, state has %q/%v", k, from, wr, v, present)
				}
				if wr.Index <= lo || wr.Index > from {
					t.Fatalf("Latest(%q, %d) = write at %d, outside (%d, %d]", k, from, wr.Index, lo, from)
				}
			}
		}
	})
}
