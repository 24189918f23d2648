package proxycache_test

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argent-kv/argent/internal/proxycache"
)

// diskUsage is what a cache directory holds, by kind of file.
type diskUsage struct{ wal, sst, other int64 }

func (u diskUsage) total() int64 { return u.wal + u.sst + u.other }

func (u diskUsage) String() string {
	return fmt.Sprintf("%s (sstables %s, WAL %s, other %s)", mib(u.total()), mib(u.sst), mib(u.wal), mib(u.other))
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// dirUsage sums the sizes of the files in dir.
func dirUsage(t testing.TB, dir string) diskUsage {
	t.Helper()
	var u diskUsage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted by Pebble meanwhile
		}
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".log"):
			u.wal += info.Size()
		case strings.HasSuffix(p, ".sst"):
			u.sst += info.Size()
		default:
			u.other += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// bigDisk runs TestCache_DiskOverhead with a 64 MiB budget too (640 MiB
// of admissions, about 15 s).
var bigDisk = flag.Bool("proxycache.bigdisk", false, "measure the disk overhead with a 64 MiB budget too")

// TestCache_DiskOverhead admits ten times the budget's worth of distinct
// keys (random, incompressible values of 100 B to 2 KiB), as fast as it can,
// on the OS file system, measuring the directory every 1% of the run, and
// once more after a flush and a full compaction.
//
// The overhead over the budget has three parts:
//   - the WAL: up to four memtables' worth (the live WAL, the one of the
//     memtable being flushed and the ones Pebble keeps to recycle);
//   - sstables holding deleted and overwritten entries until compactions
//     drop them. Evictions delete keys all over the key space, so this
//     churn is the worst case for an LSM, and admitting as fast as possible
//     lets compactions fall behind: about 1.4x to 1.6x the budget on
//     average over the run, 2.3x to 3.4x at the peak (more on a loaded
//     machine); within 1% of the budget after a full compaction, which
//     shows the per-entry overhead is right;
//   - a few KiB of manifest and options.
func TestCache_DiskOverhead(t *testing.T) {
	tests := []struct {
		name     string
		budget   int64
		memtable int64 // 0: the default (Budget/16, 256 KiB to 4 MiB)
	}{
		{name: "Budget4MiB", budget: 4 << 20},
		{name: "Budget4MiBMemtable4MiB", budget: 4 << 20, memtable: 4 << 20},
		{name: "Budget64MiB", budget: 64 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.budget > 4<<20 && !*bigDisk {
				t.Skip("takes 15 s: run with -proxycache.bigdisk")
			}
			budget, memtable := tt.budget, tt.memtable
			if raceEnabled || testing.Short() {
				budget, memtable = budget/4, memtable/4 // the race detector makes Pebble ten times slower
			}
			testDiskOverhead(t, budget, memtable)
		})
	}
}

func testDiskOverhead(t *testing.T, budget, memtable int64) {
	const factor = 10
	dir := t.TempDir()
	c := mustOpen(t, dir, proxycache.Options{Budget: budget, MemTableSize: memtable})
	if memtable == 0 {
		memtable = min(max(budget/16, 256<<10), 4<<20)
	}
	if err := c.Reset(proxycache.State{Index: 1}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var admitted int64
	var peak, sum diskUsage
	samples := 0
	val := make([]byte, 2048)
	next := int64(0)
	for i := 0; admitted < budget*factor; i++ {
		n := 100 + rng.IntN(1948)
		for j := range val[:n] {
			val[j] = byte(rng.Uint32())
		}
		key := fmt.Appendf(nil, "key/%08d", i)
		if _, err := c.Admit(key, proxycache.Entry{Present: true, Value: val[:n], ModIndex: 1}, 1); err != nil {
			t.Fatal(err)
		}
		admitted += int64(len(key) + n)
		if admitted >= next {
			u := dirUsage(t, dir)
			if u.total() > peak.total() {
				peak = u
			}
			sum.wal, sum.sst, sum.other = sum.wal+u.wal, sum.sst+u.sst, sum.other+u.other
			samples++
			next += budget * factor / 100
		}
	}
	if err := c.EvictNow(); err != nil {
		t.Fatal(err)
	}
	weight, keys := storedWeight(t, c)
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	c.WaitForCleaning()
	compacted := dirUsage(t, dir)
	avg := diskUsage{sum.wal / int64(samples), sum.sst / int64(samples), sum.other / int64(samples)}
	x := func(n int64) float64 { return float64(n) / float64(budget) }
	t.Logf("budget %s, memtable %s, admitted %s; stored %d keys weighing %s", mib(budget), mib(memtable), mib(admitted), keys, mib(weight))
	t.Logf("peak of %d samples: %s = budget x %.2f", samples, peak, x(peak.total()))
	t.Logf("mean of the samples: %s = budget x %.2f", avg, x(avg.total()))
	t.Logf("after flush+compaction: %s = budget x %.2f; sstables = budget x %.3f", compacted, x(compacted.total()), x(compacted.sst))
	if weight > budget {
		t.Errorf("stored weight %d over the budget %d", weight, budget)
	}
	// The stated overhead, with a margin against the timing of compactions.
	if limit := 4*memtable + memtable/4; peak.wal > limit || compacted.wal > limit {
		t.Errorf("WAL of %s (peak) and %s (compacted), over four memtables", mib(peak.wal), mib(compacted.wal))
	}
	if limit := 4*budget + 4*memtable; peak.sst > limit {
		t.Errorf("sstables of %s at the peak, over 4x the budget and four memtables (%s)", mib(peak.sst), mib(limit))
	}
	if limit := 2*budget + 4*memtable; avg.sst > limit {
		t.Errorf("sstables of %s on average, over 2x the budget and four memtables (%s)", mib(avg.sst), mib(limit))
	}
	if limit := budget + budget/50; compacted.sst > limit {
		t.Errorf("sstables of %s after compaction, over the budget plus 2%%", mib(compacted.sst))
	}
	if limit := int64(256 << 10); peak.other > limit || compacted.other > limit {
		t.Errorf("other files of %s, over 256 KiB", mib(max(peak.other, compacted.other)))
	}
}
