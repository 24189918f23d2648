package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/argent-kv/argent"
)

// Why a request was refused, the reason label of argent_auth_refused_total.
const (
	ReasonMissing   = "missing"   // no token: 401
	ReasonInvalid   = "invalid"   // a token the rules do not know: 401
	ReasonForbidden = "forbidden" // a known token without the right: 403
)

// The protocols, the proto label of argent_auth_refused_total.
const (
	ProtoHTTP = "http"
	ProtoRESP = "resp"
)

// Errors of Authenticate. Both wrap argent.ErrUnauthorized.
var (
	// ErrMissing: the request carried no token.
	ErrMissing = fmt.Errorf("%w: a bearer token is required (Authorization: Bearer TOKEN)", argent.ErrUnauthorized)
	// ErrInvalid: the token is not one of the rules' (mistyped, revoked).
	ErrInvalid = fmt.Errorf("%w: unknown token", argent.ErrUnauthorized)
)

// Options configures an Authorizer.
type Options struct {
	// Logger receives reloads and their failures. Default: discard.
	Logger *slog.Logger
	// Registry receives argent_auth_refused_total. Default: none.
	Registry prometheus.Registerer
	// Rate bounds the requests per second of each token (RESP: commands),
	// with bursts of Burst (default: one second's worth). Default 0: no
	// bound.
	Rate  float64
	Burst int
}

// Authorizer holds the rules of one file and swaps them on Reload. It is
// safe for concurrent use; checks never wait for a reload.
type Authorizer struct {
	path    string
	log     *slog.Logger
	rules   atomic.Pointer[Rules]
	refused *prometheus.CounterVec

	rate     rate.Limit
	burst    int
	limiters sync.Map // token name -> *rate.Limiter
}

// Open reads the rules at path. A file that does not parse is an error:
// a node must not start with rules it cannot read.
func Open(path string, opts Options) (*Authorizer, error) {
	a := &Authorizer{path: path, log: opts.Logger}
	if opts.Rate > 0 {
		a.rate, a.burst = rate.Limit(opts.Rate), opts.Burst
		if a.burst <= 0 {
			a.burst = max(1, int(opts.Rate))
		}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	r, err := load(path)
	if err != nil {
		return nil, err
	}
	a.rules.Store(r)
	a.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "argent_auth_refused_total",
		Help: "Requests refused by the token check, by reason (missing, invalid, forbidden) and protocol (http, resp).",
	}, []string{"reason", "proto"})
	if opts.Registry != nil {
		if err := opts.Registry.Register(a.refused); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("auth: register metrics: %w", err)
			}
			a.refused = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, reason := range []string{ReasonMissing, ReasonInvalid, ReasonForbidden} {
		for _, proto := range []string{ProtoHTTP, ProtoRESP} {
			a.refused.WithLabelValues(reason, proto)
		}
	}
	return a, nil
}

func load(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read rules: %w", err)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Path returns the file the rules come from.
func (a *Authorizer) Path() string { return a.path }

// Reload reads the file again. On any error the rules in force stay as they
// were, and the error is returned (and logged).
func (a *Authorizer) Reload() error {
	r, err := load(a.path)
	if err != nil {
		a.log.Error("auth: reload failed, keeping the rules in force", "err", err)
		return err
	}
	a.rules.Store(r)
	a.log.Info("auth: rules reloaded", "path", a.path, "tokens", r.Len())
	return nil
}

// ReloadOnSignal reloads the rules on every SIGHUP until ctx ends. It
// returns at once; the goroutine it starts ends with ctx.
func (a *Authorizer) ReloadOnSignal(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				_ = a.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Authenticate returns the token whose secret is presented: ErrMissing if
// it is empty, ErrInvalid if no rule has it.
func (a *Authorizer) Authenticate(presented string) (*Token, error) {
	if presented == "" {
		return nil, ErrMissing
	}
	t := a.rules.Load().Lookup(presented)
	if t == nil {
		return nil, ErrInvalid
	}
	return t, nil
}

// Rules returns the rules in force. A connection that authenticated once
// (RESP's AUTH) looks its secret up again when they change, so that a
// reload reaches it.
func (a *Authorizer) Rules() *Rules { return a.rules.Load() }

// Allow reports whether t may make one more request now under the rate of
// Options.Rate; it is always true without one. Tokens are limited by name,
// so a reload keeps their budgets.
func (a *Authorizer) Allow(t *Token) bool {
	if a.rate == 0 || t == nil {
		return true
	}
	l, ok := a.limiters.Load(t.Name)
	if !ok {
		l, _ = a.limiters.LoadOrStore(t.Name, rate.NewLimiter(a.rate, a.burst))
	}
	return l.(*rate.Limiter).Allow()
}

// Refused counts one refusal in argent_auth_refused_total.
func (a *Authorizer) Refused(reason, proto string) {
	a.refused.WithLabelValues(reason, proto).Inc()
}

// Reason returns the reason label of an error of Authenticate or Forbidden.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return ReasonMissing
	case errors.Is(err, argent.ErrForbidden):
		return ReasonForbidden
	}
	return ReasonInvalid
}

// Forbidden returns the error of t lacking right on key: it names the
// token and the key, never the secret.
func Forbidden(t *Token, right Right, key []byte) error {
	return fmt.Errorf("%w: token %q may not %s key %q", argent.ErrForbidden, t.Name, right, key)
}

// BearerToken returns the token of an Authorization header value of the
// Bearer scheme (the scheme's name in any case), or "" for anything else.
func BearerToken(header string) string {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

type ctxKey struct{}

// NewContext returns ctx carrying the token a request was authenticated
// with and the secret it presented, so that a node forwarding the request
// (a write to the root) can present it again.
func NewContext(ctx context.Context, t *Token, secret string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &authenticated{t, secret})
}

type authenticated struct {
	tok    *Token
	secret string
}

// FromContext returns the token of NewContext, or nil (no rules: anything
// goes) and false.
func FromContext(ctx context.Context) (*Token, bool) {
	a, ok := ctx.Value(ctxKey{}).(*authenticated)
	if !ok {
		return nil, false
	}
	return a.tok, true
}

// SecretFromContext returns the secret of NewContext, or "".
func SecretFromContext(ctx context.Context) string {
	if a, ok := ctx.Value(ctxKey{}).(*authenticated); ok {
		return a.secret
	}
	return ""
}
