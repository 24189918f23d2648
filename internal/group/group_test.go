package group_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
	"github.com/argent-kv/argent/internal/raftlog"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// memNet connects the members of a test group in memory; a member can be
// cut off from the others.
type memNet struct {
	mu      sync.Mutex
	members map[uint64]*group.Group
	cut     map[uint64]bool
}

func (n *memNet) transport(id uint64) *memTransport { return &memTransport{net: n, id: id} }

func (n *memNet) setCut(id uint64, cut bool) {
	n.mu.Lock()
	n.cut[id] = cut
	n.mu.Unlock()
}

type memTransport struct {
	net *memNet
	id  uint64
}

func (t *memTransport) Send(msgs []*raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		to := t.net.members[m.GetTo()]
		if to == nil || t.net.cut[m.GetTo()] || t.net.cut[m.GetFrom()] {
			continue
		}
		to.Step(proto.Clone(m).(*raftpb.Message))
	}
}
func (t *memTransport) SetPeer(uint64, string) {}
func (t *memTransport) RemovePeer(uint64)      {}

type member struct {
	id     uint64
	fs     vfs.FS // the store's and the raft log's; nil: the OS's
	join   bool   // started empty, to be added to the running group
	g      *group.Group
	store  *kv.Store
	logDir string
	log    *raftlog.Storage
	cancel context.CancelFunc
	done   chan error
	// free is what the member's free-space probe reports (see
	// testGroup.cfg.MinFreeDisk); plenty unless a test lowers it.
	free atomic.Uint64
}

type testGroup struct {
	t       *testing.T
	cfg     group.Config // LogKeep, CompactInterval, MinFreeDisk and DiskCheckInterval
	net     *memNet
	peers   []group.Peer
	members map[uint64]*member
}

func newTestGroup(t *testing.T, n int, cfg ...group.Config) *testGroup {
	t.Helper()
	tg := &testGroup{t: t, net: &memNet{members: map[uint64]*group.Group{}, cut: map[uint64]bool{}},
		members: map[uint64]*member{}}
	if len(cfg) > 0 {
		tg.cfg = cfg[0]
	}
	for i := range n {
		tg.peers = append(tg.peers, group.Peer{ID: uint64(i + 1), Addr: fmt.Sprintf("m%d", i+1)})
	}
	for _, p := range tg.peers {
		tg.addMember(p.ID, false)
	}
	t.Cleanup(func() {
		for _, m := range tg.members {
			tg.stop(m)
			_ = m.store.Close()
		}
	})
	return tg
}

// addMember starts member id on a new store and log; join: it waits to be
// added to the running group instead of starting one.
func (tg *testGroup) addMember(id uint64, join bool) *member {
	tg.t.Helper()
	store, err := kv.Open(tg.t.TempDir(), nil)
	if err != nil {
		tg.t.Fatal(err)
	}
	m := &member{id: id, store: store, logDir: tg.t.TempDir(), join: join}
	m.free.Store(1 << 40)
	tg.members[id] = m
	tg.start(m)
	return m
}

func (tg *testGroup) start(m *member) {
	tg.t.Helper()
	lg, err := raftlog.Open(m.logDir, m.fs, nil)
	if err != nil {
		tg.t.Fatal(err)
	}
	m.log = lg
	g, err := group.New(group.Config{ID: m.id, Peers: tg.peers, Store: m.store, Log: m.log,
		Transport: tg.net.transport(m.id), Tick: 10 * time.Millisecond, WriteTimeout: 2 * time.Second,
		LogKeep: tg.cfg.LogKeep, CompactInterval: tg.cfg.CompactInterval, Join: m.join,
		MinFreeDisk: tg.cfg.MinFreeDisk, DiskCheckInterval: tg.cfg.DiskCheckInterval,
		FreeSpace:    func() (uint64, error) { return m.free.Load(), nil },
		LoadSnapshot: func(ctx context.Context, addr string) error { return tg.copyStore(m, addr) }})
	if err != nil {
		tg.t.Fatal(err)
	}
	m.g = g
	tg.net.mu.Lock()
	tg.net.members[m.id] = g
	tg.net.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- g.Run(ctx) }()
}

func (tg *testGroup) stop(m *member) {
	if m.cancel == nil {
		return
	}
	tg.net.mu.Lock()
	delete(tg.net.members, m.id)
	tg.net.mu.Unlock()
	m.cancel()
	if err := <-m.done; err != nil {
		tg.t.Errorf("member %d: Run: %v", m.id, err)
	}
	if err := m.log.Close(); err != nil {
		tg.t.Errorf("member %d: close raft log: %v", m.id, err)
	}
	m.cancel = nil
}

// copyStore loads m's store from the member at addr, as a snapshot
// transfer between members would.
func (tg *testGroup) copyStore(m *member, addr string) error {
	var from *member
	for _, o := range tg.members {
		if fmt.Sprintf("m%d", o.id) == addr {
			from = o
		}
	}
	if from == nil {
		return fmt.Errorf("no member at %s", addr)
	}
	sn, err := from.store.NewSnapshot()
	if err != nil {
		return err
	}
	defer sn.Close()
	res, err := m.store.BeginRestore(sn.Dataset, sn.State)
	if err != nil {
		return err
	}
	res.SetSource(sn.Source)
	if err := sn.Records(nil, res.Add); err != nil {
		res.Abort()
		return err
	}
	return res.Finish(res.Records())
}

// leader waits until the running members agree on a leader, and returns it.
func (tg *testGroup) leader() *member {
	tg.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, m := range tg.members {
			if m.cancel == nil || tg.net.cut[m.id] {
				continue
			}
			l := m.g.Status().Leader
			if lead == 0 {
				lead = l
			}
			agree = agree && l != 0 && l == lead
		}
		if agree && lead != 0 && tg.members[lead].cancel != nil && !tg.net.cut[lead] {
			return tg.members[lead]
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg.t.Fatal("no leader elected within 10s")
	return nil
}

// followers returns the members other than l, by ID.
func (tg *testGroup) followers(l *member) []*member {
	var out []*member
	for _, id := range slices.Sorted(maps.Keys(tg.members)) {
		if m := tg.members[id]; m != l {
			out = append(out, m)
		}
	}
	return out
}

// converged waits until every running member applied the same state, at
// least want, and returns it.
func (tg *testGroup) converged(want argent.Index) argent.State {
	tg.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var first *argent.State
		same := true
		for _, m := range tg.members {
			if m.cancel == nil {
				continue
			}
			st := m.store.State()
			if first == nil {
				first = &st
			}
			same = same && st == *first && st.Index >= want
		}
		if same {
			return *first
		}
		if time.Now().After(deadline) {
			for _, m := range tg.members {
				tg.t.Logf("member %d: state %d, source %d, raft %+v", m.id, m.store.State().Index, m.store.Source(), m.g.Status())
			}
			tg.t.Fatalf("members did not converge at index >= %d", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func put(k, v string) argent.Op {
	return argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)}
}

func TestGroup_WritesAtEveryMember(t *testing.T) {
	tg := newTestGroup(t, 3)
	tg.leader()
	ctx := context.Background()
	const perMember = 50
	var wg sync.WaitGroup
	indexes := make(chan argent.Index, 3*perMember)
	for _, m := range tg.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perMember {
				k := fmt.Sprintf("m%d/%d", m.id, i)
				idx, err := m.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(k, k)}})
				if err != nil {
					t.Errorf("write %s at member %d: %v", k, m.id, err)
					return
				}
				indexes <- idx
			}
		}()
	}
	wg.Wait()
	close(indexes)
	var top argent.Index
	for idx := range indexes {
		top = max(top, idx)
	}
	st := tg.converged(top)
	if st.Index > 3*perMember {
		t.Fatalf("index %d after %d single-batch writes: more indexes than batches", st.Index, 3*perMember)
	}
	var dataset argent.DatasetID
	for _, m := range tg.members {
		if m.store.Dataset().IsZero() {
			t.Fatalf("member %d has no dataset ID", m.id)
		}
		if dataset.IsZero() {
			dataset = m.store.Dataset()
		} else if m.store.Dataset() != dataset {
			t.Fatalf("member %d has dataset %s, another %s", m.id, m.store.Dataset(), dataset)
		}
		for _, other := range tg.members {
			for i := range perMember {
				k := fmt.Sprintf("m%d/%d", other.id, i)
				v, err := m.store.Get(ctx, []byte(k), st.Index)
				if err != nil || string(v.Value) != k {
					t.Fatalf("member %d: get %s = %q, %v", m.id, k, v.Value, err)
				}
			}
		}
	}
	// The log is dense: every index from 1 to the top is an entry.
	var n argent.Index
	if _, err := tg.members[1].store.ReadLog(1, 0, func(e *logstore.Entry) bool {
		n++
		if e.Index != n {
			t.Fatalf("log entry %d where %d was expected", e.Index, n)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n != st.Index {
		t.Fatalf("log holds %d entries, state is at %d", n, st.Index)
	}
}

// Conditions race from every member: each key's create-if-absent succeeds
// exactly once, whichever member it came through, and every member agrees.
func TestGroup_ConditionsDecidedInLogOrder(t *testing.T) {
	tg := newTestGroup(t, 3)
	tg.leader()
	ctx := context.Background()
	const keys = 20
	var wg sync.WaitGroup
	wins := make([][]uint64, keys)
	var mu sync.Mutex
	for _, m := range tg.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				key := fmt.Sprintf("lock/%d", k)
				b := argent.Batch{Conditions: []argent.Condition{{Key: []byte(key)}},
					Ops: []argent.Op{put(key, fmt.Sprint(m.id))}}
				_, err := m.g.Write(ctx, b)
				switch {
				case err == nil:
					mu.Lock()
					wins[k] = append(wins[k], m.id)
					mu.Unlock()
				case !errors.Is(err, argent.ErrConditionFailed):
					t.Errorf("member %d: %s: %v", m.id, key, err)
				}
			}
		}()
	}
	wg.Wait()
	st := tg.converged(1)
	for k, w := range wins {
		if len(w) != 1 {
			t.Fatalf("lock/%d won by %v, want exactly one", k, w)
		}
		for _, m := range tg.members {
			v, err := m.store.Get(ctx, fmt.Appendf(nil, "lock/%d", k), st.Index)
			if err != nil || string(v.Value) != fmt.Sprint(w[0]) {
				t.Fatalf("member %d: lock/%d = %q, %v; won by %d", m.id, k, v.Value, err, w[0])
			}
		}
	}
}

// The leader is cut off: the others elect a new leader and take writes; the
// old one, back, catches up. Nothing acknowledged is lost.
func TestGroup_LeaderCutOff(t *testing.T) {
	tg := newTestGroup(t, 3)
	old := tg.leader()
	ctx := context.Background()
	var acked []string
	write := func(m *member, k string) error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := m.g.Write(wctx, argent.Batch{Ops: []argent.Op{put(k, k)}})
		if err == nil {
			acked = append(acked, k)
		}
		return err
	}
	for i := range 10 {
		if err := write(old, fmt.Sprintf("before/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tg.net.setCut(old.id, true)
	cutAt := time.Now()
	other := tg.followers(old)[0]
	// A write at a follower during the election waits for the new leader,
	// or, if the follower forwarded it to the old one, fails as of unknown
	// outcome when the new leader takes over; a client then writes again.
	for {
		err := write(other, "during")
		if err == nil {
			break
		}
		if !errors.Is(err, group.ErrOutcomeUnknown) || time.Since(cutAt) > 5*time.Second {
			t.Fatalf("write during the election: %v", err)
		}
	}
	t.Logf("first write after cutting the leader off took %v", time.Since(cutAt))
	nl := tg.leader()
	if nl == old {
		t.Fatal("the cut-off member is still the leader")
	}
	for i := range 10 {
		if err := write(nl, fmt.Sprintf("after/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tg.net.setCut(old.id, false)
	st := tg.converged(0)
	for _, m := range tg.members {
		for _, k := range acked {
			if v, err := m.store.Get(ctx, []byte(k), st.Index); err != nil || string(v.Value) != k {
				t.Fatalf("member %d lost acknowledged %s: %q, %v", m.id, k, v.Value, err)
			}
		}
	}
}

// A member stopped and started again on its log and store applies what it
// missed and rejoins at the same state.
func TestGroup_MemberRestart(t *testing.T) {
	tg := newTestGroup(t, 3)
	l := tg.leader()
	ctx := context.Background()
	follower := tg.followers(l)[0]
	for i := range 5 {
		if _, err := l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(fmt.Sprint(i), "a")}}); err != nil {
			t.Fatal(err)
		}
	}
	tg.stop(follower)
	for i := range 5 {
		if _, err := l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(fmt.Sprint(i), "b")}}); err != nil {
			t.Fatal(err)
		}
	}
	tg.start(follower)
	idx, err := follower.g.Write(ctx, argent.Batch{Ops: []argent.Op{put("back", "1")}})
	if err != nil {
		t.Fatal(err)
	}
	st := tg.converged(idx)
	if v, err := follower.store.Get(ctx, []byte("4"), st.Index); err != nil || string(v.Value) != "b" {
		t.Fatalf("restarted member: 4 = %q, %v; want b", v.Value, err)
	}
}

// The Raft log is compacted to its last LogKeep applied entries, and a
// member that was away for fewer than that catches up from it.
func TestGroup_CompactsLog(t *testing.T) {
	tg := newTestGroup(t, 3, group.Config{LogKeep: 50, CompactInterval: 20 * time.Millisecond})
	l := tg.leader()
	ctx := context.Background()
	follower := tg.followers(l)[0]
	write := func(n int) argent.Index {
		var idx argent.Index
		for i := range n {
			var err error
			if idx, err = l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(fmt.Sprint(i%7), fmt.Sprint(i))}}); err != nil {
				t.Fatal(err)
			}
		}
		return idx
	}
	tg.converged(write(200))
	for _, m := range tg.members {
		waitFor(t, func() bool {
			first, _ := m.log.FirstIndex()
			return first > 100
		}, "member %d's raft log compacted", m.id)
	}
	tg.stop(follower)
	write(20)
	tg.start(follower)
	tg.converged(write(1))

	// Away for longer than the log keeps: it loads a snapshot, then
	// follows the log again.
	tg.stop(follower)
	write(150)
	waitFor(t, func() bool {
		first, _ := l.log.FirstIndex()
		last, _ := follower.log.LastIndex()
		return first > last+1
	}, "the leader's log to be compacted past the stopped member's")
	tg.start(follower)
	st := tg.converged(write(1))
	if snap, _ := follower.log.Snapshot(); snap.GetMetadata().GetIndex() == 0 {
		t.Fatal("the member caught up without a snapshot")
	}
	for i := range 7 {
		want, err := l.store.Get(ctx, []byte(fmt.Sprint(i)), st.Index)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := follower.store.Get(ctx, []byte(fmt.Sprint(i)), st.Index); err != nil || string(got.Value) != string(want.Value) || got.ModIndex != want.ModIndex {
			t.Fatalf("key %d after the snapshot: %q@%d, %v; leader has %q@%d", i, got.Value, got.ModIndex, err, want.Value, want.ModIndex)
		}
	}
	// And it restarts from the snapshot and its store.
	tg.stop(follower)
	tg.start(follower)
	tg.converged(write(1))
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A read at a follower after ReadIndex sees a write the leader just
// acknowledged, and a cut-off member cannot serve one.
func TestGroup_ReadIndex(t *testing.T) {
	tg := newTestGroup(t, 3)
	l := tg.leader()
	ctx := context.Background()
	followers := tg.followers(l)
	for i := range 20 {
		k := fmt.Sprint("r", i)
		idx, err := l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(k, k)}})
		if err != nil {
			t.Fatal(err)
		}
		f := followers[i%2]
		at, err := f.g.ReadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if at < idx {
			t.Fatalf("read index %d at member %d after a write acknowledged at %d", at, f.id, idx)
		}
		if v, err := f.store.Get(ctx, []byte(k), at); err != nil || string(v.Value) != k {
			t.Fatalf("member %d at %d: %s = %q, %v", f.id, at, k, v.Value, err)
		}
	}
	tg.net.setCut(followers[0].id, true)
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if at, err := followers[0].g.ReadIndex(rctx); err == nil {
		t.Fatalf("a cut-off member gave read index %d", at)
	}
	tg.net.setCut(followers[0].id, false)
}

// Members are added (a new one catches up from the log), leadership moves
// to a chosen member, and a member is removed, all while writes go on.
func TestGroup_Membership(t *testing.T) {
	tg := newTestGroup(t, 3)
	l := tg.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var acked sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprint("w", i)
			if _, err := l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(k, k)}}); err == nil {
				acked.Store(k, true)
			}
		}
	}()
	fourth := tg.addMember(4, true)
	if err := l.g.AddMember(ctx, 4, "m4"); err != nil {
		t.Fatal(err)
	}
	if err := l.g.AddMember(ctx, 4, "m4"); !errors.Is(err, argent.ErrInvalid) {
		t.Fatalf("adding member 4 twice: %v", err)
	}
	if err := l.g.TransferLeader(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got := tg.leader(); got.id != 4 {
		t.Fatalf("leader %d after the transfer to 4", got.id)
	}
	if err := fourth.g.RemoveMember(ctx, l.id); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	// The removed member refuses at once what it can no longer serve.
	waitFor(t, func() bool { return len(l.g.Status().Members) == 3 }, "member %d to apply its removal", l.id)
	if _, err := l.g.ReadIndex(ctx); !errors.Is(err, group.ErrRemoved) {
		t.Fatalf("linearizable read at the removed member: %v, want ErrRemoved", err)
	}
	if _, err := l.g.Write(ctx, argent.Batch{Ops: []argent.Op{put("x", "1")}}); !errors.Is(err, group.ErrRemoved) {
		t.Fatalf("write at the removed member: %v, want ErrRemoved", err)
	}
	tg.stop(l)
	idx, err := fourth.g.Write(ctx, argent.Batch{Ops: []argent.Op{put("last", "1")}})
	if err != nil {
		t.Fatal(err)
	}
	st := tg.converged(idx)
	for _, m := range tg.members {
		if m.cancel == nil {
			continue
		}
		if got := m.g.Status().Members; len(got) != 3 || got[2].ID != 4 {
			t.Fatalf("member %d sees members %v, want 2, 3 and 4", m.id, got)
		}
		acked.Range(func(k, _ any) bool {
			if v, err := m.store.Get(ctx, []byte(k.(string)), st.Index); err != nil || string(v.Value) != k {
				t.Fatalf("member %d lost acknowledged %s: %q, %v", m.id, k, v.Value, err)
			}
			return true
		})
	}
}

// A member that crashes loses what its store had not synced (the store
// publishes without its own fsync); restarted on what its disk kept, it
// serves again only once it replayed its Raft log as far as it had served,
// so it never answers from an older state than before the crash.
func TestGroup_CrashedMemberReplaysBeforeServing(t *testing.T) {
	tg := newTestGroup(t, 3)
	l := tg.leader()
	m := tg.followers(l)[0]
	// Replace m by member 4 on a crashable file system: a fresh store
	// and log that catch up from the leader's log.
	tg.stop(m)
	if err := l.g.RemoveMember(context.Background(), m.id); err != nil {
		t.Fatal(err)
	}
	mem := vfs.NewCrashableMem()
	store, err := kv.Open("store", &kv.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	m = &member{id: 4, fs: mem, store: store, logDir: "raft", join: true}
	m.free.Store(1 << 40)
	tg.members[4] = m
	tg.start(m)
	if err := l.g.AddMember(context.Background(), 4, "m4"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		if _, err := m.g.Write(ctx, argent.Batch{Ops: []argent.Op{put(fmt.Sprint("c", i), "v")}}); err != nil {
			t.Fatal(err)
		}
	}
	served := m.store.Applied()
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	tg.stop(m)
	_ = m.store.Close()
	store, err = kv.Open("store", &kv.Options{FS: crashed})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("served %d before the crash; the store kept %d", served, store.Applied())
	m.fs, m.store, m.join = crashed, store, false
	tg.start(m)
	waitFor(t, m.g.Replayed, "member %d to replay its log", m.id)
	if got := m.store.Applied(); got < served {
		t.Fatalf("replayed to %d, below the %d served before the crash", got, served)
	}
	tg.converged(served)
}
