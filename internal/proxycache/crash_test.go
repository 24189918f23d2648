package proxycache_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// crashPoint is a copy of the file system as a crash at one moment could
// leave it, with the last index whose Sync had returned by then.
type crashPoint struct {
	fs       *vfs.MemFS
	synced   argent.Index
	unsynced int
}

// TestCache_Crash applies a log in random groups, admits keys at the
// applied index, reads, syncs now and then, and lets the policy evict all
// the time (the budget holds a handful of keys, and the background evictor
// runs every millisecond), while the test takes crash clones of the file
// system at random moments, some in the middle of an Apply, an Admit or an
// eviction. Each clone must open at one index at or after the last Sync
// that returned before the clone, with every entry Pebble holds, evicted
// ones included, equal to the model's value at that index; and it must go
// on applying the log from there.
func TestCache_Crash(t *testing.T) {
	runs, clones := 12, 25
	if raceEnabled {
		runs, clones = 4, 10
	}
	seed := testSeed(t)
	for run := range runs {
		t.Run(fmt.Sprint("Run", run), func(t *testing.T) {
			testCrash(t, rand.New(rand.NewPCG(seed, uint64(run))), clones)
		})
	}
}

func testCrash(t *testing.T, rng *rand.Rand, clones int) {
	const entriesN = 200
	m := newModel()
	for range entriesN {
		m.add(randomOps(rng))
	}
	budget := []int64{400, 4000, 1 << 20}[rng.IntN(3)]
	memory := []int64{-1, 300, 1 << 20}[rng.IntN(3)]
	opts := func(fs vfs.FS) proxycache.Options {
		return proxycache.Options{FS: fs, Budget: budget, MemoryCache: memory, EvictDelay: time.Millisecond}
	}
	fs := vfs.NewCrashableMem()
	c, err := proxycache.Open("db", opts(fs))
	if err != nil {
		t.Fatal(err)
	}
	var points []crashPoint
	var synced argent.Index
	crash := func() {
		pct := rng.IntN(101)
		points = append(points, crashPoint{
			fs:       fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))}),
			synced:   synced,
			unsynced: pct,
		})
	}
	// during runs fn in another goroutine and crashes while it runs, after
	// a random number of scheduler yields.
	during := func(fn func() error) {
		errc := make(chan error, 1)
		go func() { errc <- fn() }()
		for range rng.IntN(100) {
			runtime.Gosched()
		}
		crash()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// maybeDuring runs fn, crashing while it runs with probability p.
	p := float64(clones) / 150
	maybeDuring := func(fn func() error) {
		if rng.Float64() < p/2 {
			during(fn)
		} else if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	next := argent.Index(1)
	for next <= entriesN {
		switch r := rng.IntN(10); {
		case r < 4: // apply a group
			n := min(argent.Index(1+rng.IntN(4)), entriesN+1-next)
			var es []*argent.Entry
			for i := range n {
				es = append(es, &m.entries[next+i-1])
			}
			maybeDuring(func() error { return c.Apply(es...) })
			next += n
		case r < 7: // admit a few keys at the applied index
			at := c.Applied()
			keys := make([]string, 1+rng.IntN(3))
			withSince := make([]bool, len(keys))
			for i := range keys {
				keys[i] = testKeys[rng.IntN(len(testKeys))]
				withSince[i] = rng.IntN(2) == 0
			}
			maybeDuring(func() error { // no rng in here: it runs in another goroutine
				for i, k := range keys {
					e, since := m.entryAt(k, at)
					if withSince[i] {
						e.Since = since
					}
					if ok, err := c.Admit([]byte(k), e, at); err != nil || !ok {
						return fmt.Errorf("Admit %q at %d = %v, %v", k, at, ok, err)
					}
				}
				return nil
			})
		case r < 8:
			var st argent.State
			maybeDuring(func() (err error) { st, err = c.Sync(); return err })
			synced = st.Index
		case r < 9:
			checkGets(t, c, m)
		default:
			maybeDuring(c.EvictNow)
		}
		if rng.Float64() < p/2 {
			crash()
		}
	}
	checkStored(t, c, m)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	var recovered []string
	for i, pt := range points {
		cc, err := proxycache.Open("db", opts(pt.fs))
		if err != nil {
			t.Fatalf("crash %d (synced %d, %d%% unsynced): Open: %v", i, pt.synced, pt.unsynced, err)
		}
		at := cc.Applied()
		if at < pt.synced || at > entriesN {
			_ = cc.Close()
			t.Fatalf("crash %d: reopened at %d, but Sync of %d had returned", i, at, pt.synced)
		}
		if at > 0 && cc.State().Chain != m.entries[at-1].Chain {
			t.Fatalf("crash %d: state %d has chain %x", i, at, cc.State().Chain)
		}
		checkStored(t, cc, m)
		checkGets(t, cc, m)
		if err := cc.CheckPolicy(); err != nil {
			t.Fatalf("crash %d: %v", i, err)
		}
		if at < entriesN {
			if err := cc.Apply(&m.entries[at]); err != nil {
				t.Fatalf("crash %d: Apply %d after recovery: %v", i, at+1, err)
			}
			checkStored(t, cc, m)
		}
		if err := cc.EvictNow(); err != nil {
			t.Fatal(err)
		}
		if w := cc.Weight(); w > uint64(budget) {
			t.Errorf("crash %d: weight %d over the budget %d", i, w, budget)
		}
		if err := cc.Close(); err != nil {
			t.Fatal(err)
		}
		recovered = append(recovered, fmt.Sprintf("%d>=%d", at, pt.synced))
	}
	t.Logf("budget %d, memory %d; recovered>=synced: %v", budget, memory, recovered)
}
