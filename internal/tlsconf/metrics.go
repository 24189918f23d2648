package tlsconf

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the refusals of a node's TLS listeners.
type Metrics struct {
	handshake    *prometheus.CounterVec
	certRequired prometheus.Counter
}

// NewMetrics registers the counters in reg (nowhere if reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handshake: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "argent_tls_handshake_errors_total",
			Help: "TLS handshakes this node refused or that failed, by reason (untrusted_peer: a certificate the CA did not sign).",
		}, []string{"reason"}),
		certRequired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "argent_tls_client_cert_required_total",
			Help: "Node-to-node requests refused with 403 because the connection carried no client certificate.",
		}),
	}
	for _, r := range []string{ReasonUntrustedPeer, ReasonPeerAlert, ReasonNotTLS, ReasonTimeout, ReasonClosed, ReasonOther} {
		m.handshake.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.handshake, m.certRequired)
	}
	return m
}

func (m *Metrics) handshakeError(reason string) {
	if m != nil {
		m.handshake.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) certMissing() {
	if m != nil {
		m.certRequired.Inc()
	}
}
