package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// Members returns the root group as the node sees it: its members, the
// leader, and each one's Raft indexes; an error if the node is not a member
// of a root group.
func (c *Client) Members(ctx context.Context) (GroupStatus, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return GroupStatus{}, err
	}
	if st.Group == nil {
		return GroupStatus{}, fmt.Errorf("client: members: %s is a %s, not a member of a root group", c.Addr(), st.Role)
	}
	return *st.Group, nil
}

// AddMember adds member id, listening at addr, to the node's root group and
// returns the group once the node applied the change.
func (c *Client) AddMember(ctx context.Context, id uint64, addr string) (GroupStatus, error) {
	return c.member(ctx, "add member", http.MethodPost, "/v1/members", MemberRequest{ID: id, Addr: addr})
}

// RemoveMember removes member id from the node's root group.
func (c *Client) RemoveMember(ctx context.Context, id uint64) (GroupStatus, error) {
	return c.member(ctx, "remove member", http.MethodDelete, "/v1/members/"+strconv.FormatUint(id, 10), nil)
}

// TransferLeader moves the leadership of the node's root group to member id.
func (c *Client) TransferLeader(ctx context.Context, id uint64) (GroupStatus, error) {
	return c.member(ctx, "transfer leadership", http.MethodPost, "/v1/members/"+strconv.FormatUint(id, 10)+"/leader", nil)
}

func (c *Client) member(ctx context.Context, what, method, path string, in any) (GroupStatus, error) {
	var out GroupStatus
	if err := c.call(ctx, method, path, nil, in, &out); err != nil {
		return GroupStatus{}, fmt.Errorf("client: %s: %w", what, err)
	}
	return out, nil
}
