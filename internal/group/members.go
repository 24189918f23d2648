package group

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
)

// ErrRemoved: this member was removed from the group; it takes no writes.
var ErrRemoved = fmt.Errorf("group: this member was removed from the root group: %w", argent.ErrUnavailable)

// AddMember adds a voting member with Raft ID id, reached at addr, and
// waits until this member applied the change. The new member is started
// with --join (an empty Raft log, no bootstrap); it catches up from the
// leader's log, or from a snapshot when the log no longer reaches back.
// Raft takes one change at a time: one proposed while another is under way
// is dropped, and AddMember fails when ctx ends.
func (g *Group) AddMember(ctx context.Context, id uint64, addr string) error {
	if id == 0 || addr == "" {
		return fmt.Errorf("%w: a member needs an ID above 0 and an address", argent.ErrInvalid)
	}
	if _, ok := g.member(id); ok {
		return fmt.Errorf("%w: member %d is already in the group", argent.ErrInvalid, id)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id), Context: []byte(addr)}
	return g.changeMembers(ctx, cc, func() bool { _, ok := g.member(id); return ok })
}

// RemoveMember removes member id from the group and waits until this member
// applied the change. Removing the leader makes it step down first.
func (g *Group) RemoveMember(ctx context.Context, id uint64) error {
	if _, ok := g.member(id); !ok {
		return fmt.Errorf("%w: member %d is not in the group", argent.ErrNotFound, id)
	}
	if len(g.Status().Members) <= 1 {
		return fmt.Errorf("%w: member %d is the last one", argent.ErrInvalid, id)
	}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}
	return g.changeMembers(ctx, cc, func() bool { _, ok := g.member(id); return !ok })
}

func (g *Group) changeMembers(ctx context.Context, cc *raftpb.ConfChange, done func() bool) error {
	err := g.do(ctx, func(rn *raft.RawNode) error {
		if rn.BasicStatus().Lead == raft.None {
			return ErrNoLeader
		}
		return rn.ProposeConfChange(cc)
	})
	if err != nil {
		return fmt.Errorf("group: propose membership change: %w", err)
	}
	return g.waitFor(ctx, done, "the membership change to apply (another change may have been under way: try again)")
}

// TransferLeader asks the leader to hand leadership to member id (after
// catching it up), and waits until this member sees id lead. Raft drops a
// transfer that does not finish within an election timeout (the target may
// still be applying a membership change, say); it is asked again then.
func (g *Group) TransferLeader(ctx context.Context, id uint64) error {
	if _, ok := g.member(id); !ok {
		return fmt.Errorf("%w: member %d is not in the group", argent.ErrNotFound, id)
	}
	for {
		err := g.do(ctx, func(rn *raft.RawNode) error {
			if rn.BasicStatus().Lead == raft.None {
				return ErrNoLeader
			}
			rn.TransferLeader(id)
			return nil
		})
		if err != nil {
			return fmt.Errorf("group: transfer leadership: %w", err)
		}
		try, cancel := context.WithTimeout(ctx, 2*g.electionTimeout())
		err = g.waitFor(try, func() bool { return g.Status().Leader == id }, fmt.Sprintf("member %d to lead", id))
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
}

// do runs fn on Run's goroutine, which owns the Raft node.
func (g *Group) do(ctx context.Context, fn func(*raft.RawNode) error) error {
	c := control{fn: fn, done: make(chan error, 1)}
	select {
	case g.ctl <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type control struct {
	fn   func(*raft.RawNode) error
	done chan error
}

// waitFor polls cond until it holds or ctx ends.
func (g *Group) waitFor(ctx context.Context, cond func() bool, what string) error {
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("group: waiting for %s: %w", what, ctx.Err())
		}
		if err := g.Failed(); err != nil {
			return err
		}
	}
	return nil
}

// member returns the address of member id.
func (g *Group) member(id uint64) (string, bool) {
	members := g.Status().Members
	i := slices.IndexFunc(members, func(p Peer) bool { return p.ID == id })
	if i < 0 {
		return "", false
	}
	return members[i].Addr, true
}

// memberBook is what a member knows of the others' addresses: the initial
// peers, then what membership changes said. Run's goroutine only.
type memberBook map[uint64]string

func (b memberBook) encode() []byte {
	v, _ := json.Marshal(map[uint64]string(b))
	return v
}

func decodeMemberBook(v []byte) (memberBook, error) {
	b := memberBook{}
	if len(v) == 0 {
		return b, nil
	}
	if err := json.Unmarshal(v, (*map[uint64]string)(&b)); err != nil {
		return nil, fmt.Errorf("%w: member addresses: %v", argent.ErrCorruption, err)
	}
	return b, nil
}

// peers lists the members of cs with their addresses, by ID.
func (b memberBook) peers(cs *raftpb.ConfState) []Peer {
	var out []Peer
	for _, id := range append(slices.Clone(cs.GetVoters()), cs.GetLearners()...) {
		out = append(out, Peer{ID: id, Addr: b[id]})
	}
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Peer) bool { return a.ID == b.ID })
}
