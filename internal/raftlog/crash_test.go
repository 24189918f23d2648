package raftlog_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent/internal/raftlog"
)

// TestStorage_CrashSynced saves entries with sync and then without, and
// crashes losing everything not synced: the synced entries and hard state
// are there, the others are not, and the storage takes the next Save.
func TestStorage_CrashSynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, "raft", &raftlog.Options{FS: fs})
	synced := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(9))}
	if err := s.Save(synced, withData(index(1).terms(repeat(1, 10)...), 1000), nil, true); err != nil {
		t.Fatal(err)
	}
	want := stateOf(t, s)
	unsynced := &raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(15))}
	if err := s.Save(unsynced, withData(index(11).terms(repeat(2, 10)...), 1000), nil, false); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})

	c := mustOpen(t, "raft", &raftlog.Options{FS: crashed})
	checkState(t, "after the crash", stateOf(t, c), want)
	if err := c.Save(nil, index(11).terms(3), nil, true); err != nil {
		t.Fatalf("save after the crash: %v", err)
	}
	if last, _ := c.LastIndex(); last != 11 {
		t.Fatalf("LastIndex() = %d after the crash and one more entry, want 11", last)
	}
}

// TestStorage_Crash runs a member's writes (appends, some synced, some not,
// with truncations, snapshots and compactions) on a crashable file system
// while another goroutine takes crash clones at random moments, some in the
// middle of a write. Each clone must open at exactly the state after one
// write: at or after the last synced write that had returned when the clone
// was taken, and at or before the last write that had begun.
func TestStorage_Crash(t *testing.T) {
	runs, clones := 4, 12
	if raceEnabled {
		runs, clones = 2, 6
	}
	seed := testSeed(t)
	for run := range runs {
		t.Run(fmt.Sprint("Run", run), func(t *testing.T) {
			testCrash(t, rand.New(rand.NewPCG(seed, uint64(run))), clones)
		})
	}
}

// crashPoint is a crash clone with the range of writes it may hold.
type crashPoint struct {
	fs     *vfs.MemFS
	lo, hi int // states[lo..hi] are the states it may open at
	pct    int
}

func testCrash(t *testing.T, rng *rand.Rand, clones int) {
	const writes = 150
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, "raft", &raftlog.Options{FS: fs, TailBytes: 8 << 10})
	states := []state{stateOf(t, s)} // states[k]: after write k
	var synced, started atomic.Int64 // the last synced write that returned, the last write begun

	var mu sync.Mutex // guards points
	var points []crashPoint
	stop := make(chan struct{})
	var wg sync.WaitGroup
	crng := rand.New(rand.NewPCG(rng.Uint64(), 1))
	targets := make([]int, clones) // clone once write targets[n] has begun
	for n := range targets {
		targets[n] = 1 + crng.IntN(writes)
	}
	slices.Sort(targets)
	wg.Go(func() {
		for _, target := range targets {
			for started.Load() < int64(target) {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
			lo := int(synced.Load())
			pct := crng.IntN(101)
			c := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(crng.Uint64(), 2))})
			hi := int(started.Load())
			mu.Lock()
			points = append(points, crashPoint{fs: c, lo: lo, hi: hi, pct: pct})
			mu.Unlock()
		}
	})

	term := uint64(1)
	var ops []string // ops[k-1] describes write k
	for k := 1; k <= writes; k++ {
		started.Store(int64(k))
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		snap, _ := s.Snapshot()
		snapIndex := snap.GetMetadata().GetIndex()
		sync := rng.IntN(2) == 0
		var err error
		opName := "nothing"
		switch r := rng.IntN(100); {
		case r < 75:
			start := last + 1
			if rng.IntN(6) == 0 && last >= first {
				start = first + uint64(rng.IntN(int(last-first)+1)) // a new leader's entries replace some
				term++
			}
			ents := withData(index(start).terms(repeat(term, 1+rng.IntN(4))...), rng.IntN(2000))
			hs := &raftpb.HardState{Term: new(term), Vote: new(uint64(1)), Commit: new(start - 1)}
			err = s.Save(hs, ents, nil, sync)
			opName = "save " + fmtEntries(ents)
		case r < 85:
			sync = false
			if last >= first {
				err = s.Compact(first + uint64(rng.IntN(int(last-first)+1)))
				opName = "compact"
			}
		case r < 92:
			sync = false // unless there is a snapshot to make
			if i := max(first, snapIndex+1); i <= last {
				sync = true
				_, err = s.CreateSnapshot(i+uint64(rng.IntN(int(last-i)+1)), &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("meta"))
				opName = "create snapshot"
			}
		default:
			term++
			i := max(last, snapIndex) + 1 + uint64(rng.IntN(4))
			sent := &raftpb.Snapshot{Data: []byte("sent"), Metadata: &raftpb.SnapshotMetadata{
				Index: new(i), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
			err = s.Save(&raftpb.HardState{Term: new(term), Commit: new(i)}, nil, sent, sync)
			opName = fmt.Sprint("apply snapshot ", i)
		}
		if err != nil {
			t.Fatalf("write %d: %v", k, err)
		}
		states = append(states, stateOf(t, s))
		ops = append(ops, fmt.Sprintf("%d: sync=%v %s", k, sync, opName))
		if sync {
			synced.Store(int64(k))
		}
	}
	close(stop)
	wg.Wait()

	for n, p := range points {
		c, err := raftlog.OpenWith("raft", &raftlog.Options{FS: p.fs})
		if err != nil {
			t.Fatalf("clone %d (writes %d..%d, %d%% of unsynced data): open: %v", n, p.lo, p.hi, p.pct, err)
		}
		got := stateOf(t, c)
		if !slices.ContainsFunc(states[p.lo:p.hi+1], func(st state) bool { return diffState(got, st) == "" }) {
			t.Fatalf("clone %d (%d%% of unsynced data) matches none of the states after writes %d..%d %q; against %d: %s",
				n, p.pct, p.lo, p.hi, ops[p.lo:p.hi], p.lo, diffState(got, states[p.lo]))
		}
		last, _ := c.LastIndex()
		if err := c.Save(nil, index(last+1).terms(term+1), nil, true); err != nil {
			t.Fatalf("clone %d: save after the crash: %v", n, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d crash clones checked", len(points))
}
