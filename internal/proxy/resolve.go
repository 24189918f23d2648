package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxycache"
)

// flightKey names one miss: concurrent reads of a key at one index share
// one lookup.
type flightKey struct {
	key string
	at  argent.Index
	// direct flights go to L3 only: an owner answering a DC peer never
	// asks another owner, and its flights are not shared with its own
	// reads, which may ask owners.
	direct bool
}

// answer is a resolved miss and the tier that answered it.
type answer struct {
	lookup.Result
	tier string
	// owned: a DC peer, the owner of the key's shard, answered; the key
	// enters this proxy's cache only past the doorkeeper.
	owned bool
}

type flight struct {
	done chan struct{}
	a    answer
	err  error
	// abandoned is set when the read that led the flight went away (its
	// ctx ended) before the key was resolved: the flight's error then says
	// nothing about the key, so a read still waiting on it looks the key up
	// itself.
	abandoned bool
}

// resolve returns the values of keys (distinct) at index at from replicas,
// in the order of keys, and offers each answer to the cache. It fails, as a
// whole, when any key cannot be resolved within MissWait, and as soon as
// ctx ends: a read whose reader has gone (its HTTP client left, its RESP
// connection closed, the server stops) stops waiting and asking replicas,
// and its error wraps ctx's.
//
// Every key is a flight that concurrent reads of the key at the same index
// share, whether they read one key or many. The keys no other read is
// looking up already are looked up together, one request per replica tried
// (see lookupAt); for the others resolve waits on the flight that is. A
// caller first finishes the flights it leads and only then waits on others,
// so two reads leading each other's keys cannot wait on each other. A
// flight whose leader went away before it resolved is abandoned, and the
// reads that waited on it try its key again (one of them leading the new
// flight), so one reader leaving never fails another.
func (p *Proxy) resolve(ctx context.Context, keys [][]byte, at argent.Index, direct bool) ([]answer, error) {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.MissWait)
	defer cancel()
	out := make([]answer, len(keys))
	todo := make([]int, len(keys)) // positions of the keys not resolved yet
	for i := range todo {
		todo[i] = i
	}
	for len(todo) > 0 {
		var err error
		if todo, err = p.resolveOnce(ctx, wctx, keys, todo, at, direct, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveOnce resolves the keys at positions todo into out: it leads the
// flights of the keys no other read is looking up, within wctx (ctx bounded
// by MissWait), and then waits on the others. It returns the positions
// whose flights were abandoned, to try again.
func (p *Proxy) resolveOnce(ctx, wctx context.Context, keys [][]byte, todo []int, at argent.Index, direct bool, out []answer) (retry []int, err error) {
	flights := make([]*flight, len(todo))
	var lead []int // positions in todo of the keys this call looks up
	p.flightMu.Lock()
	for j, i := range todo {
		fk := flightKey{key: string(keys[i]), at: at, direct: direct}
		if f, ok := p.flights[fk]; ok {
			flights[j] = f
			continue
		}
		f := &flight{done: make(chan struct{})}
		p.flights[fk] = f
		flights[j] = f
		lead = append(lead, j)
	}
	p.flightMu.Unlock()

	if len(lead) > 0 {
		ask := make([][]byte, len(lead))
		for n, j := range lead {
			ask[n] = keys[todo[j]]
		}
		rs, errs := p.lookupAt(wctx, ask, at, direct)
		gone := ctx.Err() != nil
		p.flightMu.Lock()
		for _, j := range lead {
			delete(p.flights, flightKey{key: string(keys[todo[j]]), at: at, direct: direct})
		}
		p.flightMu.Unlock()
		for n, j := range lead {
			f := flights[j]
			f.a, f.err = rs[n], errs[n]
			f.abandoned = f.err != nil && gone
			close(f.done)
			if f.err == nil && (!f.a.owned || p.door.seen(keys[todo[j]])) {
				p.admit(keys[todo[j]], f.a.Result, at)
			}
		}
	}

	for j, f := range flights {
		i := todo[j]
		select {
		case <-f.done:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, readerGone(ctx, fmt.Sprintf("miss of %q at %d", keys[i], at))
			}
			return nil, fmt.Errorf("%w: proxy: miss of %q at %d: %w", argent.ErrUnavailable, keys[i], at, wctx.Err())
		}
		switch {
		case f.err == nil:
			out[i] = f.a
		case ctx.Err() != nil:
			return nil, readerGone(ctx, fmt.Sprintf("miss of %q at %d", keys[i], at))
		case f.abandoned:
			retry = append(retry, i)
		default:
			return nil, f.err
		}
	}
	return retry, nil
}

// readerGone is the error of a read whose ctx ended before replicas
// answered (what names the read): it wraps argent.ErrUnavailable, as every
// unresolved miss does, and ctx's error, which says why the read stopped.
func readerGone(ctx context.Context, what string) error {
	return fmt.Errorf("%w: proxy: %s: the reader went away: %w", argent.ErrUnavailable, what, ctx.Err())
}

// lookupAt resolves keys as of at. In a data center, unless direct, it
// first asks the owners of their shards (L2, see askOwners). Then it asks
// the replicas (L3), in turn, for the keys left until every answer is
// proven to be the value at at (see prove), or ctx ends. Each replica gets
// one request for all the keys not proven yet (see fetch). After a round
// it waits a little for the replicas to catch up. It returns each key's
// answer or, once ctx ended, why it was not proven.
func (p *Proxy) lookupAt(ctx context.Context, keys [][]byte, at argent.Index, direct bool) ([]answer, []error) {
	out := make([]answer, len(keys))
	errs := make([]error, len(keys)) // why each key is not proven yet
	todo := make([]int, len(keys))   // positions of the keys not proven yet
	for i := range todo {
		todo[i] = i
	}
	// Index 0 is the state before any batch: no owner's answer can name it
	// (an answer's index is at least 1), so such reads go to L3.
	if p.dc != nil && !direct && at > 0 {
		if todo = p.askOwners(ctx, keys, todo, at, out); len(todo) == 0 {
			return out, errs
		}
	}
	ask := make([][]byte, 0, len(keys))
	proven := p.askReplicas(ctx, at, func(c *lookup.Client) bool {
		ask = ask[:0]
		for _, i := range todo {
			ask = append(ask, keys[i])
		}
		rs, ferrs := fetch(ctx, c, ask, at)
		left, down := todo[:0], false
		for j, i := range todo {
			err := ferrs[j]
			if err == nil {
				out[i].tier = TierL3
				out[i].Result, err = p.prove(c.Addr(), keys[i], rs[j], at)
			} else if errors.Is(err, argent.ErrUnavailable) {
				down = true
			}
			errs[i] = err
			if err != nil {
				left = append(left, i)
			}
		}
		todo = left
		if len(todo) == 0 {
			return true
		}
		if down && ctx.Err() == nil {
			p.oracle.markDown(c.Addr())
		}
		return false
	})
	if !proven {
		return out, p.missErrs(keys, todo, at, errs)
	}
	return out, errs
}

// askReplicas calls try with each replica in the oracle's order for index
// at, round after round with a growing pause (1 ms, doubling up to
// 100 ms) for the replicas to catch up, until try reports that it is done
// or ctx ends. It reports whether try was done.
func (p *Proxy) askReplicas(ctx context.Context, at argent.Index, try func(c *lookup.Client) (done bool)) bool {
	backoff := time.Millisecond
	for {
		for _, c := range p.oracle.order(at) {
			if try(c) {
				return true
			}
			if ctx.Err() != nil {
				return false
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// prove returns r, a replica's answer for key, as key's value at at if it
// is one: the replica answered as of at, or as of A < at and the window
// shows that nothing wrote key in (A, at]. If key changed in (A, at], the
// write is in the window, and the window tier would already have answered;
// if the window does not reach back to A, nothing is proven.
func (p *Proxy) prove(addr string, key []byte, r lookup.Result, at argent.Index) (lookup.Result, error) {
	switch {
	case r.Index == at:
		return r, nil
	case r.Index > at:
		return lookup.Result{}, fmt.Errorf("proxy: %s answered as of %d, asked for %d", addr, r.Index, at)
	}
	if changed, ok := p.win.Changed(key, r.Index, at); ok && !changed {
		r.Index = at
		return r, nil
	}
	return lookup.Result{}, fmt.Errorf("proxy: %s is at %d, behind %d, and the window (from %d) cannot prove key unchanged", addr, r.Index, at, p.windowLo())
}

// maxLookupKeys bounds the keys of one many-key lookup: a replica with
// the default lookup.Config refuses more.
const maxLookupKeys = lookup.DefaultMaxKeys

// fetch asks the replica c for keys as of at and returns each key's answer
// or error. One key goes by Get; more go by GetMany, one request for all of
// them (in requests of at most maxLookupKeys), except keys that are not
// valid UTF-8, which the many-key form cannot carry: those go by Get. When
// a many-key request is refused as too large or its answer breaks the
// protocol (an answer of many large values can exceed what the client
// accepts in one body), its keys are asked one by one, as a single-key read
// would ask them. Every answer still needs prove.
func fetch(ctx context.Context, c *lookup.Client, keys [][]byte, at argent.Index) ([]lookup.Result, []error) {
	rs := make([]lookup.Result, len(keys))
	errs := make([]error, len(keys))
	one := func(i int) { rs[i], errs[i] = c.Get(ctx, keys[i], at) }
	var batch []int
	for i, k := range keys {
		if utf8.Valid(k) {
			batch = append(batch, i)
		} else {
			one(i)
		}
	}
	if len(batch) == 1 {
		one(batch[0])
		batch = nil
	}
	for len(batch) > 0 {
		part := batch[:min(len(batch), maxLookupKeys)]
		batch = batch[len(part):]
		ask := make([][]byte, len(part))
		for j, i := range part {
			ask[j] = keys[i]
		}
		got, err := c.GetMany(ctx, ask, at)
		switch {
		case err == nil:
			for j, i := range part {
				rs[i] = got[j]
			}
		case ctx.Err() == nil && (errors.Is(err, argent.ErrTooLarge) || errors.Is(err, lookup.ErrProtocol)):
			for _, i := range part {
				one(i)
			}
		default:
			for _, i := range part {
				errs[i] = err
			}
		}
	}
	return rs, errs
}

func (p *Proxy) windowLo() argent.Index {
	lo, _ := p.win.Bounds()
	return lo
}

func (p *Proxy) missErr(key []byte, at argent.Index, err error) error {
	if err == nil {
		err = errors.New("no answer")
	}
	return fmt.Errorf("%w: proxy: miss of %q at %d not resolved in %v: %w", argent.ErrUnavailable, key, at, p.cfg.MissWait, err)
}

// missErrs turns the errors of the keys at positions todo into missErr.
func (p *Proxy) missErrs(keys [][]byte, todo []int, at argent.Index, errs []error) []error {
	for _, i := range todo {
		errs[i] = p.missErr(keys[i], at, errs[i])
	}
	return errs
}

// admit offers r, the value at index at, to the cache at the cache's
// applied index S2, if the window proves nothing wrote the key in
// (at, S2], and reports whether the cache took it. The cache refuses it if
// an Apply moved S2 meanwhile; the next miss brings it again.
func (p *Proxy) admit(key []byte, r lookup.Result, at argent.Index) bool {
	s2 := p.cache.Applied()
	if changed, ok := p.win.Changed(key, at, s2); !ok || changed {
		return false
	}
	e := proxycache.Entry{Present: !r.Absent, Value: r.Value}
	if r.Absent {
		e.Since = at // absent at at, and nothing changed it up to s2
	}
	return p.admitEntry(key, e, s2)
}

// admitEntry offers e, key's value at the cache's applied index s2, to the
// cache, and reports whether the cache took it.
func (p *Proxy) admitEntry(key []byte, e proxycache.Entry, s2 argent.Index) bool {
	ok, err := p.cache.Admit(key, e, s2)
	if err != nil {
		p.cfg.Logger.Warn("proxy: admit to cache", "err", err)
		return false
	}
	if ok {
		p.stats.Admitted.Add(1)
	}
	return ok
}
