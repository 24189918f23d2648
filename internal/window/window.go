// Package window keeps the writes of a node's most recent batches in memory:
// the proxy's sliding window of recent updates (docs/CONTRACT.md sections 2 and 3,
// promise 5).
//
// A proxy at applied index S answers a read of key K with the value at S. A
// replica asked for "K as of S" may be behind, at A < S, and answer the value
// at A; that value is the value at S only if no batch in (A, S] wrote K. The
// window knows, for every key, the writes of the batches it holds, so it can
// say "K did not change in (A, S]", give the value K was last written to,
// or admit that it does not reach back far enough, and then the proxy must
// ask elsewhere. It never guesses: a question about indexes outside the
// window gets ok=false.
//
//	w := window.New(applied, window.Options{MaxBytes: 64 << 20})
//	w.Apply(&entry)                      // each batch, in index order
//	changed, ok := w.Changed(k, a, s)    // did anything write k in (a, s]?
//	wr, found, ok := w.Latest(k, s)      // k's last write at or below s
package window

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/argent-kv/argent"
)

// Options bounds a Window; the oldest batches leave first. The zero value
// of a field means its default.
type Options struct {
	// MaxBytes bounds the keys and values held. Default 16 MiB.
	MaxBytes int
	// MaxBatches bounds the batches held. Default 1,000,000.
	MaxBatches int
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.MaxBatches <= 0 {
		o.MaxBatches = 1_000_000
	}
	return o
}

// Write is a key's write in one batch: a put of Value, or a delete (of the
// key itself or of a prefix of it).
type Write struct {
	Index   argent.Index
	Value   []byte // nil for a delete
	Deleted bool
}

// Window holds the writes of the batches (Lo, Hi]. It is safe for
// concurrent use.
type Window struct {
	opts Options

	mu struct {
		sync.RWMutex
		lo, hi   argent.Index
		batches  []batch            // in index order, oldest first
		keys     map[string][]Write // per key, in index order
		prefixes []prefixDelete     // in index order
		bytes    int
	}
}

// batch is what one batch left in the window, for eviction.
type batch struct {
	index    argent.Index
	keys     []string
	prefixes int // prefix deletes of this batch
	bytes    int
}

type prefixDelete struct {
	index  argent.Index
	prefix string
}

// perWrite approximates the memory of one write beside its key and value.
const perWrite = 64

// New returns an empty window at index at: it covers (at, at].
func New(at argent.Index, opts Options) *Window {
	w := &Window{opts: opts.withDefaults()}
	w.mu.lo, w.mu.hi = at, at
	w.mu.keys = make(map[string][]Write)
	return w
}

// Bounds returns (lo, hi]: the window knows every write of the batches
// after lo up to hi.
func (w *Window) Bounds() (lo, hi argent.Index) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.mu.lo, w.mu.hi
}

// Reset empties the window and moves it to index at, after a snapshot load
// or a jump the window did not see.
func (w *Window) Reset(at argent.Index) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.lo, w.mu.hi = at, at
	w.mu.batches = nil
	w.mu.keys = make(map[string][]Write)
	w.mu.prefixes = nil
	w.mu.bytes = 0
}

// Apply adds the writes of batch e, which must be the batch after Hi, and
// evicts the oldest batches beyond the bounds.
func (w *Window) Apply(e *argent.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Index != w.mu.hi+1 {
		return fmt.Errorf("window: got batch %d, want %d", e.Index, w.mu.hi+1)
	}
	b := batch{index: e.Index}
	// The last op on a key in a batch is its write in that batch.
	last := make(map[string]int, len(e.Ops))
	for i, op := range e.Ops {
		switch op.Type {
		case argent.OpPut, argent.OpDelete:
			last[string(op.Key)] = i
		case argent.OpDeletePrefix:
			p := string(op.Key)
			w.mu.prefixes = append(w.mu.prefixes, prefixDelete{index: e.Index, prefix: p})
			b.prefixes++
			b.bytes += len(p) + perWrite
			// A prefix delete after a put in the same batch wins.
			for k, j := range last {
				if j < i && strings.HasPrefix(k, p) {
					delete(last, k)
				}
			}
		default:
			return fmt.Errorf("window: batch %d has op type %d", e.Index, op.Type)
		}
	}
	for k, i := range last {
		op := e.Ops[i]
		wr := Write{Index: e.Index, Deleted: op.Type == argent.OpDelete}
		if !wr.Deleted {
			// A copy: entries decoded from a stream alias its buffer.
			wr.Value = bytes.Clone(op.Value)
		}
		w.mu.keys[k] = append(w.mu.keys[k], wr)
		b.keys = append(b.keys, k)
		b.bytes += len(k) + len(wr.Value) + perWrite
	}
	w.mu.batches = append(w.mu.batches, b)
	w.mu.bytes += b.bytes
	w.mu.hi = e.Index
	for len(w.mu.batches) > 0 && (w.mu.bytes > w.opts.MaxBytes || len(w.mu.batches) > w.opts.MaxBatches) {
		w.evictOldest()
	}
	return nil
}

// evictOldest drops the oldest batch and moves lo to its index.
func (w *Window) evictOldest() {
	b := w.mu.batches[0]
	w.mu.batches[0] = batch{}
	w.mu.batches = w.mu.batches[1:]
	for _, k := range b.keys {
		ws := w.mu.keys[k][1:] // b's write is the key's oldest
		if len(ws) == 0 {
			delete(w.mu.keys, k)
		} else {
			w.mu.keys[k] = ws
		}
	}
	w.mu.prefixes = w.mu.prefixes[b.prefixes:]
	w.mu.bytes -= b.bytes
	w.mu.lo = b.index
}

// Changed reports whether a batch in (from, to] wrote key. ok is false when
// the window does not hold all of (from, to], and then changed means
// nothing.
func (w *Window) Changed(key []byte, from, to argent.Index) (changed, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if from < w.mu.lo || to > w.mu.hi {
		return false, false
	}
	if from >= to {
		return false, true
	}
	wr, found := w.latestLocked(key, to)
	return found && wr.Index > from, true
}

// Latest returns key's last write in the window at or below index at.
// found is false when no batch in (Lo, at] wrote key; ok is false when at
// is outside (Lo, Hi] — then neither answer means anything.
func (w *Window) Latest(key []byte, at argent.Index) (wr Write, found, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if at < w.mu.lo || at > w.mu.hi {
		return Write{}, false, false
	}
	wr, found = w.latestLocked(key, at)
	return wr, found, true
}

func (w *Window) latestLocked(key []byte, at argent.Index) (Write, bool) {
	var best Write
	found := false
	ws := w.mu.keys[string(key)]
	for i := len(ws) - 1; i >= 0; i-- {
		if ws[i].Index <= at {
			best, found = ws[i], true
			break
		}
	}
	for i := len(w.mu.prefixes) - 1; i >= 0; i-- {
		p := w.mu.prefixes[i]
		if found && p.index <= best.Index {
			break
		}
		if p.index <= at && strings.HasPrefix(string(key), p.prefix) {
			return Write{Index: p.index, Deleted: true}, true
		}
	}
	return best, found
}

// Puts calls fn with every key a batch in (from, to] put, in index order;
// a key put by several batches comes once per batch. ok is false, and fn
// is not called, when the window does not hold all of (from, to]. A
// negative-lookup filter built at from catches up to to with it.
func (w *Window) Puts(from, to argent.Index, fn func(key string)) (ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if from < w.mu.lo || to > w.mu.hi {
		return false
	}
	for _, b := range w.mu.batches {
		if b.index <= from || b.index > to {
			continue
		}
		for _, k := range b.keys {
			for _, wr := range w.mu.keys[k] {
				if wr.Index == b.index && !wr.Deleted {
					fn(k)
				}
			}
		}
	}
	return true
}
