package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/pull"
	"github.com/argent-kv/argent/internal/relay"
	"github.com/argent-kv/argent/internal/statustree"
	"github.com/argent-kv/argent/internal/ui"
)

// startRelay starts a relay: its log buffer fed from a replica, the pull
// protocol for its children, the lookup protocol and the DC's miss stream.
// It keeps nothing on disk, so its node ID is new at every start.
func startRelay(ctx context.Context, cfg Config) (*Node, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("node: relay ID: %w", err)
	}
	n, err := newNode(cfg, id)
	if err != nil {
		return nil, err
	}
	pm := pull.NewMetrics(n.reg)
	rl, err := relay.New(relay.Config{
		NodeID: n.nodeID, Addr: n.Addr(), DC: cfg.DC, Upstreams: cfg.Upstreams, LogBuffer: cfg.LogBuffer,
		Limits: cfg.Limits, LookupTimeout: cfg.MissWait, Heartbeat: cfg.Heartbeat, StallTimeout: cfg.StallTimeout,
		HTTPClient: n.hopClient(), Transport: n.pullTransport(), PullMetrics: pm, Logger: n.log,
	})
	if err != nil {
		n.ln.Close()
		return nil, err
	}
	n.relay, n.pullS, n.follower = rl, rl.PullServer(), rl
	n.registerRelayMetrics()

	ctx, n.cancel = context.WithCancel(ctx)
	n.goRun(func() { _ = rl.Run(ctx) })
	mux := http.NewServeMux()
	rl.Register(mux)
	ui.Register(mux, n.Addr(), &statustree.Walker{Metrics: true, HTTP: &http.Client{}})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	n.srv = &http.Server{Handler: n.handler(n.relayHandler(mux)), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	n.goRun(func() {
		if err := n.srv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Error("serve", "err", err)
		}
	})
	n.startTLSWatch(ctx)
	n.warnPlain()
	n.log.Info("relay started", "upstreams", cfg.Upstreams, "tls", n.tls != nil)
	return n, nil
}

var _ follower = (*relay.Relay)(nil)

// relayHandler serves a relay's status and metrics, refuses the client
// API (a relay holds no data: clients read from a proxy or a replica), and
// hands the node-to-node routes to mux.
func (n *Node) relayHandler(mux *http.ServeMux) http.Handler {
	metrics := promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/v1/status":
			b, _ := json.Marshal(n.Status())
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(append(b, '\n'))
		case p == "/metrics":
			metrics.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/v1/"):
			// 405, not 404: a 404 on /v1/kv/K would read as "K is absent".
			b, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeInvalid,
				Message: fmt.Sprintf("argent: %s %s: a relay serves no client reads or writes; ask a proxy or a replica", r.Method, p)}})
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Allow", "")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write(append(b, '\n'))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// registerRelayMetrics exports a relay's position, lag, log buffer,
// lookups and miss stream.
func (n *Node) registerRelayMetrics() {
	gauge := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	counter := func(name, help string, fn func() float64) {
		n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
	}
	n.registerPositionGauges()
	rl := n.relay
	st := rl.Stats()
	gauge("argent_relay_log_bytes", "Bytes of log entries in the relay's buffer.", func() float64 { return float64(rl.Ring().Bytes()) })
	gauge("argent_log_first_index", "Oldest log index this node still holds.", func() float64 { return float64(rl.Ring().Source().LogFirst()) })
	counter("argent_relay_lookups_total", "Keys children asked the relay to look up.", func() float64 { return float64(st.Lookups.Load()) })
	counter("argent_relay_upstream_lookups_total", "Keys the relay asked replicas for, after sharing (retries included).", func() float64 { return float64(st.UpstreamLookups.Load()) })
	counter("argent_relay_lookup_shared_total", "Keys that shared a lookup already under way for the same key and index.", func() float64 { return float64(st.Shared.Load()) })
	counter("argent_wire_corrupt_answers_total", "Answers of upstream replicas refused because their checksums did not match (damaged in transit).", func() float64 { return float64(st.Corrupt.Load()) })
	counter("argent_relay_misses_published_total", "Resolved misses published on the DC's miss stream.", func() float64 { return float64(rl.HubStats().Published) })
	counter("argent_relay_subscriber_drops_total", "Misses dropped from slow subscribers' buffers.", func() float64 { return float64(rl.HubStats().Drops) })
	gauge("argent_relay_subscribers", "Subscribers of the miss stream.", func() float64 { return float64(rl.HubStats().Subscribers) })
}
