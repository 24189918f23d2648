package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/promtext"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/wire"
)

// This file holds the helpers of the replication tree tests (tree_test.go):
// metrics scraping, state digests, a sequential writer whose batches are the
// whole log, a paced write load, a read prober and status dumps.

// scrapeMetrics returns n's /metrics as the sum of the samples of each
// series name (labels summed: argent_upstream_reconnects_total is the total
// over every reason). Labelled samples are also kept under their full name,
// for example `argent_upstream_reconnects_total{reason="stall"}`.
func scrapeMetrics(hc *http.Client, n *cluster.Node) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: metrics: %s", n.Name, resp.Status)
	}
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", n.Name, err)
	}
	out := map[string]float64{}
	for _, s := range samples {
		out[s.Name] += s.Value
		if len(s.Labels) > 0 {
			out[s.Series()] += s.Value
		}
	}
	return out, nil
}

// metric returns one metric of n (summed over labels), failing t if
// /metrics cannot be read. A metric that is not exported reads 0.
func metric(t *testing.T, hc *http.Client, n *cluster.Node, name string) float64 {
	t.Helper()
	m, err := scrapeMetrics(hc, n)
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// treeMetrics are the metrics dumpNodes shows.
var treeMetrics = []string{
	"argent_applied_index", "argent_root_index", "argent_lag_indexes", "argent_lag_seconds",
	"argent_log_first_index", "argent_children",
	"argent_log_entries_received_total", "argent_log_entries_sent_total",
	"argent_corrupt_frames_total", "argent_upstream_reconnects_total", "argent_upstream_failures_total",
	"argent_log_too_old_total", "argent_snapshots_served_total", "argent_snapshot_loading",
	"argent_snapshots_loaded_total", "argent_snapshot_resumes_total", "argent_snapshot_records_received_total",
}

// describeNode returns n's status and the tree metrics in one line each,
// for failure messages.
func describeNode(hc *http.Client, n *cluster.Node) string {
	if !n.Running() {
		return fmt.Sprintf("%s (%s): not running", n.Name, n.Addr)
	}
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	st, err := n.StatusContext(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(&b, "%s (%s): status: %v", n.Name, n.Addr, err)
		return b.String()
	}
	raw, _ := json.Marshal(st.Raw)
	fmt.Fprintf(&b, "%s (%s): status %s", n.Name, n.Addr, raw)
	m, err := scrapeMetrics(hc, n)
	if err != nil {
		fmt.Fprintf(&b, "\n    metrics: %v", err)
		return b.String()
	}
	b.WriteString("\n    metrics:")
	for _, name := range treeMetrics {
		fmt.Fprintf(&b, " %s=%g", strings.TrimPrefix(name, "argent_"), m[name])
	}
	var labelled []string
	for k, v := range m {
		if strings.HasPrefix(k, "argent_upstream_reconnects_total{") {
			labelled = append(labelled, fmt.Sprintf("%s=%g", strings.TrimPrefix(k, "argent_upstream_reconnects_total"), v))
		}
	}
	sort.Strings(labelled)
	if len(labelled) > 0 {
		fmt.Fprintf(&b, " reconnects%v", labelled)
	}
	return b.String()
}

// dumpOnFailure logs the status and tree metrics of every node if the test
// has failed by the time its cleanups run. Call it after the nodes are
// started: cleanups run last-in first-out, so the nodes still run then.
func dumpOnFailure(t *testing.T, nodes ...*cluster.Node) {
	t.Helper()
	hc := rawHTTP(t)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			t.Logf("state at failure: %s", describeNode(hc, n))
		}
	})
}

// waitAllApplied polls every node's status until each has applied_index >=
// index, and fails t with every node's state if that has not happened
// within timeout. It returns how long it took.
func waitAllApplied(t *testing.T, nodes []*cluster.Node, index argent.Index, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		behind := []string{}
		for _, n := range nodes {
			st, err := n.Status()
			if err != nil {
				behind = append(behind, err.Error())
			} else if argent.Index(st.AppliedIndex) < index {
				behind = append(behind, fmt.Sprintf("%s at %d (upstream %q)", n.Name, st.AppliedIndex, st.Upstream))
			}
		}
		if len(behind) == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			hc := rawHTTP(t)
			var b strings.Builder
			for _, n := range nodes {
				fmt.Fprintf(&b, "\n  %s", describeNode(hc, n))
			}
			t.Fatalf("not every node reached index %d within %v: behind: %s%s", index, timeout, strings.Join(behind, "; "), b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateDigest is a hash of a node's whole state at one index: every key,
// its value and its mod index, in key order.
type stateDigest struct {
	Hash  string
	Keys  int
	Bytes int64 // of values
}

func (d stateDigest) String() string {
	return fmt.Sprintf("%s (%d keys, %d value bytes)", d.Hash[:16], d.Keys, d.Bytes)
}

type digester struct {
	h hash.Hash
	d stateDigest
}

func newDigester() *digester { return &digester{h: sha256.New()} }

func (g *digester) add(key string, mod argent.Index, value []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	g.h.Write(n[:])
	g.h.Write([]byte(key))
	binary.BigEndian.PutUint64(n[:], uint64(mod))
	g.h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(value)))
	g.h.Write(n[:])
	g.h.Write(value)
	g.d.Keys++
	g.d.Bytes += int64(len(value))
}

func (g *digester) sum() stateDigest {
	g.d.Hash = hex.EncodeToString(g.h.Sum(nil))
	return g.d
}

// digestNode scans the whole key space of the node behind c with min_index
// at and hashes it. Every page must be answered from exactly index at (the
// tests call it once writes have stopped at at), so the digest is of one
// state.
func digestNode(c *client.Client, at argent.Index) (stateDigest, error) {
	g := newDigester()
	var after []byte
	for page := 0; ; page++ {
		if page > 10000 {
			return stateDigest{}, fmt.Errorf("scan of %s: more than 10000 pages", c.Addr())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		pg, err := c.Scan(ctx, nil, after, 5000, client.ReadOptions{MinIndex: at, Wait: 10 * time.Second})
		cancel()
		if err != nil {
			return stateDigest{}, fmt.Errorf("scan of %s after %q at min_index %d: %w", c.Addr(), after, at, err)
		}
		if pg.Index != at {
			return stateDigest{}, fmt.Errorf("scan of %s after %q: page answered from S=%d, want %d (no write was made after %d)", c.Addr(), after, pg.Index, at, at)
		}
		for _, it := range pg.Items {
			g.add(it.Key, it.ModIndex, it.Value)
		}
		if len(pg.Next) == 0 {
			return g.sum(), nil
		}
		after = pg.Next
	}
}

// digestTruth hashes the truth's state at index at like digestNode.
func digestTruth(tr *truth, at argent.Index) stateDigest {
	g := newDigester()
	items, _ := tr.scan("", "", math.MaxInt, at)
	for _, it := range items {
		g.add(it.Key, it.ModIndex, it.Value)
	}
	return g.sum()
}

// checkDigests digests every node at index at and checks that each equals
// want (the truth's digest, or the root's when want is nil).
func checkDigests(t *testing.T, at argent.Index, want *stateDigest, nodes ...*cluster.Node) {
	t.Helper()
	hc := client.NewHTTPClient()
	defer hc.CloseIdleConnections()
	for _, n := range nodes {
		c, err := client.New(n.Addr, client.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		d, err := digestNode(c, at)
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		if want == nil {
			want = &d
			t.Logf("digest of %s at %d: %v", n.Name, at, d)
			continue
		}
		if d != *want {
			t.Errorf("%s: state at index %d has digest %v, want %v", n.Name, at, d, *want)
		} else {
			t.Logf("digest of %s at %d: %v (same)", n.Name, at, d)
		}
	}
}

// seqLog writes batches to the root one at a time and keeps them as the
// log: the test must be the root's only writer, so that the batches
// acknowledged are exactly the log.
type seqLog struct {
	t       *testing.T
	c       *client.Client
	entries []logEntry
}

func newSeqLog(t *testing.T, root *cluster.Node) *seqLog {
	return &seqLog{t: t, c: newClient(t, root)}
}

// write commits ops as one batch and returns its index, failing t if the
// write fails or does not get the next index.
func (l *seqLog) write(ops ...argent.Op) argent.Index {
	l.t.Helper()
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	idx, err := l.c.Txn(ctx, argent.Batch{Ops: ops})
	if err != nil {
		l.t.Fatalf("write %d: %v", len(l.entries)+1, err)
	}
	if want := argent.Index(len(l.entries) + 1); idx != want {
		l.t.Fatalf("write of %s got index %d, want %d (is someone else writing to the root?)", fmtOps(ops), idx, want)
	}
	l.entries = append(l.entries, logEntry{Index: idx, Ops: ops})
	return idx
}

func (l *seqLog) final() argent.Index { return argent.Index(len(l.entries)) }

func (l *seqLog) truth() *truth { return newTruth(l.entries) }

// paddedValue returns a value of size bytes starting with tag.
func paddedValue(tag string, size int) []byte {
	b := make([]byte, max(size, len(tag)))
	copy(b, tag)
	for i := len(tag); i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// pacedLoad writes puts to the root at a fixed rate from a few workers; a
// tick that finds every worker busy is skipped and counted.
type pacedLoad struct {
	c                         *client.Client
	maxAcked                  atomic.Uint64
	acked, skipped, failed    atomic.Int64
	wg                        sync.WaitGroup
	stop                      chan struct{}
	stopOnce                  sync.Once
	mu                        sync.Mutex
	errs                      errSample
	acks                      []ack // guarded by mu
	started, ended            time.Time
	rate, workers, valueBytes int
}

// startPacedLoad starts writing rate puts per second of valueBytes values
// with workers concurrent writers, for at most d (or until stopNow).
func startPacedLoad(c *client.Client, rate, workers, valueBytes int, d time.Duration) *pacedLoad {
	l := &pacedLoad{c: c, stop: make(chan struct{}), rate: rate, workers: workers, valueBytes: valueBytes}
	l.started = time.Now()
	tokens := make(chan int, workers)
	l.wg.Add(1 + workers)
	go func() {
		defer l.wg.Done()
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		end := time.NewTimer(d)
		defer end.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-tick.C:
			case <-end.C:
				return
			case <-l.stop:
				return
			}
			select {
			case tokens <- seq:
			default:
				l.skipped.Add(1)
			}
		}
	}()
	for range workers {
		go func() {
			defer l.wg.Done()
			for seq := range tokens {
				ctx, cancel := ctxTimeout(10 * time.Second)
				idx, err := c.Put(ctx, []byte(fmt.Sprintf("load/%03d", seq%100)), paddedValue(fmt.Sprintf("p%d.", seq), valueBytes))
				cancel()
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.errs.add("put", err)
					l.mu.Unlock()
					continue
				}
				l.acked.Add(1)
				l.mu.Lock()
				l.acks = append(l.acks, ack{index: idx, at: time.Now()})
				l.mu.Unlock()
				for {
					cur := l.maxAcked.Load()
					if uint64(idx) <= cur || l.maxAcked.CompareAndSwap(cur, uint64(idx)) {
						break
					}
				}
			}
		}()
	}
	return l
}

// wait waits for the load to end and returns the highest acknowledged index.
func (l *pacedLoad) wait() argent.Index {
	l.wg.Wait()
	if l.ended.IsZero() {
		l.ended = time.Now()
	}
	return argent.Index(l.maxAcked.Load())
}

// ack is one acknowledged write of a pacedLoad.
type ack struct {
	index argent.Index
	at    time.Time
}

// staleness returns how long a node that served applied index at time t
// was behind the root: t minus the earliest acknowledgement, before t, of a
// write it did not hold yet (0 if it held every write acknowledged before
// t).
func (l *pacedLoad) staleness(t time.Time, applied argent.Index) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, a := range l.acks {
		if a.index > applied && a.at.Before(t) {
			d = max(d, t.Sub(a.at))
		}
	}
	return d
}

func (l *pacedLoad) stopNow() {
	l.stopOnce.Do(func() { close(l.stop) })
}

// halt stops the load and waits for its writers to end: defer it where a
// Fatal may end the test early, so that no put is sent while the test's
// cleanups stop the nodes.
func (l *pacedLoad) halt() {
	l.stopNow()
	l.wg.Wait()
}

func (l *pacedLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	secs := l.ended.Sub(l.started).Seconds()
	return fmt.Sprintf("%d puts acked in %.1fs (%.0f/s, asked %d/s), %d ticks skipped (workers busy), %d failed: %v",
		l.acked.Load(), secs, float64(l.acked.Load())/secs, l.rate, l.skipped.Load(), l.failed.Load(), &l.errs)
}

// probe is one GET a prober made.
type probe struct {
	key        string
	start, end time.Time
	status     int          // 0 on a transport error
	code       string       // error code of a non-2xx answer
	s          argent.Index // Argent-Index
	mod        argent.Index // Argent-Mod-Index
	value      []byte
	err        error
}

func (p probe) String() string {
	switch {
	case p.status == 0:
		return fmt.Sprintf("GET %q: %v", p.key, p.err)
	case p.status == http.StatusOK:
		return fmt.Sprintf("GET %q: 200 S=%d mod=%d value %q", p.key, p.s, p.mod, trunc(p.value))
	default:
		return fmt.Sprintf("GET %q: %d %s S=%d", p.key, p.status, p.code, p.s)
	}
}

// prober reads keys at a node one after another with raw GETs (no
// min_index) and records every answer, to see what the node serves while
// the tree around it changes.
type prober struct {
	node *cluster.Node
	hc   *http.Client
	keys []string
	stop chan struct{}
	done chan struct{}
	mu   struct {
		sync.Mutex
		probes []probe
	}
}

// startProber reads keys in turn at n every interval until stopProbes.
func startProber(t *testing.T, n *cluster.Node, keys []string, interval time.Duration) *prober {
	p := &prober{node: n, hc: rawHTTP(t), keys: keys, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { p.stopProbes() })
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			pr := p.get(keys[i%len(keys)])
			p.mu.Lock()
			p.mu.probes = append(p.mu.probes, pr)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return p
}

func (p *prober) get(key string) probe {
	pr := probe{key: key, start: time.Now()}
	defer func() { pr.end = time.Now() }()
	resp, err := p.hc.Get(p.node.URL() + "/v1/kv/" + key)
	if err != nil {
		pr.err = err
		pr.end = time.Now()
		return pr
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	pr.end = time.Now()
	if err != nil {
		pr.err = err
		return pr
	}
	pr.status = resp.StatusCode
	if v := resp.Header.Get(client.HeaderIndex); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		pr.s = argent.Index(n)
	}
	if v := resp.Header.Get(client.HeaderModIndex); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		pr.mod = argent.Index(n)
	}
	if resp.StatusCode == http.StatusOK {
		pr.value = body
		return pr
	}
	var eb client.ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil {
		pr.code = eb.Error.Code
	} else {
		pr.code = fmt.Sprintf("(body %q)", trunc(body))
	}
	return pr
}

// stopProbes stops the prober and returns its probes.
func (p *prober) stopProbes() []probe {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]probe(nil), p.mu.probes...)
}

// probeSummary counts probes by outcome.
func probeSummary(probes []probe) string {
	counts := map[string]int{}
	for _, p := range probes {
		switch {
		case p.status == 0:
			counts["transport"]++
		case p.code != "":
			counts[fmt.Sprintf("%d %s", p.status, p.code)]++
		default:
			counts[fmt.Sprint(p.status)]++
		}
	}
	return fmt.Sprint(counts)
}

// checkProbes checks a prober's answers against the truth: a 200 or 404 is
// the key's state at its S, S never goes back, a 503 says "unavailable"
// (or "not_ready" at S=0 before the node has answered from any state:
// docs/CONTRACT.md section 4, a fresh node), and nothing else is answered. Transport
// errors are counted, not failed.
func checkProbes(t *testing.T, desc string, tr *truth, probes []probe) {
	t.Helper()
	rep := &reporter{t: t, what: desc}
	defer rep.done()
	var top argent.Index
	served := false // a 200 or 404 came: the node has a state
	for _, p := range probes {
		switch {
		case p.status == 0:
			continue
		case p.status == http.StatusServiceUnavailable && p.code == client.CodeNotReady:
			if served || p.s != 0 {
				rep.errorf("503 %q after the node answered from a state (or at S=%d), want %q: %v", p.code, p.s, client.CodeUnavailable, p)
			}
			continue
		case p.status == http.StatusServiceUnavailable:
			if p.code != client.CodeUnavailable {
				rep.errorf("503 with code %q, want %q: %v", p.code, client.CodeUnavailable, p)
			}
			continue
		case p.status != http.StatusOK && !(p.status == http.StatusNotFound && p.code == client.CodeNotFound):
			rep.errorf("unexpected answer: %v", p)
			continue
		}
		served = true
		if p.s < top {
			rep.errorf("S went back from %d to %d: %v", top, p.s, p)
		}
		top = max(top, p.s)
		if p.s > tr.final() {
			rep.errorf("answered from S=%d beyond the end of the log (%d): %v", p.s, tr.final(), p)
			continue
		}
		want := tr.item(p.key, p.s)
		got := client.Item{Key: p.key, Absent: true}
		if p.status == http.StatusOK {
			got = client.Item{Key: p.key, Value: p.value, ModIndex: p.mod}
		}
		if !itemEqual(got, want) {
			rep.errorf("got %s, want %s at S=%d\n  %s", fmtItem(got), fmtItem(want), p.s, tr.describe(p.key, p.s, got.Value))
		}
	}
}

// childAddrs returns the addresses of the children in a status.
func childAddrs(st client.Status) []string {
	var out []string
	for _, c := range st.Children {
		out = append(out, c.Addr)
	}
	sort.Strings(out)
	return out
}

// percentile returns the p-th percentile (0..1) of xs, which it sorts.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// lengthFlipProxy forwards TCP connections to an upstream node and, in the
// first log stream it carries (an HTTP/1.1 chunked answer of type
// application/x-argent-frames), flips one bit of the length field of one
// frame: the frame with number frame (0 is the Hello) gets bit of its
// big-endian 32-bit length flipped. Every other byte passes unchanged. The
// faultproxy flips random bits; this one hits the one field a frame's CRC
// does not cover.
type lengthFlipProxy struct {
	ln       net.Listener
	upstream string
	frame    int
	bit      int
	armed    atomic.Bool // until the flip is done
	flipped  atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startLengthFlipProxy(t *testing.T, upstream string, frame, bit int) *lengthFlipProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lengthFlipProxy{ln: ln, upstream: upstream, frame: frame, bit: bit}
	p.armed.Store(true)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *lengthFlipProxy) Addr() string { return p.ln.Addr().String() }

func (p *lengthFlipProxy) serve(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.Close()
		done <- struct{}{}
	}()
	go func() {
		p.down(c, up)
		_ = c.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// down copies the upstream's bytes to the client, tracking HTTP answers,
// chunked encoding and frames to find the byte to flip.
func (p *lengthFlipProxy) down(dst, src net.Conn) {
	var (
		head      []byte // header bytes of the current answer
		inBody    bool
		frames    bool  // the answer is a frame stream
		chunkLeft int64 // data bytes left in the current chunk
		sizeLine  []byte
		crlf      int // bytes of CRLF after chunk data still to skip
		frameNo   int
		hdrPos    int    // position within the current frame header, 0..wire.HeaderSize
		hdr       []byte // header bytes of the current frame
		payLeft   int64  // payload bytes left in the current frame
	)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		b := buf[:n]
		for i := 0; i < len(b); i++ {
			if !inBody {
				head = append(head, b[i])
				if bytes.HasSuffix(head, []byte("\r\n\r\n")) {
					h := strings.ToLower(string(head))
					frames = strings.Contains(h, "application/x-argent-frames") && strings.Contains(h, "chunked") && p.armed.Load()
					inBody, head = true, nil
				}
				continue
			}
			if !frames {
				continue // one answer per connection is enough for this test
			}
			switch {
			case crlf > 0:
				crlf--
			case chunkLeft == 0:
				if b[i] != '\n' {
					sizeLine = append(sizeLine, b[i])
					continue
				}
				s := strings.TrimSpace(string(sizeLine))
				if j := strings.IndexByte(s, ';'); j >= 0 {
					s = s[:j]
				}
				sizeLine = sizeLine[:0]
				chunkLeft, _ = strconv.ParseInt(s, 16, 64)
				if chunkLeft == 0 {
					frames = false // the last chunk
				}
			default:
				// One byte of the frame stream.
				chunkLeft--
				if chunkLeft == 0 {
					crlf = 2
				}
				if payLeft > 0 {
					payLeft--
					continue
				}
				if hdrPos < 4 && frameNo == p.frame && p.armed.Load() {
					// Length byte hdrPos holds bits (3-hdrPos)*8..+7.
					if lo := (3 - hdrPos) * 8; p.bit >= lo && p.bit < lo+8 {
						b[i] ^= 1 << (p.bit - lo)
						p.armed.Store(false)
						p.flipped.Store(true)
					}
				}
				hdr = append(hdr, b[i])
				hdrPos++
				if hdrPos == wire.HeaderSize {
					payLeft = int64(binary.BigEndian.Uint32(hdr[:4]))
					if frameNo == p.frame && p.flipped.Load() {
						payLeft = 0 // stop tracking: the client reads it wrongly anyway
						frames = false
					}
					hdr, hdrPos = hdr[:0], 0
					frameNo++
				}
			}
		}
		if n > 0 {
			if _, werr := dst.Write(b); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
