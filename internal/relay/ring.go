package relay

import (
	"context"
	"fmt"
	"sync"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/wire"
)

// entryOverhead is what an entry costs the ring beside its encoding: the
// decoded op headers and the slice of the ring.
const entryOverhead = 128

// Ring is a relay's log buffer: the most recent entries it pulled, in
// memory and bounded in bytes. It is the pull.Target the relay's Follower
// applies to (every entry checked by index and chain hash) and, through
// Source, the pull.Source its children are fed from. It keeps no data, so
// a fresh relay, or one whose upstream no longer holds its next entry,
// starts over at its upstream's current state (Bootstrap) with an empty
// ring: children behind that state are told TooOld and start over too.
type Ring struct {
	maxBytes int
	// fetchState returns an upstream's current state, for Bootstrap.
	fetchState func(ctx context.Context, up string) (argent.State, error)

	mu struct {
		sync.Mutex
		dataset argent.DatasetID
		// state is the position after the last entry (or the state a
		// bootstrap started at when the ring is empty).
		state argent.State
		// ready: the ring holds a state children may be fed from (an
		// entry committed, a bootstrap done and its dataset known, or an
		// empty dataset). started: a bootstrap was done.
		ready   bool
		started bool
		first   argent.Index // index of ents[0]
		ents    []*logstore.Entry
		bytes   int
		changed chan struct{}
	}
}

var _ pull.Target = (*Ring)(nil)

// NewRing returns an empty Ring of at most maxBytes of entries (it keeps
// at least the last one). fetchState gives an upstream's current state
// (index, time and chain hash), where Bootstrap starts over.
func NewRing(maxBytes int, fetchState func(ctx context.Context, up string) (argent.State, error)) *Ring {
	r := &Ring{maxBytes: maxBytes, fetchState: fetchState}
	r.mu.first = 1
	r.mu.changed = make(chan struct{})
	return r
}

// notify wakes the children's streams; r.mu must be held.
func (r *Ring) notify() {
	close(r.mu.changed)
	r.mu.changed = make(chan struct{})
}

// State returns the position after the last entry.
func (r *Ring) State() argent.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.state
}

// Ready reports whether the ring holds a state children may be fed from.
func (r *Ring) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.ready
}

// MarkEmpty records that the upstream said the dataset is empty (root
// index and applied index 0): index 0 is then a state to feed from.
func (r *Ring) MarkEmpty() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.mu.ready && !r.mu.dataset.IsZero() && r.mu.state.Index == 0 {
		r.mu.ready = true
		r.notify()
	}
}

// Bytes returns the bytes the ring's entries take.
func (r *Ring) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.bytes
}

// Applied implements pull.Target: the last entry in the ring.
func (r *Ring) Applied() argent.Index { return r.State().Index }

// Dataset implements pull.Target.
func (r *Ring) Dataset() argent.DatasetID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.dataset
}

// AdoptDataset implements pull.Target.
func (r *Ring) AdoptDataset(id argent.DatasetID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.mu.dataset {
	case id:
		return nil
	case argent.DatasetID{}:
		r.mu.dataset = id
		if r.mu.started && !r.mu.ready {
			r.mu.ready = true
			r.notify()
		}
		return nil
	}
	return fmt.Errorf("%w: relay has %s, upstream %s", argent.ErrDatasetMismatch, r.mu.dataset, id)
}

// BootstrapPending implements pull.Target: a fresh ring, which has no
// state yet, starts over at its upstream's current state instead of
// replaying the upstream's whole log from index 1 (a replica may hold days
// of it) through a buffer that keeps only the last entries: its children,
// proxies, are near the head of the log, not at its start.
func (r *Ring) BootstrapPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.mu.started && !r.mu.ready && len(r.mu.ents) == 0
}

// Bootstrap implements pull.Target: the ring starts over, empty, at up's
// current state, as a proxy does; its children behind that state get
// TooOld.
func (r *Ring) Bootstrap(ctx context.Context, up string) error {
	st, err := r.fetchState(ctx, up)
	if err != nil {
		return fmt.Errorf("relay: start over at %s: %w", up, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.Index < r.mu.state.Index {
		return fmt.Errorf("relay: start over at %s: it is at %d, behind the relay's %d", up, st.Index, r.mu.state.Index)
	}
	// A fresh ring learns its dataset from the stream that follows:
	// children are fed once it is known.
	r.mu.state, r.mu.started, r.mu.ready = st, true, !r.mu.dataset.IsZero()
	r.mu.ents, r.mu.bytes, r.mu.first = nil, 0, st.Index+1
	r.notify()
	return nil
}

// Begin implements pull.Target.
func (r *Ring) Begin() pull.Group {
	return &ringGroup{r: r, base: r.State()}
}

// ringGroup checks entries as they come and adds them to the ring on
// Commit.
type ringGroup struct {
	r    *Ring
	base argent.State // the ring's state when the group began
	last argent.State // after the last entry appended
	ents []*logstore.Entry
}

func (g *ringGroup) Len() int { return len(g.ents) }

// AppendEntry checks e against the last entry by index and chain hash and
// keeps a copy of it (e may alias the Follower's frame buffer).
func (g *ringGroup) AppendEntry(e *argent.Entry) error {
	prev := g.base
	if len(g.ents) > 0 {
		prev = g.last
	}
	if e.Index != prev.Index+1 {
		return fmt.Errorf("%w: relay got entry %d, want %d", argent.ErrCorruption, e.Index, prev.Index+1)
	}
	if want := wire.NextChain(prev.Chain, e); want != e.Chain {
		return fmt.Errorf("%w: entry %d has chain %x, want %x", argent.ErrChainMismatch, e.Index, e.Chain[:8], want[:8])
	}
	raw := wire.AppendEntry(nil, e)
	own, err := wire.DecodeEntry(raw) // keys and values alias raw
	if err != nil {
		return fmt.Errorf("%w: relay: re-decode entry %d: %w", argent.ErrCorruption, e.Index, err)
	}
	g.ents = append(g.ents, &logstore.Entry{Entry: own, Raw: raw})
	g.last = logstore.StateOf(e)
	return nil
}

// Commit adds the entries to the ring, drops the oldest past its bound,
// and wakes the children's streams.
func (g *ringGroup) Commit() error {
	if len(g.ents) == 0 {
		return nil
	}
	r := g.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.state != g.base {
		g.ents = nil
		return fmt.Errorf("relay: the ring moved to %d while a group from %d was applied", r.mu.state.Index, g.base.Index)
	}
	if len(r.mu.ents) == 0 {
		r.mu.first = g.ents[0].Index
	}
	for _, e := range g.ents {
		r.mu.ents = append(r.mu.ents, e)
		r.mu.bytes += len(e.Raw) + entryOverhead
	}
	for len(r.mu.ents) > 1 && r.mu.bytes > r.maxBytes {
		r.mu.bytes -= len(r.mu.ents[0].Raw) + entryOverhead
		r.mu.ents[0] = nil
		r.mu.ents = r.mu.ents[1:]
		r.mu.first++
	}
	r.mu.state, r.mu.ready = g.last, true
	g.ents = nil
	r.notify()
	return nil
}

// Discard drops the entries appended and not committed.
func (g *ringGroup) Discard() { g.ents = nil }

// Source returns the pull.Source the relay's children are fed from.
func (r *Ring) Source() pull.Source { return (*ringSource)(r) }

// ringSource is the Ring as children see it.
type ringSource Ring

func (s *ringSource) r() *Ring { return (*Ring)(s) }

// Dataset is zero until the ring has a state to feed from, so that a
// child is refused (503) rather than told "index 0" of a dataset that is
// not empty.
func (s *ringSource) Dataset() argent.DatasetID {
	r := s.r()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.mu.ready {
		return argent.DatasetID{}
	}
	return r.mu.dataset
}

func (s *ringSource) Restoring() bool        { return false }
func (s *ringSource) Applied() argent.Index  { return s.r().Applied() }
func (s *ringSource) LogFirst() argent.Index { return s.r().LogFirst() }

func (s *ringSource) Changed() <-chan struct{} {
	r := s.r()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.changed
}

func (s *ringSource) ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error) {
	return s.r().ReadLog(from, maxBytes, fn)
}

// NewSnapshot fails: a relay keeps no data.
func (s *ringSource) NewSnapshot() (*kv.Snapshot, error) {
	return nil, fmt.Errorf("%w: a relay keeps only a short log; bootstrap from a replica", pull.ErrNoSnapshots)
}

// LogFirst returns the oldest index the ring can give; the index after
// its state when it is empty.
func (r *Ring) LogFirst() argent.Index {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.ents) == 0 {
		return r.mu.state.Index + 1
	}
	return r.mu.first
}

// ReadLog calls fn with the entries from index from on, up to the last and
// about maxBytes of them (at least one), and returns the index after the
// last one given. It fails with an error wrapping argent.ErrCompacted when
// from is older than LogFirst.
func (r *Ring) ReadLog(from argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error) {
	r.mu.Lock()
	first := r.mu.first
	if len(r.mu.ents) == 0 {
		first = r.mu.state.Index + 1
	}
	if from < first {
		r.mu.Unlock()
		return from, fmt.Errorf("%w: the relay's log starts at %d, asked for %d", argent.ErrCompacted, first, from)
	}
	var out []*logstore.Entry
	n := 0
	for i := int(from - first); i >= 0 && i < len(r.mu.ents); i++ {
		e := r.mu.ents[i]
		if len(out) > 0 && maxBytes > 0 && n+len(e.Raw) > maxBytes {
			break
		}
		out = append(out, e)
		n += len(e.Raw)
	}
	r.mu.Unlock()
	next := from
	for _, e := range out { // entries are never changed once in the ring
		next++
		if !fn(e) {
			break
		}
	}
	return next, nil
}
