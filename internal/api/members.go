package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/auth"
)

// Membership is implemented by a Backend that is a member of a root group:
// it changes the group's members and moves its leadership.
type Membership interface {
	AddMember(ctx context.Context, id uint64, addr string) error
	RemoveMember(ctx context.Context, id uint64) error
	TransferLeader(ctx context.Context, id uint64) error
}

// membersPrefix: POST /v1/members adds a member; DELETE /v1/members/{id}
// removes one; POST /v1/members/{id}/leader moves leadership to it. Each
// answers the group's status once the change applied at this member.
const membersPrefix = "/v1/members"

// membershipTimeout bounds a membership change's wait.
const membershipTimeout = 10 * time.Second

func (s *Server) serveMembers(w http.ResponseWriter, r *http.Request) int {
	// Changing the group is for a token that may write every key.
	if tok := s.token(r); !tok.Allowed(nil, auth.Write) {
		return s.forbid(w, r, tok, auth.Write, nil)
	}
	ms, ok := s.b.(Membership)
	if !ok || s.b.Status().Group == nil {
		return s.writeError(w, r, invalidf("this node is not a member of a root group"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, membersPrefix), "/")
	idPart, action, _ := strings.Cut(rest, "/")
	var err error
	switch {
	case rest == "" && r.Method == http.MethodPost:
		var req apiwire.MemberRequest
		if err = DecodeJSON(http.MaxBytesReader(w, r.Body, 1<<16), &req); err == nil {
			err = ms.AddMember(ctx, req.ID, req.Addr)
		}
	case rest == "":
		return s.methodNotAllowed(w, r, "POST")
	default:
		id, perr := strconv.ParseUint(idPart, 10, 64)
		switch {
		case perr != nil || id == 0:
			err = invalidf("member ID %q is not a number above 0", idPart)
		case action == "" && r.Method == http.MethodDelete:
			err = ms.RemoveMember(ctx, id)
		case action == "leader" && r.Method == http.MethodPost:
			err = ms.TransferLeader(ctx, id)
		case action == "" || action == "leader":
			allow := map[string]string{"": "DELETE", "leader": "POST"}[action]
			return s.methodNotAllowed(w, r, allow)
		default:
			return s.notFound(w, r)
		}
	}
	if err != nil {
		if ctx.Err() != nil && r.Context().Err() == nil {
			err = fmt.Errorf("%w: %v", argent.ErrTimeout, err)
		}
		return s.writeError(w, r, err)
	}
	return s.writeJSON(w, r, http.StatusOK, s.b.Status().Group)
}
