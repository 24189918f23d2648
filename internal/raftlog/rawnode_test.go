package raftlog_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent/internal/raftlog"
)

// discardRaftLogger silences raft's own log in tests.
var discardRaftLogger raft.Logger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// member is a single-member Raft group on a Storage, driven by a Ready loop
// of the shape internal/group's will have.
type member struct {
	t       *testing.T
	s       *raftlog.Storage
	rn      *raft.RawNode
	applied uint64
	cs      *raftpb.ConfState
	data    map[uint64][]byte // the normal entries applied, by index
}

func newMember(t *testing.T, s *raftlog.Storage, applied uint64) *member {
	t.Helper()
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		Logger:          discardRaftLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &member{t: t, s: s, rn: rn, applied: applied, data: map[uint64][]byte{}}
}

// drive handles Readys until there are none.
func (m *member) drive() {
	m.t.Helper()
	for m.rn.HasReady() {
		rd := m.rn.Ready()
		if err := m.s.Save(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
			m.t.Fatalf("save: %v", err)
		}
		for _, e := range rd.CommittedEntries {
			switch e.GetType() {
			case raftpb.EntryConfChange:
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					m.t.Fatal(err)
				}
				m.cs = m.rn.ApplyConfChange(&cc)
				if err := m.s.SetConfState(m.cs, e.GetIndex()); err != nil {
					m.t.Fatal(err)
				}
			case raftpb.EntryNormal:
				if len(e.GetData()) > 0 {
					m.data[e.GetIndex()] = e.GetData()
				}
			}
			m.applied = e.GetIndex()
		}
		m.rn.Advance(rd)
	}
}

func (m *member) campaign() {
	m.t.Helper()
	if err := m.rn.Campaign(); err != nil {
		m.t.Fatal(err)
	}
	m.drive()
	if st := m.rn.Status().RaftState; st != raft.StateLeader {
		m.t.Fatalf("after the campaign: %v, want leader", st)
	}
}

// propose proposes n entries of size bytes, tagged with tag, and commits
// them; it returns the data of every entry applied so far, by index.
func (m *member) propose(n, size int, tag string) map[uint64][]byte {
	m.t.Helper()
	before := len(m.data)
	for k := range n {
		d := bytes.Repeat([]byte{byte(k)}, size)
		copy(d, fmt.Sprintf("%s %d", tag, k))
		if err := m.rn.Propose(d); err != nil {
			m.t.Fatal(err)
		}
		if k%8 == 7 {
			m.drive() // a few entries per Ready, as merged batches come
		}
	}
	m.drive()
	if got := len(m.data) - before; got != n {
		m.t.Fatalf("%d of %d proposals applied", got, n)
	}
	return m.data
}

// checkLog checks that the storage's entries hold want's data where they
// overlap, and that it holds its last index.
func checkLog(t *testing.T, s *raftlog.Storage, want map[uint64][]byte) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	ents, err := s.Entries(first, last+1, raftNoLimit)
	if err != nil {
		t.Fatalf("entries [%d, %d): %v", first, last+1, err)
	}
	n := 0
	for _, e := range ents {
		if d, ok := want[e.GetIndex()]; ok {
			n++
			if !bytes.Equal(e.GetData(), d) {
				t.Fatalf("entry %d holds %q..., want %q...", e.GetIndex(), e.GetData()[:min(len(e.GetData()), 12)], d[:12])
			}
		}
	}
	if n == 0 {
		t.Fatalf("the log [%d, %d] holds none of the entries proposed", first, last)
	}
}

// TestStorage_RawNode runs a single-member group on a Storage: bootstrap,
// campaign, proposals, a snapshot and a compaction; then reopens the
// storage and restarts the member on it, which must find its log, hard state
// and configuration, win again and commit more.
func TestStorage_RawNode(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, s *raftlog.Storage) *member
	}{
		{name: "Bootstrap", start: func(t *testing.T, s *raftlog.Storage) *member {
			m := newMember(t, s, 0)
			if err := m.rn.Bootstrap([]raft.Peer{{ID: 1}}); err != nil {
				t.Fatal(err)
			}
			return m
		}},
		{name: "ConfState", start: func(t *testing.T, s *raftlog.Storage) *member {
			cs := &raftpb.ConfState{Voters: []uint64{1}}
			if err := s.SetConfState(cs, 0); err != nil {
				t.Fatal(err)
			}
			m := newMember(t, s, 0)
			m.cs = cs
			return m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &raftlog.Options{TailBytes: 256 << 10}
			s := mustOpen(t, "raft", opts)
			if !s.Empty() {
				t.Fatal("a new storage is not Empty")
			}
			m := tt.start(t, s)
			m.drive()
			m.campaign()
			m.propose(200, 4<<10, "first")

			// Snapshot at the applied index and keep 50 entries behind it.
			if _, err := s.CreateSnapshot(m.applied, m.cs, []byte("applied")); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(m.applied - 50); err != nil {
				t.Fatal(err)
			}
			want := m.propose(30, 1<<10, "second") // with the first 200
			hs, _, _ := s.InitialState()
			before := stateOf(t, s)
			if before.bytes < 30<<10 {
				t.Fatalf("Bytes() = %d after 80 entries of 1 KiB and more", before.bytes)
			}

			s = reopen(t, s, "raft", opts)
			checkState(t, "reopened", stateOf(t, s), before)
			checkLog(t, s, want)
			got, cs, err := s.InitialState()
			if err != nil {
				t.Fatal(err)
			}
			if got.GetCommit() != m.applied || !proto.Equal(got, hs) {
				t.Fatalf("hard state %v after the reopen, want %v with commit %d", got, hs, m.applied)
			}
			if !slices.Equal(cs.GetVoters(), []uint64{1}) {
				t.Fatalf("conf state %v after the reopen, want voters [1]", cs)
			}

			m2 := newMember(t, s, m.applied)
			m2.cs = cs
			m2.campaign()
			more := m2.propose(20, 100, "third")
			if len(more) != 20 {
				t.Fatalf("the restarted member applied %d new entries, want 20", len(more))
			}
			checkLog(t, s, more)
			if last, _ := s.LastIndex(); last <= m.applied+20 {
				t.Fatalf("LastIndex() = %d after 20 more proposals past %d", last, m.applied)
			}
		})
	}
}
