package tests

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// TestGroup_FullDiskMember runs a three-member root group whose third
// member keeps its data directory on a small tmpfs with --min-free-disk,
// under writers that put unique keys at random members. Once that disk is
// filled below the floor, every member answers writes with 507
// insufficient_storage naming the third member within a few seconds, and
// says so in /v1/status (both checked against docs/openapi.yaml); no
// member's state moves while the disk stays full. Once the filler is
// removed, writes resume at every member. At the end every acknowledged put
// is on every member and no put refused with 507 is anywhere.
func TestGroup_FullDiskMember(t *testing.T) {
	skipShort(t)
	const (
		// A member's two Pebble databases preallocate about 110 MiB of
		// write-ahead log, and up to as much again once they moved on to
		// new logs: the disk leaves room for both above the floor.
		diskSize = 512 << 20
		floor    = 48 << 20
		writers  = 4
		reactMax = 5 * time.Second // from filling (or freeing) the disk to every member's new answer
	)
	g := cluster.NewGroup(t, 3, cluster.GroupOptions{})
	low := g.Members[2]
	disk, err := mountTmpfs(t, low, diskSize)
	if err != nil {
		t.Skipf("this test mounts a small disk, which needs root: %v", err)
	}
	low.Args = append(low.Args, "--min-free-disk", fmt.Sprint(floor))
	for _, m := range g.Members {
		m.Start()
	}
	for _, m := range g.Members {
		m.WaitReady(cluster.DefaultReadyTimeout)
	}
	g.WaitLeader(cluster.DefaultReadyTimeout)
	dumpOnFailure(t, g.Members...)
	clients := groupClients(t, g)
	lowID := g.ID(low)
	why := fmt.Sprintf("root group member %d (", lowID)

	var (
		mu      sync.Mutex
		acked   = map[string]argent.Index{}
		refused []string // 507: certainly not written
		errs    errSample
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	seed := testSeed(t)
	for w := range writers {
		wg.Go(func() {
			rng := newRand(seed, w)
			for n := 0; n < 100_000 && !stop.Load(); n++ {
				k := fmt.Sprintf("fd/%d/%06d", w, n)
				ctx, cancel := ctxTimeout(5 * time.Second)
				idx, err := clients[rng.IntN(len(clients))].Put(ctx, []byte(k), []byte(k))
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[k] = idx
				case statusOf(err) == http.StatusInsufficientStorage:
					refused = append(refused, k)
				default:
					errs.add(errClass(err), err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked), len(refused)
	}
	cluster.WaitFor(t, 10*time.Second, func() error {
		if n, _ := count(); n < 200 {
			return fmt.Errorf("%d puts acknowledged", n)
		}
		return nil
	})

	// Full: every member refuses, naming the member whose disk is low.
	undo, err := disk.fill(floor / 2)
	if err != nil {
		t.Fatalf("fill the disk of %s: %v", low.Name, err)
	}
	filled := time.Now()
	defer undo()
	var refuseAfter durations
	for i, c := range clients {
		cluster.WaitFor(t, 2*reactMax, func() error {
			ctx, cancel := ctxTimeout(5 * time.Second)
			defer cancel()
			_, err := c.Put(ctx, []byte("fd/probe"), []byte("x"))
			var e *client.Error
			if !errors.As(err, &e) || e.Status != http.StatusInsufficientStorage || e.Code != client.CodeInsufficientStorage || !strings.Contains(e.Message, why) {
				return fmt.Errorf("put at %s: %v", g.Members[i].Name, err)
			}
			return nil
		})
		refuseAfter = append(refuseAfter, time.Since(filled))
	}
	if worst := slices.Max(refuseAfter); worst > reactMax {
		t.Errorf("the last member refused writes %v after the disk filled; want within %v", worst, reactMax)
	}
	before := g.WaitConverged(10 * time.Second)
	for _, m := range g.Members {
		st, err := m.Status()
		if err != nil || !st.DiskFull || !slices.Equal(st.Group.DiskAlarms, []uint64{lowID}) {
			t.Errorf("status of %s during the alarm: %+v, %v; want disk_full and disk_alarms [%d]", m.Name, st, err, lowID)
		}
	}
	spec := loadSpec(t)
	hc := rawHTTP(t)
	spec.check(t, hc, apiCase{name: "put at a member during a disk alarm", addr: g.Members[0].Addr, method: "PUT", path: "/v1/kv/fd/spec",
		body: "v", route: "/v1/kv/{key}", params: map[string]string{"key": "fd/spec"}, status: http.StatusInsufficientStorage})
	spec.check(t, hc, apiCase{name: "txn at a member during a disk alarm", addr: low.Addr, method: "POST", path: "/v1/txn",
		body: `{"ops":[{"op":"delete","key":"fd/spec"}]}`, route: "/v1/txn", status: http.StatusInsufficientStorage})
	spec.check(t, hc, apiCase{name: "status of a member during a disk alarm", addr: g.Members[1].Addr, method: "GET", path: "/v1/status",
		route: "/v1/status", status: http.StatusOK})
	_, refusedBefore := count()
	time.Sleep(time.Second) // the writers keep trying
	if after := g.WaitConverged(10 * time.Second); after != before {
		t.Errorf("the group moved from index %d to %d while the disk was full", before, after)
	}
	if _, n := count(); n <= refusedBefore {
		t.Errorf("no put refused in the second after the alarm (%d refused in all)", n)
	}

	// Freed: writes resume at every member.
	undo()
	freed := time.Now()
	var resumeAfter durations
	for i, c := range clients {
		cluster.WaitFor(t, 2*reactMax, func() error {
			ctx, cancel := ctxTimeout(5 * time.Second)
			defer cancel()
			_, err := c.Put(ctx, []byte(fmt.Sprint("fd/after/", i)), []byte("x"))
			return err
		})
		resumeAfter = append(resumeAfter, time.Since(freed))
	}
	if worst := slices.Max(resumeAfter); worst > reactMax {
		t.Errorf("the last member took writes again %v after the disk was freed; want within %v", worst, reactMax)
	}
	ackedBefore, _ := count()
	cluster.WaitFor(t, 10*time.Second, func() error {
		if n, _ := count(); n < ackedBefore+100 {
			return fmt.Errorf("%d puts acknowledged since the disk was freed", n-ackedBefore)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()

	final := g.WaitConverged(30 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	var keys [][]byte
	for k := range acked {
		keys = append(keys, []byte(k))
	}
	for _, k := range refused {
		keys = append(keys, []byte(k))
	}
	for i, c := range clients {
		for chunk := range slices.Chunk(keys, 5000) {
			ctx, cancel := ctxTimeout(30 * time.Second)
			at, items, err := c.MGet(ctx, chunk, client.ReadOptions{MinIndex: argent.Index(final)})
			cancel()
			if err != nil {
				t.Fatalf("mget at %s: %v", g.Members[i].Name, err)
			}
			for _, it := range items {
				idx, ok := acked[it.Key]
				switch {
				case ok && (it.Absent || string(it.Value) != it.Key || it.ModIndex != idx):
					t.Fatalf("%s at %d: acknowledged put %s (index %d) reads %+v", g.Members[i].Name, at, it.Key, idx, it)
				case !ok && !it.Absent:
					t.Fatalf("%s at %d: put %s refused with 507 is present: %+v", g.Members[i].Name, at, it.Key, it)
				}
			}
		}
	}
	t.Logf("puts: %d acknowledged, %d refused with 507, other failures %v; every member refused %v after the fill (%v) and took writes %v after the filler went (%v); index %d during the alarm, %d at the end",
		len(acked), len(refused), &errs, slices.Max(refuseAfter).Round(time.Millisecond), refuseAfter, slices.Max(resumeAfter).Round(time.Millisecond), resumeAfter, before, final)
}
