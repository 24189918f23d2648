package kv_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
)

// crashPoint is a copy of the file system as a crash at one moment could
// leave it, with the last index whose Commit had returned by then.
type crashPoint struct {
	fs        *vfs.MemFS
	committed argent.Index
	unsynced  int
}

// TestStore_Crash commits groups of entries on a crashable file system (and
// trims now and then) while the test takes crash clones at random moments,
// some of them in the middle of a Commit or a Trim. Each clone must open at
// one index at or after the last Commit that returned before the clone,
// with exactly the model's content and chain hash at that index, and must
// accept the next entry.
func TestStore_Crash(t *testing.T) {
	runs, clones := 10, 15
	if raceEnabled {
		runs, clones = 3, 8
	}
	for run := range runs {
		t.Run(fmt.Sprint("Run", run), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(testSeed(t), uint64(run)))
			testCrash(t, rng, clones)
		})
	}
}

func testCrash(t *testing.T, rng *rand.Rand, clones int) {
	// The whole history is known in advance; the model gives the state at
	// any index a clone comes back at.
	const entries = 150
	start := time.Unix(1_700_000_000, 0)
	m := newModel()
	for i := range entries {
		m.add(m.next(randomOps(rng, 6), start.Add(time.Duration(i)*time.Second)))
	}
	var groups []int
	for n := 0; n < entries; {
		g := min(1+rng.IntN(5), entries-n)
		groups = append(groups, g)
		n += g
	}
	// The clock stands a minute after the last entry, so Trim, run between
	// commits, keeps only the last 20 or so indexes of history and 40 of log.
	now := start.Add((entries + 60) * time.Second)
	opts := func(fs vfs.FS) *kv.Options {
		return &kv.Options{FS: fs, Now: func() time.Time { return now }, HistoryDuration: 80 * time.Second, LogDuration: 100 * time.Second}
	}

	fs := vfs.NewCrashableMem()
	s, err := kv.Open("db", opts(fs))
	if err != nil {
		t.Fatal(err)
	}
	var points []crashPoint
	var committed argent.Index // durable: its Commit or SyncAndPublish returned
	var pending []argent.State // committed without sync, not yet synced
	crash := func() {
		pct := rng.IntN(101)
		points = append(points, crashPoint{
			fs:        fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))}),
			committed: committed,
			unsynced:  pct,
		})
	}
	// during runs fn in another goroutine and crashes while it runs, after
	// a random number of scheduler yields.
	during := func(fn func() error) {
		errc := make(chan error, 1)
		go func() { errc <- fn() }()
		for range rng.IntN(200) {
			runtime.Gosched()
		}
		crash()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	p := float64(clones) / float64(len(groups))
	i := 0
	for gi, g := range groups {
		w := s.NewWriter()
		for range g {
			e := &m.entries[i]
			got, err := w.Append(e.Ops, time.Unix(0, e.Time))
			if err != nil || got.Chain != e.Chain {
				w.Discard()
				t.Fatalf("Append %d: chain %x, %v", e.Index, got.Chain[:4], err)
			}
			i++
		}
		// Commit syncs and publishes. CommitNoSync does neither: the
		// group is durable once a SyncAndPublish of it (or of a later
		// group) returns, which happens at once or a few groups later.
		var sync func() error
		if rng.IntN(2) == 0 {
			sync = w.Commit
		} else {
			st, err := w.CommitNoSync()
			if err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				pending = append(pending, st)
				if rng.Float64() < p {
					crash() // between CommitNoSync and its sync
				}
				continue
			}
			sync = func() error { return s.SyncAndPublish(st) }
		}
		switch r := rng.Float64(); {
		case r < p/2:
			during(sync)
		case r < p:
			if err := sync(); err != nil {
				t.Fatal(err)
			}
			committed = argent.Index(i)
			crash()
		default:
			if err := sync(); err != nil {
				t.Fatal(err)
			}
		}
		committed = argent.Index(i)
		pending = pending[:0]
		if gi%3 == 0 {
			trim := func() error { _, err := s.Trim(); return err }
			if rng.Float64() < p/2 {
				during(trim)
			} else if err := trim(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(pending); n > 0 {
		if err := s.SyncAndPublish(pending[n-1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var recovered []string
	for i, p := range points {
		cs, err := kv.Open("db", opts(p.fs))
		if err != nil {
			t.Fatalf("crash %d (committed %d, %d%% unsynced): Open: %v", i, p.committed, p.unsynced, err)
		}
		st := cs.State()
		if st.Index < p.committed || st.Index > entries {
			_ = cs.Close()
			t.Fatalf("crash %d: store at index %d, but Commit of %d had returned", i, st.Index, p.committed)
		}
		// The model cut at the recovered index.
		at := st.Index
		mc := &model{states: m.states[:at+1], entries: m.entries[:at], chains: m.chains[:at+1], times: m.times[:at+1]}
		checkStore(t, cs, mc, 3)
		if at < entries {
			w := cs.NewWriter()
			if err := w.AppendEntry(&m.entries[at]); err != nil {
				w.Discard()
				_ = cs.Close()
				t.Fatalf("crash %d: AppendEntry %d after recovery: %v", i, at+1, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := cs.State(); got.Chain != m.chains[at+1] {
				t.Fatalf("crash %d: chain after the next entry = %x, want %x", i, got.Chain[:4], m.chains[at+1][:4])
			}
		}
		if err := cs.Close(); err != nil {
			t.Fatal(err)
		}
		recovered = append(recovered, fmt.Sprintf("%d>=%d", at, p.committed))
	}
	t.Logf("recovered>=committed: %v", recovered)
}
