package lookup

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/negfilter"
)

// builtFilter is a filter the Server built, kept to serve again.
type builtFilter struct {
	index   argent.Index // the state it stands for
	state   argent.State // index, commit time and chain hash of that state
	keys    uint64       // keys present at index
	encoded []byte       // negfilter encoding
	built   time.Time    // when the build finished
}

// serveFilterGet answers GET /internal/v1/filter[?min_index=N].
func (s *Server) serveFilterGet(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	minIndex, err := optionalIndex(q, "min_index")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.admit(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.filter(r.Context(), minIndex)
	if err != nil {
		setIndex(w.Header(), s.st.Applied())
		s.writeError(w, r, err)
		return
	}
	setIndex(w.Header(), b.index)
	// A proxy that starts over at this state follows the log from here: it
	// needs the chain hash to check the next entries, and the time for lag.
	w.Header().Set(HeaderChain, hex.EncodeToString(b.state.Chain[:]))
	w.Header().Set(HeaderTime, strconv.FormatInt(b.state.Time, 10))
	writeBody(w, http.StatusOK, "application/octet-stream", b.encoded)
}

// Filter returns the encoded negative-lookup filter of the keys present at
// some index X, and X. It serves the last filter built when that one is at
// the applied index, or younger than FilterMaxAge and at or past
// min(minIndex, applied); else it builds one at the applied index. Builds
// take turns: a caller that waited for another's build takes its result if
// that result will do. It fails with ctx's error if ctx ends while it waits.
//
// A proxy at index P may use a filter at X <= P once it has added the keys
// put in (X, P]; a filter at X > P only once the proxy reaches X (a key
// deleted in (P, X] is missing from it).
func (s *Server) Filter(ctx context.Context, minIndex argent.Index) (encoded []byte, index argent.Index, err error) {
	b, err := s.filter(ctx, minIndex)
	if err != nil {
		return nil, 0, err
	}
	return b.encoded, b.index, nil
}

func (s *Server) filter(ctx context.Context, minIndex argent.Index) (*builtFilter, error) {
	if b := s.cachedFilter(minIndex); b != nil {
		return b, nil
	}
	select {
	case s.build <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lookup: wait for a filter build: %w", ctx.Err())
	}
	defer func() { <-s.build }()
	if b := s.cachedFilter(minIndex); b != nil {
		return b, nil // built while we waited
	}
	b, err := s.buildFilter()
	if err != nil {
		return nil, err
	}
	s.builds.Add(1)
	s.mu.Lock()
	if s.mu.filter == nil || b.index >= s.mu.filter.index {
		s.mu.filter = b
	}
	s.mu.Unlock()
	return b, nil
}

// FilterBuilds returns how many filters the Server has built, for metrics:
// with many proxies asking at once it should grow far slower than requests.
func (s *Server) FilterBuilds() uint64 { return s.builds.Load() }

// cachedFilter returns the last filter built if it will do for minIndex.
func (s *Server) cachedFilter(minIndex argent.Index) *builtFilter {
	s.mu.Lock()
	b := s.mu.filter
	s.mu.Unlock()
	if b == nil {
		return nil
	}
	applied := s.st.Applied()
	if b.index >= applied {
		return b
	}
	if b.index >= min(minIndex, applied) && s.cfg.FilterMaxAge > 0 && s.cfg.Now().Sub(b.built) < s.cfg.FilterMaxAge {
		return b
	}
	return nil
}

// buildFilter builds a filter of the keys present in a snapshot of the
// store: one consistent view at one index, read in key order without
// holding the keys in memory.
//
// The filter is sized from the key count of the previous build when there is
// one (so a build is one pass), else from a first counting pass; if the
// count found differs from the sizing's by more than a quarter, it builds
// again with the right size (another pass over the same snapshot).
func (s *Server) buildFilter() (*builtFilter, error) {
	start := s.cfg.Now()
	sn, err := s.st.NewSnapshot()
	if err != nil {
		return nil, fmt.Errorf("lookup: filter: %w", err)
	}
	defer sn.Close()
	var guess uint64
	s.mu.Lock()
	if s.mu.filter != nil {
		guess = s.mu.filter.keys
	}
	s.mu.Unlock()
	passes := 0
	if guess == 0 {
		if guess, err = countRecords(sn); err != nil {
			return nil, err
		}
		passes++
	}
	var f *negfilter.Filter
	var n uint64
	for {
		f = negfilter.New(negfilter.ExpectedKeys(guess), s.cfg.FilterFPRate)
		n = 0
		err := sn.Records(nil, func(key []byte, _ argent.Index, _ []byte) error {
			f.Add(key)
			n++
			return nil
		})
		passes++
		if err != nil {
			return nil, fmt.Errorf("lookup: filter at %d: %w", sn.State.Index, err)
		}
		if n <= guess+guess/4 && n >= guess-guess/4 || passes >= 3 {
			break
		}
		guess = n
	}
	f.SetIndex(sn.State.Index)
	enc, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("lookup: encode filter at %d: %w", sn.State.Index, err)
	}
	b := &builtFilter{index: sn.State.Index, state: sn.State, keys: n, encoded: enc, built: s.cfg.Now()}
	s.cfg.Logger.Info("lookup: built negative-lookup filter", "index", b.index, "keys", n,
		"bytes", len(enc), "passes", passes, "took", b.built.Sub(start))
	return b, nil
}

// countRecords counts the live keys of a snapshot.
func countRecords(sn *kv.Snapshot) (uint64, error) {
	var n uint64
	err := sn.Records(nil, func([]byte, argent.Index, []byte) error {
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("lookup: count keys at %d: %w", sn.State.Index, err)
	}
	return n, nil
}
