package resp

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/limit"
)

// The replies of the token check, as Redis words them.
const (
	replyNoAuth    = "NOAUTH Authentication required."
	replyWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	replyNoPass    = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	replyHelloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
)

// RequireAuth makes every connection authenticate with AUTH (or HELLO's
// AUTH option) before any command but AUTH, HELLO and QUIT, and checks its
// token's rights on the keys of each command. Call it before Serve.
func (s *Server) RequireAuth(a *auth.Authorizer) { s.auth = a }

// connAuth is a connection's authentication: the secret AUTH gave and the
// token it stood for in the rules it was looked up in. It is owned as the
// rest of the connection's command state is.
type connAuth struct {
	secret string
	rules  *auth.Rules
	tok    *auth.Token
}

// authenticated reports whether the connection's token is valid in the
// rules in force, looking it up again after a reload.
func (c *conn) authenticated() bool {
	if c.s.auth == nil {
		return true
	}
	if c.auth.secret == "" {
		return false
	}
	if r := c.s.auth.Rules(); r != c.auth.rules {
		c.auth.rules, c.auth.tok = r, r.Lookup(c.auth.secret)
	}
	return c.auth.tok != nil
}

// noAuth refuses a command of a connection that has not authenticated (or
// whose token a reload removed), counting the refusal.
func (c *conn) noAuth() string {
	reason := auth.ReasonMissing
	if c.auth.secret != "" {
		reason = auth.ReasonInvalid
	}
	c.s.auth.Refused(reason, auth.ProtoRESP)
	return replyNoAuth
}

// denied returns the error reply refusing right on one of keys, or "". It
// counts nothing: the caller counts the refusal it sends (see refuse).
func (c *conn) denied(right auth.Right, keys ...[]byte) (reply, reason string) {
	if c.s.auth == nil {
		return "", ""
	}
	if !c.authenticated() {
		reason = auth.ReasonMissing
		if c.auth.secret != "" {
			reason = auth.ReasonInvalid
		}
		return replyNoAuth, reason
	}
	for _, k := range keys {
		if !c.auth.tok.Allowed(k, right) {
			return fmt.Sprintf("NOPERM token '%s' may not %s key '%s'", c.auth.tok.Name, right, quoteName(k)), auth.ReasonForbidden
		}
	}
	return "", ""
}

// setDenied returns the error reply refusing a SET of key, or "": a
// connection not authenticated, a token over its rate or without the write
// right. It counts the refusal.
func (c *conn) setDenied(key []byte) string {
	reply, reason := c.denied(auth.Write, key)
	if reply != "" {
		c.refuse(reason)
		return reply
	}
	if c.overRate() {
		return replyRate
	}
	return ""
}

// allowed writes the error reply and returns false unless the connection
// may use right on every key.
func (c *conn) allowed(right auth.Right, keys ...[]byte) bool {
	reply, reason := c.denied(right, keys...)
	if reply == "" {
		return true
	}
	c.refuse(reason)
	c.w.error(reply)
	return false
}

// refuse counts a refusal sent.
func (c *conn) refuse(reason string) {
	c.s.auth.Refused(reason, auth.ProtoRESP)
}

// readRanges returns the prefixes a SCAN of prefix walks: those of its
// keys the connection's token may read (see auth.Token.ReadRanges).
func (c *conn) readRanges(prefix []byte) [][]byte {
	if c.s.auth == nil {
		return [][]byte{prefix}
	}
	return c.auth.tok.ReadRanges(prefix)
}

// authCmd serves AUTH token and AUTH user token; the user name is ignored
// (tokens name themselves). A failed AUTH leaves the connection as it was.
func (c *conn) authCmd(args [][]byte) {
	if !c.arity(args, 2, 3) {
		return
	}
	if c.login(args[len(args)-1]) {
		c.w.simple("OK")
	}
}

// login authenticates the connection with secret, writing the error reply
// when it cannot; it reports success.
func (c *conn) login(secret []byte) bool {
	if c.s.auth == nil {
		c.w.error(replyNoPass)
		return false
	}
	r := c.s.auth.Rules()
	tok := r.Lookup(string(secret))
	if tok == nil {
		c.refuse(auth.ReasonInvalid)
		c.w.error(replyWrongPass)
		return false
	}
	c.auth = connAuth{secret: string(secret), rules: r, tok: tok}
	return true
}

// replyMaxClients refuses a connection over the bound, as Redis does.
const replyMaxClients = "-ERR max number of clients reached\r\n"

// SetMaxConnections bounds the connections open at once: one more is
// answered -ERR max number of clients reached and closed. n <= 0: no
// bound. Call it before Serve.
func (s *Server) SetMaxConnections(n int) { s.maxConns = int64(max(n, 0)) }

// refuse answers a connection over the bound and closes it, on its own
// goroutine, within a second.
func (s *Server) refuse(nc net.Conn) {
	go func() {
		defer nc.Close()
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(nc, replyMaxClients)
	}()
}

// uncount frees the connection's place under maxConns, once.
func (c *conn) uncount() {
	if c.counted.Swap(false) {
		c.s.open.Add(-1)
	}
}

// replyRate refuses a command of a token over its rate.
const replyRate = "ERR rate limit exceeded for this token; retry later"

// overRate reports, and counts, a command of a token over its rate.
func (c *conn) overRate() bool {
	if c.s.auth == nil || c.s.auth.Allow(c.auth.tok) {
		return false
	}
	c.s.refusals.Inc(limit.Rate)
	return true
}
