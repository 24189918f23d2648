package proxy_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// answerGate sits in front of a lookup server and holds the answer of the
// first single-key lookup: the replica computes it, then the gate keeps it
// until release, so a test can move the proxy on between a lookup's answer
// and its admission to the cache.
type answerGate struct {
	once     sync.Once
	answered chan struct{} // closed once the held answer is computed
	release  chan struct{} // closed to send it
}

func newAnswerGate(t *testing.T) *answerGate {
	g := &answerGate{answered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

// open sends the held answer, if any, and lets every later lookup through.
func (g *answerGate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *answerGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		if r.URL.Path == lookup.LookupPath && r.Method == http.MethodGet {
			g.once.Do(func() { first = true })
		}
		if !first {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		close(g.answered)
		<-g.release
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// TestProxy_AdmitRefusesKeyChangedDuringMiss checks the "(S1, S2]" rule of
// docs/CONTRACT.md promise 5 at admission (see admit in resolve.go): a read of k
// misses at S1 = 2; the replica answers k's value as of 2; before that
// answer reaches the proxy, the proxy applies index 3, which writes k. The
// read still answers the value at 2, but that value must not enter the
// cache at 3: once the window (one batch) has slid past index 3, a read at
// 4 would find it in the cache and serve the old value as k's value at 4.
func TestProxy_AdmitRefusesKeyChangedDuringMiss(t *testing.T) {
	root, h := openRoot(t)
	op := func(k, v string) []argent.Op {
		return []argent.Op{{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}}
	}
	root.commit(t, op("k", "old"))   // 1
	root.commit(t, op("other", "1")) // 2: S1; the window no longer holds k's put
	root.commit(t, op("k", "new"))   // 3: S2, applied while the lookup is under way
	root.commit(t, op("other", "2")) // 4: slides the window past 3
	gate := newAnswerGate(t)
	r := newReplicaWith(t, h, len(h.entries), gate.wrap)
	p := newProxyWith(t, 1<<20, proxy.Config{Replicas: []string{r.addr}, Window: window.Options{MaxBatches: 1}, MissWait: 10 * time.Second})
	rng := rand.New(rand.NewPCG(15, 16))
	apply(t, p, h, 2, rng)

	type answer struct {
		v    argent.Value
		tier string
		err  error
	}
	miss := make(chan answer, 1)
	go func() {
		v, tier, err := p.GetTier(context.Background(), []byte("k"), 2)
		miss <- answer{v, tier, err}
	}()
	select {
	case <-gate.answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the lookup of k as of 2 did not reach the replica within 5 s")
	}
	apply(t, p, h, 3, rng)
	gate.open()
	var a answer
	select {
	case a = <-miss:
	case <-time.After(10 * time.Second):
		t.Fatal("the read of k at 2 did not end within 10 s of the replica's answer")
	}
	if a.err != nil || a.tier != proxy.TierL3 || string(a.v.Value) != "old" || a.v.ModIndex != 1 {
		t.Fatalf("read of k at 2 = %q@%d from tier %q, %v; want \"old\"@1 from the replica", a.v.Value, a.v.ModIndex, a.tier, a.err)
	}

	apply(t, p, h, 4, rng)
	v, tier, err := p.GetTier(context.Background(), []byte("k"), 4)
	if err != nil || string(v.Value) != "new" || v.ModIndex != 3 {
		t.Fatalf("read of k at 4 = %q@%d from tier %q, %v; want \"new\"@3: the value fetched as of 2 entered the cache at 3, though index 3 wrote k",
			v.Value, v.ModIndex, tier, err)
	}
}
