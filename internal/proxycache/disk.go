package proxycache

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// diskLimit is the disk usage above which Admit refuses keys that are not
// cached (see the package doc, section Disk): the budget, a fifth of it
// for entries deleted but not yet compacted away, the WAL (Pebble keeps up
// to four memtables' worth: the live log, the one of the memtable being
// flushed, and recycled ones) and 1 MiB for the manifest, the options file
// and the fixed costs of small sstables.
func diskLimit(o Options) uint64 {
	return uint64(o.Budget) + uint64(o.Budget)/5 + 4*uint64(o.MemTableSize) + 1<<20
}

// pebbleOptions shapes Pebble for a small database whose deletes fall all
// over the key space.
func pebbleOptions(o Options, bc *pebble.Cache, gate *diskGate) *pebble.Options {
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              bc,
		Logger:             o.Logger,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       uint64(o.MemTableSize),
		EventListener:      gate.listener(),
		// A compaction's output is on disk next to its input until it
		// ends, so no compaction may be large next to the budget. The
		// tables flushed from memtables (L0) span the key space, since
		// admissions and evictions hit keys anywhere, so a compaction out
		// of L0 takes all of L0 and all of the base level below it: both
		// must stay small. The base level holds a thirty-second of the
		// budget, and L0 is compacted at 8 tables or 4 sublevels.
		// Pebble's default of 500 tables let L0 grow to half the budget
		// when keys arrive in order (then L0 tables do not overlap and
		// stay in one sublevel).
		LBaseMaxBytes:             min(max(o.Budget/32, 64<<10), 64<<20),
		L0CompactionFileThreshold: 8,
		// Compactions add an edit to the manifest each, thousands under
		// churn: start a new manifest past 64 KiB (Pebble does so only
		// once the edits outweigh a snapshot of the tables), not 128 MiB.
		MaxManifestFileSize: 64 << 10,
	}
	// Small tables, the same size at every level (Pebble doubles them at
	// each level by default): a compaction into the bottom level rewrites
	// the bottom tables its input overlaps, and Pebble grows a compaction
	// up to 25 tables.
	for i := range po.TargetFileSizes {
		po.TargetFileSizes[i] = min(max(o.Budget/256, 64<<10), 4<<20)
	}
	return po
}

// diskGate holds the database's files under diskLimit. Admit asks it
// before it writes a key that is not cached: while the files take more
// than the limit, Admit refuses, so that no new data arrives until
// compactions have dropped what evictions deleted. When the files are
// over the limit and Pebble has no compaction to run (deleted entries
// wait in the bottom level under tombstones that no compaction score
// reaches), the gate's reclaimer compacts slices of the key space, one at
// a time, until the files fit again.
//
// Reading Pebble's disk usage takes its lock and sums its levels (a few
// microseconds), so the gate rereads it only after step bytes were written
// or after Pebble reported a change: a flush, a compaction, a deleted file.
type diskGate struct {
	limit atomic.Uint64
	step  uint64
	slice uint64 // bottom-level bytes the reclaimer compacts at once

	stale   atomic.Bool   // Pebble reported a change since the last read
	kick    chan struct{} // wakes the reclaimer (one token)
	changed chan struct{} // a flush, compaction or file deletion ended (one token)

	running struct {
		sync.Mutex
		jobs  map[int]uint64 // compaction job -> its input bytes
		bytes uint64
	}

	// Under Cache.mu:
	usage   uint64 // as of the last read
	written uint64 // bytes written since then
	fresh   bool   // usage was read at least once
}

func newDiskGate(o Options) *diskGate {
	g := &diskGate{
		step:    uint64(max(o.Budget/128, 64<<10)),
		slice:   uint64(max(o.Budget/16, 1<<20)),
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
	}
	g.limit.Store(diskLimit(o))
	g.running.jobs = make(map[int]uint64)
	return g
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// listener returns the Pebble event hooks the gate follows. Pebble may
// call them under its own locks: they only touch the gate.
func (g *diskGate) listener() *pebble.EventListener {
	changed := func() {
		g.stale.Store(true)
		notify(g.changed)
	}
	return &pebble.EventListener{
		FlushEnd: func(pebble.FlushInfo) { changed() },
		CompactionBegin: func(info pebble.CompactionInfo) {
			var n uint64
			for _, l := range info.Input {
				for _, t := range l.Tables {
					n += t.Size
				}
			}
			g.running.Lock()
			g.running.jobs[info.JobID] = n
			g.running.bytes += n
			g.running.Unlock()
			g.stale.Store(true)
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			g.running.Lock()
			g.running.bytes -= g.running.jobs[info.JobID]
			delete(g.running.jobs, info.JobID)
			g.running.Unlock()
			changed()
		},
		TableDeleted: func(pebble.TableDeleteInfo) { changed() },
		WALDeleted:   func(pebble.WALDeleteInfo) { changed() },
	}
}

// measure returns what the gate compares with its limit: Pebble's files,
// with the compactions under way counted at their whole output (their input
// size), not just what they wrote so far, and with room for the next
// compaction out of L0, which may rewrite all of L0 and the base level.
func (g *diskGate) measure(m *pebble.Metrics) uint64 {
	g.running.Lock()
	running := g.running.bytes
	g.running.Unlock()
	u := m.DiskSpaceUsage()
	u = u - min(uint64(max(m.Compact.InProgressBytes, 0)), u) + running
	u += uint64(max(m.Levels[0].TablesSize, 0))
	for l := 1; l < len(m.Levels)-1; l++ {
		if m.Levels[l].TablesCount > 0 {
			u += uint64(max(m.Levels[l].TablesSize, 0))
			break
		}
	}
	return u
}

// wrote records n bytes written to Pebble. Under Cache.mu.
func (g *diskGate) wrote(n int) { g.written += uint64(n) }

// over reports whether the database is over the limit, and wakes the
// reclaimer if it is. Under Cache.mu.
func (g *diskGate) over(db *pebble.DB) bool {
	if !g.fresh || g.written >= g.step || g.stale.Swap(false) {
		g.usage = g.measure(db.Metrics())
		g.written = 0
		g.fresh = true
	}
	if g.usage > g.limit.Load() {
		notify(g.kick)
		return true
	}
	return false
}

// reclaimLoop runs until done is closed. Woken by a refused admission, it
// waits while Pebble flushes or compacts; when Pebble is idle and the files
// are still over the limit, it compacts the next slice of the key space.
// A whole round of slices that does not bring the files under the limit
// means that what is left is not garbage it can drop (live entries over a
// limit set lower than the budget, or files an open iterator holds): it
// then rests, a second at first, twice as long after each such round, up
// to a minute.
func (g *diskGate) reclaimLoop(ctx context.Context, db *pebble.DB, done <-chan struct{}) {
	var cursor []byte // where the next slice starts; nil: at the beginning
	rest := time.Second
	for {
		select {
		case <-done:
			return
		case <-g.kick:
		}
		var swept uint64 // bottom-level bytes compacted since the kick
		for {
			m := db.Metrics()
			if g.measure(m) <= g.limit.Load() {
				rest = time.Second
				break
			}
			if m.Compact.NumInProgress > 0 || m.Flush.NumInProgress > 0 {
				select { // Pebble is at work: see where it leaves the files
				case <-done:
					return
				case <-g.changed:
				}
				continue
			}
			if swept > uint64(max(m.Levels[len(m.Levels)-1].TablesSize, 0))+g.slice {
				t := time.NewTimer(rest)
				select {
				case <-done:
					t.Stop()
					return
				case <-t.C:
				}
				rest = min(2*rest, time.Minute)
				break
			}
			n, err := g.compactSlice(ctx, db, &cursor)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				break // Pebble's own trouble: the next refusal tries again
			}
			swept += n
			g.stale.Store(true)
		}
	}
}

// compactSlice compacts the key range of the bottom-level tables from
// *cursor on, about g.slice bytes of them, together with everything above
// them, so that the entries deleted in that range are dropped, and moves
// *cursor past it. It returns the bytes of the bottom-level tables it
// covered.
func (g *diskGate) compactSlice(ctx context.Context, db *pebble.DB, cursor *[]byte) (uint64, error) {
	levels, err := db.SSTables()
	if err != nil {
		return 0, err
	}
	bottom := levels[len(levels)-1]
	if len(bottom) == 0 {
		return 0, db.Compact(ctx, []byte{0}, []byte{0xff}, false)
	}
	i := 0
	for *cursor != nil && i < len(bottom) && bytes.Compare(bottom[i].Smallest.UserKey, *cursor) < 0 {
		i++
	}
	if i == len(bottom) {
		i = 0
	}
	j, n := i, uint64(0)
	for j < len(bottom) && (j == i || n < g.slice) {
		n += bottom[j].Size
		j++
	}
	// The first slice reaches down to the smallest key and the last one up
	// to the largest, so that the tables above the bottom level that
	// overlap no bottom table are compacted too.
	start, end := bottom[i].Smallest.UserKey, bottom[j-1].Largest.UserKey
	if i == 0 {
		start = []byte{0}
	}
	*cursor = nil
	if j == len(bottom) {
		end = []byte{0xff}
	} else {
		*cursor = bytes.Clone(bottom[j].Smallest.UserKey)
	}
	if bytes.Compare(start, end) >= 0 {
		end = append(bytes.Clone(start), 0)
	}
	return n, db.Compact(ctx, start, end, false)
}
