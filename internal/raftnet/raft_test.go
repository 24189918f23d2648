package raftnet_test

import (
	"fmt"
	"io"
	"log"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent/internal/raftnet"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// raftMember is a Raft member on raft.MemoryStorage with the simplest Ready
// loop, talking over a Transport.
type raftMember struct {
	*member
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	recv    chan *raftpb.Message
	unreach chan uint64
	props   chan []byte
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	lead    uint64
	term    uint64
	applied [][]byte // the data of the committed normal entries, in order
}

// startRaftMember starts member id of a group whose voters are ids.
func startRaftMember(t *testing.T, id uint64, ids []uint64) *raftMember {
	t.Helper()
	r := &raftMember{
		recv:    make(chan *raftpb.Message, 4096),
		unreach: make(chan uint64, 64),
		props:   make(chan []byte, 64),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	r.member = newMember(t, id, func(c *raftnet.Config) {
		// The loop steps what arrives; a full channel drops (Raft retransmits).
		c.Deliver = func(m *raftpb.Message) {
			select {
			case r.recv <- m:
			default:
			}
		}
		c.Unreachable = func(id uint64) {
			select {
			case r.unreach <- id:
			default:
			}
		}
	})
	r.storage = raft.NewMemoryStorage()
	err := r.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: ids},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.storage.SetHardState(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}); err != nil {
		t.Fatal(err)
	}
	r.rn, err = raft.NewRawNode(&raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         r.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	go r.loop()
	// Before the member's own cleanup (registered first, so run last),
	// which closes its transport.
	t.Cleanup(func() { close(r.stop); <-r.done })
	return r
}

// loop is the Ready loop: ticks, received messages, reports and proposals
// in; storage, the transport and the applied entries out.
func (r *raftMember) loop() {
	defer close(r.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			r.rn.Tick()
		case m := <-r.recv:
			_ = r.rn.Step(m)
		case id := <-r.unreach:
			r.rn.ReportUnreachable(id)
		case p := <-r.props:
			_ = r.rn.Propose(p)
		}
		for r.rn.HasReady() {
			rd := r.rn.Ready()
			if !raft.IsEmptySnap(rd.Snapshot) {
				_ = r.storage.ApplySnapshot(rd.Snapshot)
			}
			if rd.HardState != nil {
				_ = r.storage.SetHardState(rd.HardState)
			}
			_ = r.storage.Append(rd.Entries)
			r.tr.Send(rd.Messages)
			r.mu.Lock()
			for _, e := range rd.CommittedEntries {
				if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
					r.applied = append(r.applied, e.GetData())
				}
			}
			st := r.rn.BasicStatus()
			r.lead, r.term = st.Lead, st.GetTerm()
			r.mu.Unlock()
			r.rn.Advance(rd)
		}
	}
}

func (r *raftMember) leader() (lead, term uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lead, r.term
}

func (r *raftMember) appliedData() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.applied))
	for i, d := range r.applied {
		out[i] = string(d)
	}
	return out
}

// A 3-member Raft group over Transports elects a leader and commits
// proposals; with its leader cut off from the others (both ways, at
// faultproxies on every link), the other two elect a new one and commit
// more; once the link heals, the old leader follows and has every entry.
func TestRaft_GroupOverTransport(t *testing.T) {
	ids := []uint64{1, 2, 3}
	ms := make(map[uint64]*raftMember)
	for _, id := range ids {
		ms[id] = startRaftMember(t, id, ids)
	}
	// links[a][b] carries a's stream to b.
	links := make(map[uint64]map[uint64]*faultproxy.Proxy)
	for _, a := range ids {
		links[a] = make(map[uint64]*faultproxy.Proxy)
		for _, b := range ids {
			if a != b {
				links[a][b] = faultproxy.Start(t, ms[b].addr)
				ms[a].tr.SetPeer(b, links[a][b].Addr())
			}
		}
	}

	// agreedLeader returns the leader all of members agree on, 0 if none.
	agreedLeader := func(members []uint64) (uint64, uint64) {
		lead, term := ms[members[0]].leader()
		for _, id := range members[1:] {
			if l, tm := ms[id].leader(); l != lead || tm != term {
				return 0, 0
			}
		}
		return lead, term
	}
	propose := func(lead uint64, from, n int) []string {
		var want []string
		for i := from; i < from+n; i++ {
			d := fmt.Sprintf("entry-%03d", i)
			ms[lead].props <- []byte(d)
			want = append(want, d)
		}
		return want
	}
	waitApplied := func(members []uint64, want []string) {
		t.Helper()
		for _, id := range members {
			waitFor(t, fmt.Sprintf("member %d to apply %d entries", id, len(want)), func() bool {
				return len(ms[id].appliedData()) >= len(want)
			})
			if got := ms[id].appliedData(); !slices.Equal(got, want) {
				t.Fatalf("member %d applied %q, want %q", id, got, want)
			}
		}
	}

	var lead1, term1 uint64
	waitFor(t, "a leader", func() bool { lead1, term1 = agreedLeader(ids); return lead1 != 0 })
	want := propose(lead1, 0, 20)
	waitApplied(ids, want)

	// Cut the leader off: its streams to the others and theirs to it.
	var others []uint64
	for _, id := range ids {
		if id != lead1 {
			others = append(others, id)
			links[lead1][id].Cut()
			links[id][lead1].Cut()
		}
	}
	var lead2, term2 uint64
	waitFor(t, "a new leader", func() bool {
		lead2, term2 = agreedLeader(others)
		return lead2 != 0 && lead2 != lead1
	})
	if term2 <= term1 {
		t.Errorf("new leader %d in term %d, the old one was in %d", lead2, term2, term1)
	}
	// The new leader's heartbeats to the old one are dropped.
	waitFor(t, "drops to the cut-off leader", func() bool { return ms[lead2].tr.Stats()[lead1].Dropped > 0 })
	want = append(want, propose(lead2, 20, 20)...)
	waitApplied(others, want)
	if n := len(ms[lead1].appliedData()); n != 20 {
		t.Errorf("the cut-off leader applied %d entries, want 20", n)
	}

	// Heal: the old leader follows the new one and catches up.
	for _, id := range others {
		links[lead1][id].Restore()
		links[id][lead1].Restore()
	}
	waitFor(t, "the old leader to follow", func() bool { l, _ := agreedLeader(ids); return l == lead2 })
	want = append(want, propose(lead2, 40, 5)...)
	waitApplied(ids, want)
	t.Logf("leader %d (term %d), then %d (term %d)", lead1, term1, lead2, term2)
}
