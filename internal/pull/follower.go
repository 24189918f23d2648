package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// Target is what the log is applied to: a replica's store, a proxy's
	// cache. Required.
	Target Target
	NodeID string
	// Addr is this node's own listen address, reported to parents, with
	// its Role and DC (for their status and for discovery).
	Addr     string
	Role, DC string
	// Upstreams are the parents to pull from, in order of preference.
	Upstreams []string
	// MoreUpstreams, if set, names parents learned since start (a proxy's
	// oracle); they are tried after Upstreams.
	MoreUpstreams func() []string
	// ReturnInterval is how often, while it follows a parent learned
	// through MoreUpstreams, the Follower asks Upstreams whether one of
	// them is back and caught up with it; it then goes back to that one
	// (a proxy returns to its data center's relay once the relay is back).
	// Default 5 s; negative: never.
	ReturnInterval time.Duration
	// StallTimeout moves to another upstream after this long without a
	// frame. Default 30s.
	StallTimeout time.Duration
	// MaxGroup bounds the entries applied in one fsynced commit. Default 4096.
	MaxGroup int
	// Client makes the requests of the default HTTPTransport. Default: a
	// client with no overall timeout.
	Client *http.Client
	// Transport reaches the upstreams. Default: NewHTTPTransport(Client).
	// Tests pass an InmemTransport.
	Transport Transport
	// OnHeartbeat is called with every heartbeat (and the Hello's root
	// position) so the node knows how far the root is.
	OnHeartbeat func(h wire.Heartbeat)
	Metrics     *Metrics
	Logger      *slog.Logger
}

// Follower pulls the log from an upstream and applies it to its Target,
// moving to the next upstream on error or after a stall.
type Follower struct {
	cfg       FollowerConfig
	target    Target
	upstream  atomic.Pointer[string]
	connected atomic.Bool
}

// NewFollower returns a Follower. Call Run.
func NewFollower(cfg FollowerConfig) *Follower {
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	if cfg.ReturnInterval == 0 {
		cfg.ReturnInterval = 5 * time.Second
	}
	if cfg.MaxGroup == 0 {
		cfg.MaxGroup = 4096
	}
	if cfg.Transport == nil {
		cfg.Transport = NewHTTPTransport(cfg.Client)
	}
	if cfg.OnHeartbeat == nil {
		cfg.OnHeartbeat = func(wire.Heartbeat) {}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Follower{cfg: cfg, target: cfg.Target}
	empty := ""
	f.upstream.Store(&empty)
	return f
}

// upstreams returns the parents to try: Upstreams, then MoreUpstreams.
func (f *Follower) upstreams() []string {
	if f.cfg.MoreUpstreams == nil {
		return f.cfg.Upstreams
	}
	out := append([]string(nil), f.cfg.Upstreams...)
	for _, u := range f.cfg.MoreUpstreams() {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// Upstream returns the upstream currently (or last) followed.
func (f *Follower) Upstream() string { return *f.upstream.Load() }

// Connected reports whether a log stream is open now.
func (f *Follower) Connected() bool { return f.connected.Load() }

// errTooOld says the upstream's log starts after our next index.
type errTooOld struct{ first argent.Index }

func (e errTooOld) Error() string {
	return fmt.Sprintf("pull: upstream log starts at %d: need a snapshot", e.first)
}

// ErrRefused marks an upstream that must not be followed: of another
// dataset, this node itself, or of another history. A Follower moves on to
// another upstream and counts the reconnect as "refused". A Target's
// Bootstrap (or a SnapshotLoader) wraps it to refuse an upstream's
// snapshot.
var ErrRefused = errors.New("pull: upstream refused")

// Run follows upstreams until ctx ends. It starts with the healthiest
// upstream (see pick), moves to another at once when a stream fails or
// stalls, and backs off (50 ms doubling to 2 s) only while no upstream is
// usable.
func (f *Follower) Run(ctx context.Context) error {
	if len(f.cfg.Upstreams) == 0 {
		return fmt.Errorf("pull: no upstreams")
	}
	if f.target == nil {
		return fmt.Errorf("pull: follower has no target")
	}
	backoff := 50 * time.Millisecond
	avoid := ""
	failures := 0 // consecutive streams that applied nothing
	back := false // a listed upstream is back: prefer the listed ones
	for ctx.Err() == nil {
		up := f.pick(ctx, avoid, back)
		back = false
		if up == "" {
			f.cfg.Metrics.UpstreamFailures.Inc()
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(backoff*2, 2*time.Second)
			avoid = ""
			continue
		}
		f.upstream.Store(&up)
		before := f.target.Applied()
		var err error
		if f.target.BootstrapPending() {
			// A cut bootstrap: finish it before following the log.
			err = errTooOld{}
		} else {
			err = f.followOrReturn(ctx, up)
		}
		if errors.Is(err, errReturn) {
			f.cfg.Logger.Info("going back to a listed upstream", "leaving", up)
			back, avoid = true, ""
			continue
		}
		var tooOld errTooOld
		if errors.As(err, &tooOld) && ctx.Err() == nil {
			if err = f.target.Bootstrap(ctx, up); err == nil {
				avoid = ""
				continue // catch up from the snapshot on the same upstream
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		f.cfg.Metrics.Reconnects.WithLabelValues(reason(err)).Inc()
		f.cfg.Logger.Warn("upstream stream ended", "upstream", up, "err", err)
		if f.target.Applied() > before {
			backoff = 50 * time.Millisecond
			failures = 0
		} else {
			f.cfg.Metrics.UpstreamFailures.Inc()
			failures++
			if failures%len(f.upstreams()) == 0 {
				// A full round without progress: do not spin on failing
				// parents.
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				backoff = min(backoff*2, 2*time.Second)
			}
		}
		avoid = up
	}
	return nil
}

// errReturn ends a stream from a learned parent when a listed one is back.
var errReturn = errors.New("pull: a listed upstream is back")

// followOrReturn follows up; when up is a learned parent, it also checks
// every ReturnInterval whether a listed upstream is healthy and caught up
// with this node, and then ends the stream with errReturn.
func (f *Follower) followOrReturn(ctx context.Context, up string) error {
	if f.cfg.ReturnInterval < 0 || slices.Contains(f.cfg.Upstreams, up) {
		return f.follow(ctx, up)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(f.cfg.ReturnInterval)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
			for _, l := range f.cfg.Upstreams {
				if applied, err := f.probe(fctx, l); err == nil && applied >= f.target.Applied() {
					cancel(errReturn)
					return
				}
			}
		}
	}()
	err := f.follow(fctx, up)
	cancel(nil)
	<-done
	if ctx.Err() == nil && errors.Is(context.Cause(fctx), errReturn) {
		return errReturn
	}
	return err
}

func reason(err error) string {
	switch {
	case err == nil:
		return "eof"
	case isCut(err):
		return "cut"
	case errors.Is(err, argent.ErrCorruption):
		return "corruption"
	case errors.Is(err, argent.ErrChainMismatch), errors.Is(err, argent.ErrDatasetMismatch), errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, errStalled):
		return "stall"
	default:
		return "error"
	}
}

var errStalled = errors.New("pull: upstream stalled")

// isCut reports whether a stream ended inside a frame: the upstream went
// away (killed, restarted, a link cut). The partial frame is refused and
// fetched again like a damaged one, but it is not counted as corruption,
// so that a dead upstream does not look like bad data on a dashboard.
func isCut(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }

// child is what this node tells a parent about itself.
func (f *Follower) child() Child {
	return Child{NodeID: f.cfg.NodeID, Addr: f.cfg.Addr, Role: f.cfg.Role, DC: f.cfg.DC, Dataset: f.target.Dataset()}
}

// stream is an open protocol stream under a stall watchdog.
type stream struct {
	// ctx ends when the stream is stopped; its cause is errStalled when the
	// watchdog fired.
	ctx   context.Context
	body  io.ReadCloser
	stall *time.Timer
	// cancel ends ctx, which the transport turns into a failed read.
	cancel  context.CancelCauseFunc
	timeout time.Duration
}

// alive must be called on every frame: it restarts the watchdog.
func (st *stream) alive() { st.stall.Reset(st.timeout) }

// stop ends the stream.
func (st *stream) stop() {
	st.stall.Stop()
	st.cancel(nil)
	st.body.Close()
}

// open starts a protocol request (dial, on f's transport) with a stall
// watchdog: a parent that sends nothing for StallTimeout, while connecting
// or between frames, ends the stream with errStalled.
func (f *Follower) open(ctx context.Context, dial func(ctx context.Context) (io.ReadCloser, error)) (*stream, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	stall := time.AfterFunc(f.cfg.StallTimeout, func() { cancel(errStalled) })
	body, err := dial(ctx)
	if err != nil {
		stall.Stop()
		cancel(nil)
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			return nil, errStalled
		}
		return nil, err
	}
	return &stream{ctx: ctx, body: body, stall: stall, cancel: cancel, timeout: f.cfg.StallTimeout}, nil
}

// readErr turns a read error into errStalled when the watchdog fired.
func readErr(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errStalled) {
		return errStalled
	}
	return err
}

// firstFrame starts reading frames from body and returns the first one's
// payload, which must be of type want.
func (f *Follower) firstFrame(ctx context.Context, body io.Reader, want wire.FrameType) (*wire.Reader, []byte, error) {
	r := wire.NewReader(body, wire.DefaultMaxFrame)
	typ, payload, err := r.ReadFrame()
	if err != nil {
		return nil, nil, f.countCorrupt(readErr(ctx, fmt.Errorf("pull: read first frame: %w", err)))
	}
	if typ != want {
		return nil, nil, f.countCorrupt(fmt.Errorf("%w: first frame has type %d, want %d", argent.ErrCorruption, typ, want))
	}
	return r, payload, nil
}

// follow streams the log from up until an error.
func (f *Follower) follow(ctx context.Context, up string) error {
	from := f.target.Applied() + 1
	stm, err := f.open(ctx, func(ctx context.Context) (io.ReadCloser, error) {
		return f.cfg.Transport.OpenLog(ctx, up, from, f.child())
	})
	if err != nil {
		return err
	}
	defer stm.stop()
	rctx := stm.ctx
	r, payload, err := f.firstFrame(rctx, stm.body, wire.FrameHello)
	if err != nil {
		return err
	}
	hello, err := wire.DecodeHello(payload)
	if err != nil {
		return f.countCorrupt(err)
	}
	if hello.NodeID == f.cfg.NodeID {
		return fmt.Errorf("%w: %s is this node", ErrRefused, up)
	}
	if err := f.target.AdoptDataset(hello.Dataset); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	f.cfg.OnHeartbeat(wire.Heartbeat{RootIndex: hello.RootIndex, RootTime: hello.RootTime, Applied: hello.Applied, RootSent: hello.RootSent})
	f.connected.Store(true)
	defer f.connected.Store(false)

	var w Group
	defer func() {
		if w != nil {
			w.Discard()
		}
	}()
	commit := func() error {
		if w == nil {
			return nil
		}
		err := w.Commit()
		w = nil
		if err != nil {
			return fmt.Errorf("pull: apply: %w", err)
		}
		f.cfg.Metrics.Commits.Inc()
		return nil
	}
	for {
		typ, payload, err := r.ReadFrame()
		if err != nil {
			if cerr := commit(); cerr != nil {
				return cerr
			}
			return f.countCorrupt(readErr(rctx, fmt.Errorf("pull: read frame: %w", err)))
		}
		stm.alive()
		f.cfg.Metrics.BytesReceived.Add(float64(len(payload) + wire.HeaderSize))
		switch typ {
		case wire.FrameEntry:
			e, err := wire.DecodeEntry(payload)
			if err != nil {
				_ = commit()
				return f.countCorrupt(err)
			}
			if w == nil {
				w = f.target.Begin()
			}
			if err := w.AppendEntry(&e); err != nil {
				// Drop the whole uncommitted group (it may hold part of
				// this entry); it is fetched again from the applied index.
				w.Discard()
				w = nil
				if errors.Is(err, argent.ErrChainMismatch) {
					return fmt.Errorf("%w: %w", ErrRefused, err)
				}
				return f.countCorrupt(err)
			}
			f.cfg.Metrics.EntriesReceived.Inc()
			if r.Buffered() == 0 || w.Len() >= f.cfg.MaxGroup {
				if err := commit(); err != nil {
					return err
				}
			}
		case wire.FrameHeartbeat:
			if err := commit(); err != nil {
				return err
			}
			h, err := wire.DecodeHeartbeat(payload)
			if err != nil {
				return f.countCorrupt(err)
			}
			f.cfg.OnHeartbeat(h)
		case wire.FrameTooOld:
			if err := commit(); err != nil {
				return err
			}
			t, err := wire.DecodeTooOld(payload)
			if err != nil {
				return f.countCorrupt(err)
			}
			return errTooOld{first: t.FirstIndex}
		case wire.FrameError:
			_ = commit()
			return fmt.Errorf("pull: upstream error: %s", payload)
		default:
			_ = commit()
			return f.countCorrupt(fmt.Errorf("%w: unexpected frame type %d", argent.ErrCorruption, typ))
		}
	}
}

func (f *Follower) countCorrupt(err error) error {
	if errors.Is(err, argent.ErrCorruption) && !isCut(err) {
		f.cfg.Metrics.Corruptions.Inc()
	}
	return err
}
