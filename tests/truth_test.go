package tests

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// logEntry is one committed batch as a watch with prefix "" shows it.
type logEntry struct {
	Index argent.Index
	Ops   []argent.Op
}

// fetchLog reads the log of the node behind c with a watch from index 1 and
// prefix "" until it holds every index up to final. It returns an error if
// the stream has a gap or a duplicate, or does not reach final before
// timeout.
func fetchLog(c *client.Client, final argent.Index, timeout time.Duration) ([]logEntry, error) {
	return fetchLogFrom(c, 1, final, timeout)
}

// fetchLogFrom is fetchLog from index from, for a node whose log starts
// later (one that loaded a snapshot).
func fetchLogFrom(c *client.Client, from, final argent.Index, timeout time.Duration) ([]logEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []logEntry
	if final < from {
		return out, nil
	}
	w, err := c.Watch(ctx, nil, from)
	if err != nil {
		return nil, fmt.Errorf("watch %s from %d: %w", c.Addr(), from, err)
	}
	defer w.Close()
	for from+argent.Index(len(out)) <= final {
		ev, err := w.Next()
		if err != nil {
			return out, fmt.Errorf("watch %s from %d: after %d batches (want %d): %w", c.Addr(), from, len(out), final-from+1, err)
		}
		if ev.Progress {
			continue
		}
		if want := from + argent.Index(len(out)); ev.Index != want {
			return out, fmt.Errorf("watch %s from %d (prefix \"\"): got batch %d, want %d: the log has a gap or a duplicate", c.Addr(), from, ev.Index, want)
		}
		if len(ev.Ops) == 0 {
			return out, fmt.Errorf("watch %s: batch %d has no ops", c.Addr(), ev.Index)
		}
		out = append(out, logEntry{Index: ev.Index, Ops: ev.Ops})
	}
	return out, nil
}

// opsEqual reports whether two op lists are equal (nil and empty values are
// the same).
func opsEqual(a, b []argent.Op) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// fmtOps formats ops for failure messages.
func fmtOps(ops []argent.Op) string {
	var b strings.Builder
	b.WriteString("[")
	for i, op := range ops {
		if i > 0 {
			b.WriteString(" ")
		}
		switch op.Type {
		case argent.OpPut:
			v := string(op.Value)
			if len(v) > 40 {
				v = fmt.Sprintf("%s...(%d bytes)", v[:40], len(op.Value))
			}
			fmt.Fprintf(&b, "put(%q=%q)", op.Key, v)
		default:
			fmt.Fprintf(&b, "%s(%q)", op.Type, op.Key)
		}
	}
	b.WriteString("]")
	return b.String()
}

// opsKey is a map key naming an op list exactly.
func opsKey(ops []argent.Op) string {
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%d:%q:%q;", op.Type, op.Key, op.Value)
	}
	return b.String()
}

// version is one state of a key: from index on it is absent, or present with
// value (and then its mod index is index).
type version struct {
	index   argent.Index
	present bool
	value   []byte
}

// truth is the log replayed: the state of every key at every index.
type truth struct {
	entries []logEntry           // entries[i].Index == i+1
	hist    map[string][]version // by key, in index order; only changes
	keys    []string             // every key ever put, sorted bytewise
}

// newTruth replays entries, which must be the log from index 1 without gaps.
func newTruth(entries []logEntry) *truth {
	tr := &truth{entries: entries, hist: map[string][]version{}}
	type state struct {
		present bool
		value   []byte
	}
	for _, e := range entries {
		touched := map[string]state{}
		cur := func(k string) state {
			if s, ok := touched[k]; ok {
				return s
			}
			if h := tr.hist[k]; len(h) > 0 && h[len(h)-1].present {
				return state{true, h[len(h)-1].value}
			}
			return state{}
		}
		for _, op := range e.Ops {
			k := string(op.Key)
			switch op.Type {
			case argent.OpPut:
				if _, ok := tr.hist[k]; !ok {
					tr.hist[k] = nil
				}
				touched[k] = state{true, op.Value}
			case argent.OpDelete:
				touched[k] = state{}
			case argent.OpDeletePrefix:
				for k2 := range tr.hist {
					if strings.HasPrefix(k2, k) && cur(k2).present {
						touched[k2] = state{}
					}
				}
			}
		}
		for k, s := range touched {
			var before bool
			if h := tr.hist[k]; len(h) > 0 {
				before = h[len(h)-1].present
			}
			if s.present || before {
				tr.hist[k] = append(tr.hist[k], version{index: e.Index, present: s.present, value: s.value})
			}
		}
	}
	for k := range tr.hist {
		tr.keys = append(tr.keys, k)
	}
	sort.Strings(tr.keys)
	return tr
}

// final returns the last index of the truth.
func (tr *truth) final() argent.Index { return argent.Index(len(tr.entries)) }

// at returns key's state at index s: its value and mod index, or ok false
// when it is absent.
func (tr *truth) at(key string, s argent.Index) (value []byte, mod argent.Index, ok bool) {
	h := tr.hist[key]
	i := sort.Search(len(h), func(i int) bool { return h[i].index > s }) - 1
	if i < 0 || !h[i].present {
		return nil, 0, false
	}
	return h[i].value, h[i].index, true
}

// item returns key's state at s as an mget item.
func (tr *truth) item(key string, s argent.Index) client.Item {
	v, mod, ok := tr.at(key, s)
	if !ok {
		return client.Item{Key: key, Absent: true}
	}
	return client.Item{Key: key, Value: v, ModIndex: mod}
}

// scan returns the keys with prefix after after present at s, at most limit
// of them, and whether there are more.
func (tr *truth) scan(prefix, after string, limit int, s argent.Index) (items []client.Item, more bool) {
	i := sort.SearchStrings(tr.keys, prefix)
	for ; i < len(tr.keys) && strings.HasPrefix(tr.keys[i], prefix); i++ {
		k := tr.keys[i]
		if after != "" && k <= after {
			continue
		}
		it := tr.item(k, s)
		if it.Absent {
			continue
		}
		if len(items) == limit {
			return items, true
		}
		items = append(items, it)
	}
	return items, false
}

// describe returns key's history around index s, for failure messages: the
// versions just before and after s, and where the given value (if any) was
// current.
func (tr *truth) describe(key string, s argent.Index, value []byte) string {
	h := tr.hist[key]
	var b strings.Builder
	fmt.Fprintf(&b, "truth of %q (S=%d):", key, s)
	if len(h) == 0 {
		b.WriteString(" never written")
		return b.String()
	}
	i := sort.Search(len(h), func(i int) bool { return h[i].index > s })
	lo, hi := max(0, i-3), min(len(h), i+3)
	if lo > 0 {
		fmt.Fprintf(&b, " ...%d earlier", lo)
	}
	for j, v := range h[lo:hi] {
		mark := ""
		if lo+j == i-1 {
			mark = " <- at S"
		}
		if v.present {
			fmt.Fprintf(&b, "\n    from %d: %q%s", v.index, trunc(v.value), mark)
		} else {
			fmt.Fprintf(&b, "\n    from %d: absent%s", v.index, mark)
		}
	}
	if hi < len(h) {
		fmt.Fprintf(&b, "\n    ...%d later", len(h)-hi)
	}
	if value != nil {
		found := false
		for j, v := range h {
			if v.present && bytes.Equal(v.value, value) {
				end := "now"
				if j+1 < len(h) {
					end = fmt.Sprint(h[j+1].index - 1)
				}
				fmt.Fprintf(&b, "\n    the value read was current at indexes %d..%s", v.index, end)
				found = true
			}
		}
		if !found {
			b.WriteString("\n    the value read was never the key's value")
		}
	}
	return b.String()
}

func trunc(v []byte) string {
	if len(v) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", v[:40], len(v))
	}
	return string(v)
}

// itemEqual compares an answered item with the truth's.
func itemEqual(got, want client.Item) bool {
	if got.Key != want.Key || got.Absent != want.Absent {
		return false
	}
	if want.Absent {
		return true
	}
	return bytes.Equal(got.Value, want.Value) && got.ModIndex == want.ModIndex
}

func fmtItem(it client.Item) string {
	if it.Absent {
		return fmt.Sprintf("%q absent", it.Key)
	}
	return fmt.Sprintf("%q=%q@%d", it.Key, trunc(it.Value), it.ModIndex)
}

func fmtItems(items []client.Item) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmtItem(it)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// compareLogs checks that two logs hold the same batches up to the shorter
// one's end.
func compareLogs(a, b []logEntry) error {
	for i := range min(len(a), len(b)) {
		if a[i].Index != b[i].Index || !opsEqual(a[i].Ops, b[i].Ops) {
			return fmt.Errorf("logs differ at index %d: %s vs %s", a[i].Index, fmtOps(a[i].Ops), fmtOps(b[i].Ops))
		}
	}
	return nil
}
