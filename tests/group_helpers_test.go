package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// This file holds the helpers of the root group tests (group_test.go):
// linearizable reads over raw HTTP (the Go client has no option for them),
// and the classes of a failed write.

// groupClients returns a client of each member of g, sharing one connection
// pool closed at the end of the test.
func groupClients(t *testing.T, g *cluster.Group) []*client.Client {
	t.Helper()
	hc := client.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	out := make([]*client.Client, len(g.Members))
	for i, m := range g.Members {
		c, err := client.New(m.Addr, client.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// linTargets are the members the clients of groupLinearizable send to,
// each with a client; a membership change replaces them while the clients
// run. Its methods are safe for concurrent use.
type linTargets struct {
	hc *http.Client // the clients' shared pool

	mu      sync.Mutex
	members []*cluster.Node
	clients []*client.Client
}

// newLinTargets returns the members of g as targets.
func newLinTargets(t *testing.T, g *cluster.Group) *linTargets {
	t.Helper()
	ts := &linTargets{hc: client.NewHTTPClient()}
	t.Cleanup(ts.hc.CloseIdleConnections)
	for _, m := range g.Members {
		ts.add(t, m)
	}
	return ts
}

// pick returns a random target and its client.
func (ts *linTargets) pick(rng *rand.Rand) (*cluster.Node, *client.Client) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	i := rng.IntN(len(ts.members))
	return ts.members[i], ts.clients[i]
}

// add makes m a target.
func (ts *linTargets) add(t *testing.T, m *cluster.Node) {
	t.Helper()
	c, err := client.New(m.Addr, client.WithHTTPClient(ts.hc))
	if err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.members = append(ts.members, m)
	ts.clients = append(ts.clients, c)
}

// remove stops sending new requests to m; those under way go on.
func (ts *linTargets) remove(m *cluster.Node) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if i := slices.Index(ts.members, m); i >= 0 {
		ts.members = slices.Delete(ts.members, i, i+1)
		ts.clients = slices.Delete(ts.clients, i, i+1)
	}
}

// notSent reports whether a request that failed with err certainly never
// reached the node: the connection was refused, so a write cannot have
// taken effect.
func notSent(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// errClass names the class of a failed request for the test's log.
func errClass(err error) string {
	switch {
	case notSent(err):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "client timeout"
	case statusOf(err) != 0:
		var e *client.Error
		errors.As(err, &e)
		return fmt.Sprintf("%d %s", e.Status, e.Code)
	}
	return "transport"
}

// linGet reads key at the node at addr with ?linearizable=true. ok is false
// when the read failed (no answer, or an error answer other than 404).
func linGet(ctx context.Context, hc *http.Client, addr, key string) (out linOutput, ok bool, err error) {
	u := "http://" + addr + "/v1/kv/" + url.PathEscape(key) + "?linearizable=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return out, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return out, false, err
	}
	header := func(name string) (argent.Index, error) {
		v := resp.Header.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("header %s: %q: %w", name, v, err)
		}
		return argent.Index(n), nil
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNotFound:
	default:
		return out, false, fmt.Errorf("GET %s: %s: %s", u, resp.Status, trunc(body))
	}
	if out.s, err = header(client.HeaderIndex); err != nil {
		return out, false, err
	}
	if out.mod, err = header(client.HeaderModIndex); err != nil {
		return out, false, err
	}
	if resp.StatusCode == http.StatusNotFound {
		var eb client.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != client.CodeNotFound {
			return out, false, fmt.Errorf("GET %s: 404 that is not not_found: %s", u, trunc(body))
		}
		return out, true, nil
	}
	out.present, out.val = true, string(body)
	return out, true, nil
}

// linScan reads every key under prefix at the node at addr with
// ?linearizable=true, page by page, and returns them by key with the index
// of the first page.
func linScan(hc *http.Client, addr, prefix string) (map[string]client.Item, argent.Index, error) {
	items := map[string]client.Item{}
	var first argent.Index
	after := ""
	for page := 0; ; page++ {
		q := url.Values{"prefix": {prefix}, "limit": {"5000"}, "linearizable": {"true"}}
		if after != "" {
			q.Set("after", after)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/kv?"+q.Encode(), nil)
		if err != nil {
			cancel()
			return nil, 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			return nil, 0, fmt.Errorf("linearizable scan of %s, page %d: %w", addr, page, err)
		}
		var pg client.ScanPage
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			err = fmt.Errorf("linearizable scan of %s, page %d: %s: %s", addr, page, resp.Status, body)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&pg)
		}
		resp.Body.Close()
		cancel()
		if err != nil {
			return nil, 0, err
		}
		if page == 0 {
			first = pg.Index
		}
		for _, it := range pg.Items {
			items[it.Key] = it
		}
		if pg.Next == "" {
			return items, first, nil
		}
		after = pg.Next
	}
}

// durations are measured times, summarized as percentiles.
type durations []time.Duration

func (ds durations) percentile(p float64) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(percentile(xs, p))
}

func (ds durations) String() string {
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d: p50 %v p99 %v max %v", len(ds), ds.percentile(0.5).Round(time.Millisecond),
		ds.percentile(0.99).Round(time.Millisecond), ds.percentile(1).Round(time.Millisecond))
}
