package node

import (
	"context"
	"net"
	"net/http"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/auth"
)

// openAuth loads the node's token rules (Config.AuthFile), reloads them on
// SIGHUP until Close, and warns of what the rules leave open.
func (n *Node) openAuth() error {
	cfg := n.cfg
	if cfg.AuthFile == "" {
		for _, addr := range []string{cfg.Listen, cfg.RESPListen} {
			if addr != "" && !isLoopback(addr) {
				n.log.Warn("SECURITY: listening beyond loopback without --auth: any client that reaches this address can read and write every key",
					"addr", addr)
			}
		}
		return nil
	}
	a, err := auth.Open(cfg.AuthFile, auth.Options{Logger: n.log, Registry: n.reg, Rate: cfg.TokenRate, Burst: cfg.TokenBurst})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.ReloadOnSignal(ctx)
	n.auth, n.stopAuth = a, cancel
	n.log.Info("checking client tokens", "rules", cfg.AuthFile, "tokens", a.Rules().Len())
	if !isLoopback(cfg.Listen) {
		n.log.Warn("SECURITY: --auth checks client tokens only: the node-to-node endpoints under /internal/ take no token and are open to anyone who reaches this address; restrict them by network",
			"addr", cfg.Listen)
	}
	return nil
}

// closeAuth stops the reloads of the rules.
func (n *Node) closeAuth() {
	if n.stopAuth != nil {
		n.stopAuth()
	}
}

// isLoopback reports whether a listen address binds only a loopback
// interface ("" or an unspecified host binds them all).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenForwarder presents the token of the client whose write a node
// forwards (auth.SecretFromContext) to its upstream, so that every node on
// the way to the root checks the writer's rights with the same rules.
type tokenForwarder struct{ base http.RoundTripper }

func (t tokenForwarder) RoundTrip(r *http.Request) (*http.Response, error) {
	secret := auth.SecretFromContext(r.Context())
	if secret == "" {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+secret)
	return t.base.RoundTrip(r)
}

// forwardOptions are the client options of the node's write forwarders:
// the node's client of other nodes (mutual TLS), presenting the writer's
// token when the node checks tokens.
func (n *Node) forwardOptions() []client.Option {
	hc := n.apiClient()
	if n.auth != nil {
		if hc == nil {
			hc = client.NewHTTPClient()
		}
		withToken := *hc
		withToken.Transport = tokenForwarder{base: hc.Transport}
		hc = &withToken
	}
	if hc == nil {
		return nil
	}
	return []client.Option{client.WithHTTPClient(hc)}
}
