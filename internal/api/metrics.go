package api

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Server's Prometheus collectors. The children of the hot
// label combinations are resolved once and cached, so observing a request
// takes no map lookups and no allocations.
type metrics struct {
	requests *prometheus.CounterVec   // argent_http_requests_total{route,code}
	duration *prometheus.HistogramVec // argent_http_request_duration_seconds{route}
	watchers prometheus.Gauge         // argent_http_watch_streams

	routes [numRoutes]routeMetrics
}

type routeMetrics struct {
	duration prometheus.Observer
	codes    [len(cachedCodes)]atomic.Pointer[counterBox] // made on first use
}

type counterBox struct{ c prometheus.Counter }

// cachedCodes are the statuses whose counters are cached per route; others
// are looked up on each use.
var cachedCodes = [...]int{200, 400, 404, 405, 409, 410, 413, 500, 503, 504}

func codeSlot(code int) int {
	for i, c := range cachedCodes {
		if c == code {
			return i
		}
	}
	return -1
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "argent_http_requests_total",
			Help: "Client API requests answered, by route and HTTP status.",
		}, []string{"route", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "argent_http_request_duration_seconds",
			Help: "Time to answer a client API request, by route (watch: the life of the stream).",
			// 50us to about 13s.
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10),
		}, []string{"route"})),
		watchers: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "argent_http_watch_streams",
			Help: "Watch streams open now.",
		})),
	}
	for rt := range numRoutes {
		m.routes[rt].duration = m.duration.WithLabelValues(routeNames[rt])
	}
	return m
}

// register registers c, or returns the collector already registered in its
// place (a second Server on one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic("api: register metrics: " + err.Error())
	}
	return c
}

// observe records one answered request.
func (m *metrics) observe(rt route, code int, took time.Duration) {
	rm := &m.routes[rt]
	rm.duration.Observe(took.Seconds())
	i := codeSlot(code)
	if i < 0 {
		m.requests.WithLabelValues(routeNames[rt], strconv.Itoa(code)).Inc()
		return
	}
	b := rm.codes[i].Load()
	if b == nil {
		b = &counterBox{c: m.requests.WithLabelValues(routeNames[rt], strconv.Itoa(code))}
		rm.codes[i].Store(b)
	}
	b.c.Inc()
}

// promhttpHandler serves the registry's metrics.
func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
