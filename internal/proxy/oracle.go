package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
)

// oracle is the proxy's small network oracle: the replicas it may resolve
// misses at, with what each last said of itself (health, applied index,
// lag, data center). It starts from the --upstream list and learns more
// from each known node's status: its upstream and its children that are
// replicas. Misses go to the best replicas first: healthy, the relay of
// the proxy's DC, in the proxy's own DC, at or past the index asked for,
// least lag.
type oracle struct {
	dc     string
	http   *http.Client
	limits argent.Limits
	// forget drops a learned replica silent for this long; the --upstream
	// ones stay.
	forget time.Duration
	// onCorrupt, when set, is told of every answer damaged in transit.
	onCorrupt func(*http.Request, error)
	// onRelay, when set, is given the addresses of the proxies of the
	// oracle's DC that a relay names as its children.
	onRelay func(proxies []string)

	mu    sync.Mutex
	peers map[string]*peer // by address
}

type peer struct {
	addr     string
	c        *lookup.Client
	listed   bool // from --upstream
	role, dc string
	healthy  bool
	checked  bool // a status was asked at least once
	applied  argent.Index
	lag      float64
	lastOK   time.Time // last status answer, or when it was learned
}

func newOracle(addrs []string, dc string, hc *http.Client, limits argent.Limits, onCorrupt func(*http.Request, error)) (*oracle, error) {
	o := &oracle{dc: dc, http: hc, limits: limits, onCorrupt: onCorrupt, forget: time.Minute, peers: make(map[string]*peer)}
	for _, a := range addrs {
		if _, err := o.add(a, true); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// add knows addr from now on.
func (o *oracle) add(addr string, listed bool) (*peer, error) {
	addr = strings.TrimPrefix(addr, "http://")
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.peers[addr]; ok {
		p.listed = p.listed || listed
		return p, nil
	}
	c, err := lookup.NewClient(addr, &lookup.ClientOptions{HTTPClient: o.http, Limits: o.limits, OnCorrupt: o.onCorrupt})
	if err != nil {
		return nil, fmt.Errorf("proxy: replica %s: %w", addr, err)
	}
	// lastOK starts at now: a learned peer that never answers is forgotten
	// after the forget time, not at once (its parent may still name it).
	p := &peer{addr: addr, c: c, listed: listed, healthy: true, lastOK: time.Now()}
	o.peers[addr] = p
	return p, nil
}

// client returns the lookup client of addr, known or not.
func (o *oracle) client(addr string) (*lookup.Client, error) {
	p, err := o.add(addr, false)
	if err != nil {
		return nil, err
	}
	return p.c, nil
}

// order returns the clients of the replicas to try for a read at index
// at, best first (see oracle). Unhealthy ones come last, not never: when
// all look down, trying is still better than failing.
func (o *oracle) order(at argent.Index) []*lookup.Client {
	o.mu.Lock()
	ps := make([]*peer, 0, len(o.peers))
	for _, p := range o.peers {
		cp := *p
		ps = append(ps, &cp)
	}
	o.mu.Unlock()
	rank := func(p *peer) [5]int {
		r := [5]int{}
		switch {
		case !p.healthy:
			r[0] = 2
		case !p.checked:
			r[0] = 1 // not asked yet: after the ones known to be well
		}
		if o.dc != "" && (p.role != "relay" || p.dc != o.dc) {
			r[1] = 1 // the DC's relay first: it shares misses across the DC
		}
		if o.dc != "" && p.dc != o.dc {
			r[2] = 1
		}
		if p.checked && p.applied < at {
			r[3] = 1 // behind: its answer needs the window's proof
		}
		if p.role == "root" {
			r[4] = 1 // spare the root
		}
		return r
	}
	sort.SliceStable(ps, func(i, j int) bool {
		ri, rj := rank(ps[i]), rank(ps[j])
		if ri != rj {
			for k := range ri {
				if ri[k] != rj[k] {
					return ri[k] < rj[k]
				}
			}
		}
		if ps[i].lag != ps[j].lag {
			return ps[i].lag < ps[j].lag
		}
		return ps[i].addr < ps[j].addr
	})
	out := make([]*lookup.Client, len(ps))
	for i, p := range ps {
		out[i] = p.c
	}
	return out
}

// markDown notes a failed lookup at addr until its next status check.
func (o *oracle) markDown(addr string) {
	addr = strings.TrimPrefix(addr, "http://")
	o.mu.Lock()
	if p, ok := o.peers[addr]; ok {
		p.healthy = false
	}
	o.mu.Unlock()
}

// run refreshes every peer's status each interval until ctx ends.
func (o *oracle) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		o.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh asks each known peer for its status, learns the replicas it
// names, and forgets learned ones that have been silent too long.
func (o *oracle) refresh(ctx context.Context) {
	o.mu.Lock()
	addrs := make([]string, 0, len(o.peers))
	for a := range o.peers {
		addrs = append(addrs, a)
	}
	o.mu.Unlock()
	for _, a := range addrs {
		st, err := o.status(ctx, a)
		now := time.Now()
		o.mu.Lock()
		p := o.peers[a]
		if p == nil {
			o.mu.Unlock()
			continue
		}
		p.checked = true
		if err != nil {
			p.healthy = false
			if !p.listed && now.Sub(p.lastOK) > o.forget {
				delete(o.peers, a)
			}
			o.mu.Unlock()
			continue
		}
		p.healthy, p.lastOK = true, now
		p.role, p.dc, p.applied, p.lag = st.Role, st.DC, st.AppliedIndex, st.LagSeconds
		o.mu.Unlock()
		if st.Role == "proxy" {
			continue // a proxy answers no lookups; it was named in error
		}
		if st.Role == "relay" && o.onRelay != nil && st.DC == o.dc {
			var proxies []string
			for _, c := range st.Children {
				if c.Role == "proxy" && c.DC == o.dc && c.Addr != "" {
					proxies = append(proxies, c.Addr)
				}
			}
			o.onRelay(proxies)
		}
		if st.Upstream != "" {
			_, _ = o.add(st.Upstream, false)
		}
		for _, c := range st.Children {
			if c.Role == "replica" && c.Addr != "" {
				_, _ = o.add(c.Addr, false)
			}
		}
	}
}

func (o *oracle) status(ctx context.Context, addr string) (apiwire.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var st apiwire.StatusResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status of %s: %s", addr, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// relays returns the addresses of the known relays of the oracle's DC
// that answered their last status.
func (o *oracle) relays() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, p := range o.peers {
		if p.checked && p.healthy && p.role == "relay" && p.dc == o.dc {
			out = append(out, p.addr)
		}
	}
	sort.Strings(out)
	return out
}

// replicas returns the addresses of the known replicas (not the root, not
// proxies) that answered their last status, for the log follower.
func (o *oracle) replicas() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, p := range o.peers {
		if p.checked && p.healthy && p.role == "replica" {
			out = append(out, p.addr)
		}
	}
	sort.Strings(out)
	return out
}

// isRelay reports whether addr answered its last status as a relay.
func (o *oracle) isRelay(addr string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.peers[strings.TrimPrefix(addr, "http://")]
	return ok && p.checked && p.role == "relay"
}
