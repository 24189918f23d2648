package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/argent-kv/argent/client"
)

// MemberCmd groups the commands that look at and change a root group.
type MemberCmd struct {
	List     MemberListCmd     `cmd:"" help:"List the members of the root group, the leader and each member's applied indexes."`
	Add      MemberAddCmd      `cmd:"" help:"Add a member (start it first with --join)."`
	Remove   MemberRemoveCmd   `cmd:"" help:"Remove a member."`
	Transfer MemberTransferCmd `cmd:"" help:"Move the leadership to a member (before maintenance of the leader)."`
}

// MemberListCmd lists the members.
type MemberListCmd struct {
	ServerFlag
}

// Run prints one line per member, each asked for its own status.
func (c *MemberListCmd) Run(ctx context.Context, io *stdio) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	g, err := cl.Members(ctx)
	if err != nil {
		return opError("member list", "", err)
	}
	c.printGroup(ctx, io.out, g, "")
	return nil
}

// printGroup prints the members of g, asking each for its status.
func (f *ServerFlag) printGroup(ctx context.Context, w io.Writer, g client.GroupStatus, indent string) {
	fmt.Fprintf(w, "%sroot group: %d members, leader %d, term %d\n", indent, len(g.Members), g.Leader, g.Term)
	if len(g.DiskAlarms) > 0 {
		fmt.Fprintf(w, "%s  disk alarm of member %s: writes refused until it clears (free space there, or remove the member)\n", indent, joinIDs(g.DiskAlarms))
	}
	for _, m := range g.Members {
		st, err := f.childStatus(ctx, m.Addr)
		switch {
		case err != nil:
			fmt.Fprintf(w, "%s  %d  %s  (no answer: %v)\n", indent, m.ID, m.Addr, err)
		case st.Group == nil:
			fmt.Fprintf(w, "%s  %d  %s  (answers as a %s, not a group member)\n", indent, m.ID, m.Addr, st.Role)
		default:
			fmt.Fprintf(w, "%s  %d  %-21s %-9s applied index %d  raft applied %d, commit %d\n", indent, m.ID, m.Addr,
				st.Group.State, st.AppliedIndex, st.Group.Applied, st.Group.Commit)
		}
	}
}

// joinIDs lists member IDs for a person: "2" or "2, 3".
func joinIDs(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ", ")
}

// MemberAddCmd adds a member.
type MemberAddCmd struct {
	ID   uint64 `arg:"" help:"The new member's Raft ID (unused in the group)."`
	Addr string `arg:"" help:"The new member's --listen address."`
	ServerFlag
}

// Run adds the member and prints the group.
func (c *MemberAddCmd) Run(ctx context.Context, io *stdio) error {
	return c.change(ctx, io.out, func(cl *client.Client) (client.GroupStatus, error) { return cl.AddMember(ctx, c.ID, c.Addr) })
}

// MemberRemoveCmd removes a member.
type MemberRemoveCmd struct {
	ID uint64 `arg:"" help:"The Raft ID of the member to remove."`
	ServerFlag
}

// Run removes the member and prints the group.
func (c *MemberRemoveCmd) Run(ctx context.Context, io *stdio) error {
	return c.change(ctx, io.out, func(cl *client.Client) (client.GroupStatus, error) { return cl.RemoveMember(ctx, c.ID) })
}

// MemberTransferCmd moves the leadership.
type MemberTransferCmd struct {
	ID uint64 `arg:"" help:"The Raft ID of the member to lead."`
	ServerFlag
}

// Run transfers the leadership and prints the group.
func (c *MemberTransferCmd) Run(ctx context.Context, io *stdio) error {
	return c.change(ctx, io.out, func(cl *client.Client) (client.GroupStatus, error) { return cl.TransferLeader(ctx, c.ID) })
}

// change runs one membership change at the server and prints the group.
func (f *ServerFlag) change(ctx context.Context, w io.Writer, do func(*client.Client) (client.GroupStatus, error)) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	g, err := do(cl)
	if err != nil {
		return opError("member", "", err)
	}
	f.printGroup(ctx, w, g, "")
	return nil
}
