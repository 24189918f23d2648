package resp

import "github.com/prometheus/client_golang/prometheus"

// metrics are the RESP port's Prometheus metrics: how many clients it has,
// what they ask, how often a command had to leave the event loop, and why
// connections were cut.
type metrics struct {
	connections prometheus.Gauge
	commands    map[string]prometheus.Counter // by upper-case name; "other" for the rest
	offLoop     prometheus.Counter
	cut         *prometheus.CounterVec
}

// countedCommands are the command names counted under their own label.
var countedCommands = []string{"GET", "MGET", "EXISTS", "SCAN", "SET", "DEL", "PING", "INFO", "READINDEX", "other"}

// Reasons a connection is cut, the labels of argent_resp_cut_total.
const (
	cutProtocol  = "protocol_error" // malformed input
	cutBacklog   = "input_limit"    // too much input behind a waiting command
	cutNotReader = "not_reading"    // took no replies for writeTimeout
)

func newMetrics(reg prometheus.Registerer) *metrics {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "argent_resp_commands_total", Help: "RESP commands run, by command (other: any other name).",
	}, []string{"command"})
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "argent_resp_connections", Help: "Open RESP connections.",
		}),
		commands: make(map[string]prometheus.Counter, len(countedCommands)),
		offLoop: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "argent_resp_goroutine_handoffs_total",
			Help: "Times a connection's commands left the event loop for a goroutine (writes, SCAN, READINDEX waits, a proxy's misses).",
		}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "argent_resp_cut_total", Help: "RESP connections closed by the server, by reason.",
		}, []string{"reason"}),
	}
	for _, name := range countedCommands {
		m.commands[name] = cv.WithLabelValues(name)
	}
	for _, r := range []string{cutProtocol, cutBacklog, cutNotReader} {
		m.cut.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.connections, cv, m.offLoop, m.cut)
	}
	return m
}

// command counts one command by its upper-case name.
func (m *metrics) command(name string) {
	c, ok := m.commands[name]
	if !ok {
		c = m.commands["other"]
	}
	c.Inc()
}
