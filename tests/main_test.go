// Package tests holds argent's multi-process tests: each test starts real
// argent processes (a root, or a root group of three members, and replicas
// and proxies on 127.0.0.1) with internal/testutil/cluster, drives them
// through the public client and raw HTTP, and checks the promises of
// docs/CONTRACT.md section 3 against the root's log, replayed as the ground
// truth.
//
// The tests are skipped under -short. The random workloads print their seed;
// rerun one with
//
//	go test ./tests/ -run TestReplica_SequentialConsistency -seed N
//
// (concurrency still varies from run to run, so a seed fixes the choice of
// operations, not their interleaving).
package tests

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

var seedFlag = flag.Uint64("seed", 0, "seed of the random workloads; 0 picks one from the clock")

// skipShort skips multi-process tests under go test -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test: starts argent processes; skipped with -short")
	}
}

// testSeed returns the seed of t's workload and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed %d)", s, s)
	return s
}

// newRand returns the random source of worker id of a workload seeded with
// seed.
func newRand(seed uint64, id int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(id)*0x9e3779b97f4a7c15+1))
}

// newClient returns a client of n with its own connection pool, closed at
// the end of the test.
func newClient(t *testing.T, n *cluster.Node) *client.Client {
	t.Helper()
	hc := client.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(n.Addr, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawHTTP returns a plain http.Client with a timeout, for raw requests.
func rawHTTP(t *testing.T) *http.Client {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// statusOf returns the HTTP status of an *client.Error in err, or 0.
func statusOf(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// definiteFailure reports whether a write that returned err certainly did
// not commit: the node answered with a 4xx (a failed condition, bad input)
// or 507 (a root, or a member of the root group, below its free-disk floor:
// refused before anything was written).
func definiteFailure(err error) bool {
	s := statusOf(err)
	return s >= 400 && s < 500 || s == http.StatusInsufficientStorage
}

// ctxTimeout returns a context that ends after d.
func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// sleepUntil sleeps until deadline (or returns at once if it has passed).
func sleepUntil(deadline time.Time) {
	if d := time.Until(deadline); d > 0 {
		time.Sleep(d)
	}
}

// errSample keeps counts of errors by a short class and the first few
// messages, for the log of a test.
type errSample struct {
	counts   map[string]int
	examples []string
}

func (s *errSample) add(class string, err error) {
	if s.counts == nil {
		s.counts = map[string]int{}
	}
	s.counts[class]++
	if len(s.examples) < 8 {
		s.examples = append(s.examples, fmt.Sprintf("%s: %v", class, err))
	}
}

func (s *errSample) total() int {
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

func (s *errSample) String() string {
	if s.total() == 0 {
		return "none"
	}
	return fmt.Sprintf("%v; examples: %q", s.counts, s.examples)
}
