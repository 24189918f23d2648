package group_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/group"
)

// The floor of the disk alarm tests; lowDisk takes a member's reported free
// space just under it.
const testFloor = 1 << 20

// alarmConfig is a test group's configuration with a floor and a quick
// disk check, and with the compaction settings of cfg.
func alarmConfig(cfg group.Config) group.Config {
	cfg.MinFreeDisk, cfg.DiskCheckInterval = testFloor, 10*time.Millisecond
	return cfg
}

func lowDisk(m *member)  { m.free.Store(testFloor - 1) }
func freeDisk(m *member) { m.free.Store(1 << 40) }

// waitAlarms waits until every running member applied the raised alarms
// want (nil: none).
func (tg *testGroup) waitAlarms(want ...uint64) {
	tg.t.Helper()
	for _, m := range tg.members {
		if m.cancel == nil {
			continue
		}
		waitFor(tg.t, func() bool { return slices.Equal(m.g.Status().DiskAlarms, want) },
			"member %d to see the disk alarms %v (it sees %v)", m.id, want, m.g.Status().DiskAlarms)
	}
}

// checkRefused writes b at m and checks that the write is refused for the
// disk alarms of want, as the API answers it: 507 insufficient_storage,
// naming the members.
func checkRefused(t *testing.T, m *member, b argent.Batch, want ...uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := m.g.Write(ctx, b)
	var ae *group.DiskAlarmError
	if !errors.As(err, &ae) || !errors.Is(err, group.ErrDiskAlarm) || !errors.Is(err, argent.ErrUnavailable) {
		t.Fatalf("write at member %d while alarms %v are raised: index %d, %v; want a *group.DiskAlarmError", m.id, want, idx, err)
	}
	var got []uint64
	for _, p := range ae.Members {
		got = append(got, p.ID)
		if p.Addr != fmt.Sprintf("m%d", p.ID) || !strings.Contains(err.Error(), fmt.Sprintf("%d (m%d)", p.ID, p.ID)) {
			t.Errorf("refusal %q does not name member %d at m%d", err, p.ID, p.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("refusal names members %v, want %v", got, want)
	}
	if status, body := apiwire.NewErrorBody(err); status != http.StatusInsufficientStorage || body.Error.Code != apiwire.CodeInsufficientStorage {
		t.Errorf("API answer %d %q, want 507 %q", status, body.Error.Code, apiwire.CodeInsufficientStorage)
	}
}

// writeAt writes one key at m and fails the test if it is not acknowledged.
func writeAt(t *testing.T, m *member, k string) argent.Index {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := m.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(k, k)}})
	if err != nil {
		t.Fatalf("write %s at member %d: %v", k, m.id, err)
	}
	return idx
}

// TestGroup_DiskAlarmRefusesWrites lowers the free space one member's
// probe reports under the floor (the leader, then a follower): every member
// learns of its alarm and refuses writes of every kind with 507, nothing is
// written anywhere, linearizable reads and a leadership transfer still
// work, and once the space returns the alarm clears and writes resume.
func TestGroup_DiskAlarmRefusesWrites(t *testing.T) {
	tests := []struct {
		name string
		low  func(tg *testGroup, l *member) *member
	}{
		{name: "Leader", low: func(_ *testGroup, l *member) *member { return l }},
		{name: "Follower", low: func(tg *testGroup, l *member) *member { return tg.followers(l)[1] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGroup(t, 3, alarmConfig(group.Config{}))
			l := tg.leader()
			var idx argent.Index
			for i := range 10 {
				idx = writeAt(t, l, fmt.Sprint("before/", i))
			}
			before := tg.converged(idx)
			low := tc.low(tg, l)
			lowDisk(low)
			tg.waitAlarms(low.id)

			batches := []argent.Batch{
				{Ops: []argent.Op{put("during", "x")}},
				{Conditions: []argent.Condition{{Key: []byte("during")}}, Ops: []argent.Op{put("during", "y")}},
				{Ops: []argent.Op{{Type: argent.OpDeletePrefix, Key: []byte("before/")}}},
			}
			for _, m := range tg.members {
				for _, b := range batches {
					checkRefused(t, m, b, low.id)
				}
				done := make(chan error, 1)
				if !m.g.TrySubmit(batches[0], func(_ argent.Index, err error) { done <- err }) {
					t.Fatalf("member %d: TrySubmit found the queue full", m.id)
				}
				if err := <-done; !errors.Is(err, group.ErrDiskAlarm) {
					t.Fatalf("member %d: TrySubmit answered %v, want ErrDiskAlarm", m.id, err)
				}
			}
			ctx := context.Background()
			for _, m := range tg.members {
				if st := m.store.State(); st != before {
					t.Fatalf("member %d at %+v after refused writes, was %+v", m.id, st, before)
				}
				if at, err := m.g.ReadIndex(ctx); err != nil || at != before.Index {
					t.Fatalf("member %d: linearizable read index %d, %v during the alarm; want %d", m.id, at, err, before.Index)
				}
			}
			to := tg.followers(l)[0]
			if err := low.g.TransferLeader(ctx, to.id); err != nil {
				t.Fatalf("leadership transfer during the alarm: %v", err)
			}

			freeDisk(low)
			tg.waitAlarms()
			for _, m := range tg.members {
				idx = writeAt(t, m, fmt.Sprint("after/", m.id))
			}
			if st := tg.converged(idx); st.Index != before.Index+3 {
				t.Fatalf("index %d after three writes from %d: the refused writes took indexes", st.Index, before.Index)
			}
			if _, err := l.store.Get(ctx, []byte("during"), idx); !errors.Is(err, argent.ErrNotFound) {
				t.Fatalf("a refused write is in the store: %v", err)
			}
		})
	}
}

// TestGroup_DiskAlarmSurvivesRestart raises a follower's alarm and waits
// until every member's Raft snapshot is past the alarm's entry, so that a
// restart does not replay it: a restarted member still knows the alarm
// from its record and refuses writes, the member whose disk is low keeps
// its alarm across its own restart and while it is down, and clears it
// when it comes back with space.
func TestGroup_DiskAlarmSurvivesRestart(t *testing.T) {
	tg := newTestGroup(t, 3, alarmConfig(group.Config{LogKeep: 5, CompactInterval: 20 * time.Millisecond}))
	l := tg.leader()
	for i := range 20 {
		writeAt(t, l, fmt.Sprint("k", i%4))
	}
	low, other := tg.followers(l)[0], tg.followers(l)[1]
	lowDisk(low)
	tg.waitAlarms(low.id)
	at := l.g.Status().Applied
	for _, m := range tg.members {
		waitFor(t, func() bool {
			snap, _ := m.log.Snapshot()
			return snap.GetMetadata().GetIndex() >= at
		}, "member %d's raft snapshot to reach %d", m.id, at)
	}
	state := l.store.State()

	tg.stop(other)
	tg.start(other)
	if got := other.g.Status().DiskAlarms; !slices.Equal(got, []uint64{low.id}) {
		t.Fatalf("restarted member %d sees alarms %v before any entry; want [%d]", other.id, got, low.id)
	}
	tg.leader()
	checkRefused(t, other, argent.Batch{Ops: []argent.Op{put("x", "1")}}, low.id)

	tg.stop(low)
	tg.start(low)
	tg.waitAlarms(low.id)
	checkRefused(t, l, argent.Batch{Ops: []argent.Op{put("x", "1")}}, low.id)

	// Down, its alarm stays: the others cannot know its disk.
	tg.stop(low)
	freeDisk(low)
	time.Sleep(20 * tg.cfg.DiskCheckInterval)
	tg.waitAlarms(low.id)
	checkRefused(t, other, argent.Batch{Ops: []argent.Op{put("x", "1")}}, low.id)
	if st := l.store.State(); st != state {
		t.Fatalf("state %+v after refused writes, was %+v", st, state)
	}
	tg.start(low)
	tg.waitAlarms()
	tg.converged(writeAt(t, other, "x"))
}

// TestGroup_DiskAlarmInSnapshot raises an alarm while a member is down and
// the log is compacted past it: the member catches up by snapshot, learns
// of the alarm from it (it never sees the alarm's entry), and refuses
// writes until the alarm clears.
func TestGroup_DiskAlarmInSnapshot(t *testing.T) {
	tg := newTestGroup(t, 3, alarmConfig(group.Config{LogKeep: 10, CompactInterval: 20 * time.Millisecond}))
	l := tg.leader()
	away, low := tg.followers(l)[0], tg.followers(l)[1]
	writeAt(t, l, "first")
	tg.stop(away)
	for i := range 50 {
		writeAt(t, l, fmt.Sprint("k", i%5))
	}
	lowDisk(low)
	tg.waitAlarms(low.id)
	at := l.g.Status().Applied
	waitFor(t, func() bool {
		snap, _ := l.log.Snapshot()
		first, _ := l.log.FirstIndex()
		last, _ := away.log.LastIndex()
		return snap.GetMetadata().GetIndex() >= at && first > last+1
	}, "the leader's log to be compacted past the alarm and the stopped member's log")

	tg.start(away)
	tg.waitAlarms(low.id)
	if snap, _ := away.log.Snapshot(); snap.GetMetadata().GetIndex() < at {
		t.Fatalf("member %d caught up without a snapshot past the alarm (snapshot at %d, alarm applied by %d)", away.id, snap.GetMetadata().GetIndex(), at)
	}
	checkRefused(t, away, argent.Batch{Ops: []argent.Op{put("x", "1")}}, low.id)

	freeDisk(low)
	tg.waitAlarms()
	tg.converged(writeAt(t, away, "x"))
}

// TestGroup_DiskAlarmDroppedWithRemoval removes a member whose alarm is
// raised and which is down: the membership change goes through during the
// alarm, drops the alarm, and the others take writes again.
func TestGroup_DiskAlarmDroppedWithRemoval(t *testing.T) {
	tg := newTestGroup(t, 3, alarmConfig(group.Config{}))
	l := tg.leader()
	low := tg.followers(l)[0]
	lowDisk(low)
	tg.waitAlarms(low.id)
	tg.stop(low)
	checkRefused(t, l, argent.Batch{Ops: []argent.Op{put("x", "1")}}, low.id)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.g.RemoveMember(ctx, low.id); err != nil {
		t.Fatalf("remove member %d during its alarm: %v", low.id, err)
	}
	delete(tg.members, low.id)
	_ = low.store.Close()
	tg.waitAlarms()
	for _, m := range tg.members {
		tg.converged(writeAt(t, m, fmt.Sprint("after/", m.id)))
	}
}

// Two members' alarms: both are named, and writes resume only once both
// cleared.
func TestGroup_DiskAlarmTwoMembers(t *testing.T) {
	tg := newTestGroup(t, 3, alarmConfig(group.Config{}))
	l := tg.leader()
	f := tg.followers(l)
	lowDisk(f[0])
	lowDisk(f[1])
	want := []uint64{f[0].id, f[1].id}
	slices.Sort(want)
	tg.waitAlarms(want...)
	checkRefused(t, l, argent.Batch{Ops: []argent.Op{put("x", "1")}}, want...)
	freeDisk(f[0])
	tg.waitAlarms(f[1].id)
	checkRefused(t, l, argent.Batch{Ops: []argent.Op{put("x", "1")}}, f[1].id)
	freeDisk(f[1])
	tg.waitAlarms()
	tg.converged(writeAt(t, l, "x"))
}
