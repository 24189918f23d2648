package proxy

import (
	"fmt"
	"sync"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/wire"
)

// logRing keeps the most recent log entries a proxy applied, encoded, so it
// can serve watch streams from any index still in it (a proxy keeps no log
// on disk: watchers that need older history read from a replica).
type logRing struct {
	maxBytes int

	mu      sync.Mutex
	first   argent.Index // index of raws[0]
	raws    [][]byte
	bytes   int
	started bool
}

func newLogRing(maxBytes int) *logRing { return &logRing{maxBytes: maxBytes} }

// add appends e, which must follow the last entry added, or restarts the
// ring at e after a jump (a start-over).
func (r *logRing) add(e *argent.Entry) {
	raw := wire.AppendEntry(nil, e) // a copy: e may alias a frame buffer
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || e.Index != r.first+argent.Index(len(r.raws)) {
		r.first, r.raws, r.bytes, r.started = e.Index, nil, 0, true
	}
	r.raws = append(r.raws, raw)
	r.bytes += len(raw)
	for len(r.raws) > 1 && r.bytes > r.maxBytes {
		r.bytes -= len(r.raws[0])
		r.raws[0] = nil
		r.raws = r.raws[1:]
		r.first++
	}
}

// reset empties the ring; the next entry added starts it.
func (r *logRing) reset() {
	r.mu.Lock()
	r.raws, r.bytes, r.started = nil, 0, false
	r.mu.Unlock()
}

// firstIndex is the oldest index the ring can serve; next, when it is
// empty, the index after last.
func (r *logRing) firstIndex(last argent.Index) argent.Index {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.raws) == 0 {
		return last + 1
	}
	return r.first
}

// read calls fn with the entries from index from up to index to, at most
// maxBytes of them (at least one), and returns the index after the last one
// given. It fails with an error wrapping argent.ErrCompacted when from is
// no longer in the ring.
func (r *logRing) read(from, to argent.Index, maxBytes int, fn func(e *logstore.Entry) bool) (argent.Index, error) {
	r.mu.Lock()
	if from < r.first || len(r.raws) == 0 && from <= to {
		first := r.first
		r.mu.Unlock()
		return from, fmt.Errorf("%w: the proxy's recent log starts at %d, asked for %d; watch a replica", argent.ErrCompacted, first, from)
	}
	var raws [][]byte
	n := 0
	for i := from; i <= to && int(i-r.first) < len(r.raws); i++ {
		raw := r.raws[i-r.first]
		if len(raws) > 0 && n+len(raw) > maxBytes {
			break
		}
		raws = append(raws, raw)
		n += len(raw)
	}
	r.mu.Unlock()
	next := from
	for _, raw := range raws {
		e, err := wire.DecodeEntry(raw)
		if err != nil {
			return next, fmt.Errorf("proxy: recent log entry %d: %w", next, err)
		}
		next++
		if !fn(&logstore.Entry{Entry: e, Raw: raw}) {
			break
		}
	}
	return next, nil
}
