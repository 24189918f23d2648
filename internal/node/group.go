package node

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/raftlog"
	"github.com/argent-kv/argent/internal/raftnet"
	"github.com/argent-kv/argent/internal/replica"
)

// raftDir is where a root group member keeps its Raft log, inside its data
// directory and beside the store.
const raftDir = "raft"

// validateGroup checks a root group's members: unique non-zero IDs and
// addresses, and id among them. No members is a single root (id must then
// be unset).
func validateGroup(id uint64, peers []group.Peer) error {
	if len(peers) == 0 {
		if id != 0 {
			return fmt.Errorf("node: --id %d without --peers: a single root has no Raft ID", id)
		}
		return nil
	}
	ids, addrs := map[uint64]bool{}, map[string]bool{}
	for _, p := range peers {
		switch {
		case p.ID == 0:
			return fmt.Errorf("node: peer %s has ID 0; member IDs start at 1", p.Addr)
		case ids[p.ID]:
			return fmt.Errorf("node: member ID %d appears twice in --peers", p.ID)
		case p.Addr == "" || addrs[p.Addr]:
			return fmt.Errorf("node: member %d has an empty or repeated address %q", p.ID, p.Addr)
		}
		ids[p.ID], addrs[p.Addr] = true, true
	}
	if !ids[id] {
		return fmt.Errorf("node: --id %d is not one of the --peers", id)
	}
	return nil
}

// groupMember is a root that is a member of a Raft group: its group.Group,
// the Raft log it owns and the transport to the other members.
type groupMember struct {
	g   *group.Group
	log *raftlog.Storage
	net *raftnet.Transport
}

// startGroup opens the Raft log in the data directory and starts the member
// on store; its stream handler goes on mux.
func (n *Node) startGroup(ctx context.Context, store *kv.Store, mux *http.ServeMux, pm *pull.Metrics) error {
	cfg := n.cfg
	lg, err := raftlog.Open(filepath.Join(cfg.DataDir, raftDir), cfg.FS, n.log)
	if err != nil {
		return fmt.Errorf("node: open raft log: %w", err)
	}
	m := &groupMember{log: lg}
	m.net = raftnet.New(raftnet.Config{
		ID:           cfg.GroupID,
		Group:        store.Dataset(),
		Deliver:      func(msg *raftpb.Message) { m.g.Step(msg) },
		Unreachable:  func(id uint64) { m.g.ReportUnreachable(id) },
		SnapshotDone: func(id uint64, ok bool) { m.g.ReportSnapshot(id, ok) },
		Client:       n.raftClient(),
		Logger:       n.log,
	})
	m.g, err = group.New(group.Config{ID: cfg.GroupID, Peers: cfg.GroupPeers, Store: store, Log: lg, Transport: m.net,
		MaxMergeBytes: cfg.MergeBytes, MaxMergeBatches: cfg.MergeBatches, OnCommit: n.commitObserver(),
		OnDataset: m.net.SetGroup, Join: cfg.GroupJoin, LogKeep: cfg.GroupLogKeep, CompactInterval: cfg.GroupCompactInterval,
		MinFreeDisk: cfg.MinFreeDisk, Logger: n.log,
		LoadSnapshot: func(ctx context.Context, addr string) error {
			_, err := replica.LoadSnapshot(ctx, store, addr, replica.Config{NodeID: n.nodeID, Addr: n.Addr(), Client: n.pullClient(), Metrics: pm, Logger: n.log})
			return err
		}})
	if err != nil {
		_ = m.net.Close()
		_ = lg.Close()
		return err
	}
	mux.Handle(raftnet.Path, m.net.Handler())
	n.member, n.writes = m, m.g
	n.diskFull = func() bool { return len(m.g.Status().DiskAlarms) > 0 }
	n.registerGroupGauges()
	n.goRun(func() {
		if err := m.g.Run(ctx); err != nil {
			n.fatal.set(err)
		}
		_ = m.net.Close()
		_ = lg.Close()
	})
	return nil
}

// groupStatus describes the group as this member sees it.
func (m *groupMember) status() *apiwire.GroupStatus {
	st := m.g.Status()
	out := &apiwire.GroupStatus{ID: st.ID, Leader: st.Leader, Term: st.Term, State: st.State, Commit: st.Commit, Applied: st.Applied,
		DiskAlarms: st.DiskAlarms}
	for _, p := range st.Members {
		out.Members = append(out.Members, apiwire.GroupMember{ID: p.ID, Addr: p.Addr})
	}
	return out
}

// ReadBarrier implements api.Linearizer: a single root's applied index (it
// acknowledges a write only once it is applied), a group member's read
// index. Other roles refuse.
func (n *Node) ReadBarrier(ctx context.Context) (argent.Index, error) {
	switch {
	case n.member != nil:
		return n.member.g.ReadIndex(ctx)
	case n.writes != nil:
		return n.store.Applied(), nil
	}
	return 0, fmt.Errorf("%w: linearizable reads are served by the root; ask it, or read here with min_index", argent.ErrInvalid)
}

var _ api.Linearizer = (*Node)(nil)

// AddMember, RemoveMember and TransferLeader implement api.Membership on a
// root group member.
func (n *Node) AddMember(ctx context.Context, id uint64, addr string) error {
	if n.member == nil {
		return errNotMember
	}
	return n.member.g.AddMember(ctx, id, addr)
}

func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	if n.member == nil {
		return errNotMember
	}
	return n.member.g.RemoveMember(ctx, id)
}

func (n *Node) TransferLeader(ctx context.Context, id uint64) error {
	if n.member == nil {
		return errNotMember
	}
	return n.member.g.TransferLeader(ctx, id)
}

var errNotMember = fmt.Errorf("%w: this node is not a member of a root group", argent.ErrInvalid)

var _ api.Membership = (*Node)(nil)
