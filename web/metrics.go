package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paybridge/paybridge/bridge"
	"github.com/paybridge/paybridge/vcc"
	"github.com/paybridge/paybridge/webhook"
)

// metrics are the server's Prometheus metrics: HTTP traffic by route, the session lifecycle,
// agent sockets, and the Go runtime and process. Labels never carry ids or keys, nor anything a
// client chose: the route is the matched pattern (or "unmatched"), the method one of a fixed set.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// reconcile is what the last background reconciliation found, by kind.
	reconcile *prometheus.GaugeVec
	// outbox reads the webhook outbox's gauges and the dispatcher's delivery counts.
	outbox *outboxCollector
}

func newMetrics(sessions *bridge.Service, hub *bridge.Hub, store bridge.OutboxStore, clock bridge.Clock) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paybridge_http_requests_total", Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "paybridge_http_request_duration_seconds", Help: "Time to answer HTTP requests (socket upgrades: the handshake), by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		reconcile: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paybridge_reconcile_discrepancies",
			Help: "Attempts whose VCC result disagrees with their session, as the last reconciliation found them, by kind.",
		}, []string{"kind"}),
	}
	m.outbox = &outboxCollector{store: store, clock: clock, every: outboxRefresh}
	// Every kind is exported from the start, at 0, so an alert on it needs no absent() guard.
	for _, kind := range reconcileKinds {
		m.reconcile.WithLabelValues(kind).Set(0)
	}
	m.registry.MustRegister(m.requests, m.duration, m.reconcile,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		sessionCollector{sessions}, m.outbox, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "paybridge_agent_sockets", Help: "Agent WebSockets connected now.",
		}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "paybridge_agent_sockets_dropped_total", Help: "Agent sockets closed for falling behind.",
		}, func() float64 { return float64(hub.Dropped()) }),
	)
	return m
}

// observe records one answered request (a nil *metrics records nothing).
func (m *metrics) observe(method, route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(methodLabel(method), route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}

// methodLabel maps a request method onto a fixed set, so a client inventing methods cannot add
// label values (every new one is a series kept for the life of the process).
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// reconcileKinds are the label values of paybridge_reconcile_discrepancies: a fixed set.
var reconcileKinds = []string{bridge.DiscrepancyPaidNotRecorded, bridge.DiscrepancyRecordedNotPaid,
	bridge.DiscrepancyPaidTwice, bridge.DiscrepancyUnverified}

// SetReconcileDiscrepancies exports what a reconciliation found (bridge.Service.Reconcile):
// paybridge_reconcile_discrepancies{kind} becomes the number of found of each kind, 0 for kinds
// not among them. Kinds outside that fixed set are not exported, so no label value is ever added.
func (s *Server) SetReconcileDiscrepancies(found []bridge.Discrepancy) {
	if s.metrics == nil {
		return
	}
	counts := make(map[string]int, len(reconcileKinds))
	for _, d := range found {
		counts[d.Kind]++
	}
	for _, kind := range reconcileKinds {
		s.metrics.reconcile.WithLabelValues(kind).Set(float64(counts[kind]))
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// MetricsHandler serves the Prometheus metrics: what GET /metrics answers on the API listener,
// or, with Options.MetricsElsewhere, on the listener the caller gives it (metrics.listen).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// sessionCollector reads the service's counters at scrape time.
type sessionCollector struct{ sessions *bridge.Service }

var (
	descCreated  = prometheus.NewDesc("paybridge_sessions_created_total", "Sessions started at VCC.", nil, nil)
	descEnded    = prometheus.NewDesc("paybridge_sessions_ended_total", "Sessions that reached a final status, by status.", []string{"status"}, nil)
	descOpen     = prometheus.NewDesc("paybridge_sessions_open", "Sessions pending or active now.", nil, nil)
	descRestarts = prometheus.NewDesc("paybridge_session_restarts_total", "New provider sessions started for an existing session.", nil, nil)
	descPolls    = prometheus.NewDesc("paybridge_vcc_status_polls_total", "VCC session status requests made by the poller.", nil, nil)
	descPollErrs = prometheus.NewDesc("paybridge_vcc_status_poll_errors_total", "Poller status requests that failed.", nil, nil)
)

func (c sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCreated, descEnded, descOpen, descRestarts, descPolls, descPollErrs} {
		ch <- d
	}
}

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sessions.Stats()
	ch <- prometheus.MustNewConstMetric(descCreated, prometheus.CounterValue, float64(st.SessionsCreated))
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.OpenSessions))
	ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts))
	ch <- prometheus.MustNewConstMetric(descPolls, prometheus.CounterValue, float64(st.Polls))
	ch <- prometheus.MustNewConstMetric(descPollErrs, prometheus.CounterValue, float64(st.PollErrors))
	for status, n := range st.Terminal {
		ch <- prometheus.MustNewConstMetric(descEnded, prometheus.CounterValue, float64(n), string(status))
	}
}

// outboxRefresh is how often a scrape may ask the store about the pending webhooks; scrapes in
// between are answered from the last reading, so a busy Prometheus never loads the database.
const outboxRefresh = 5 * time.Second

// ExportWebhookDeliveries makes paybridge_webhook_deliveries_total{result} report stats (the
// webhook.Dispatcher's Deliveries); until it is called, every result reads 0.
func (s *Server) ExportWebhookDeliveries(stats func() webhook.DeliveryStats) {
	if s.metrics != nil {
		s.metrics.outbox.deliveries.Store(&stats)
	}
}

// outboxCollector exports the webhook outbox: how many deliveries are pending and the age of the
// oldest (from the store, at most every outboxRefresh), and the attempts by result.
type outboxCollector struct {
	store bridge.OutboxStore
	clock bridge.Clock
	every time.Duration

	mu      sync.Mutex
	readAt  time.Time // zero: never read
	pending int
	oldest  time.Time

	deliveries atomic.Pointer[func() webhook.DeliveryStats]
}

var (
	descOutboxPending = prometheus.NewDesc("paybridge_webhook_outbox_pending",
		"Merchant webhook deliveries pending (not yet delivered nor abandoned).", nil, nil)
	descOutboxOldest = prometheus.NewDesc("paybridge_webhook_outbox_oldest_pending_seconds",
		"Age of the oldest pending merchant webhook delivery, in seconds; 0 when none is pending.", nil, nil)
	descDeliveries = prometheus.NewDesc("paybridge_webhook_deliveries_total",
		"Merchant webhook delivery attempts, by result: delivered, failed (to be retried), abandoned.", []string{"result"}, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOutboxPending
	ch <- descOutboxOldest
	ch <- descDeliveries
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.clock.Now()
	c.mu.Lock()
	if c.readAt.IsZero() || now.Sub(c.readAt) >= c.every || now.Before(c.readAt) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// A failed reading keeps the last one: the store's trouble shows on /readyz.
		if n, oldest, err := c.store.OutboxPending(ctx); err == nil {
			c.pending, c.oldest, c.readAt = n, oldest, now
		}
		cancel()
	}
	pending, oldest := c.pending, c.oldest
	c.mu.Unlock()
	age := 0.0
	if pending > 0 && !oldest.IsZero() {
		age = max(now.Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(descOutboxPending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(descOutboxOldest, prometheus.GaugeValue, age)
	var st webhook.DeliveryStats
	if f := c.deliveries.Load(); f != nil {
		st = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(st.Delivered), "delivered")
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(st.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(st.Abandoned), "abandoned")
}

// VCC call metrics. They live apart from the server's other metrics because the VCC client is
// built before the server: the app makes a VCCMetrics, hands its Observe to vcc.Options.Observe
// and the VCCMetrics itself to Options.VCCMetrics, which registers it.

// VCCMetrics counts and times paybridge's HTTP attempts to VCC by endpoint and outcome. Label
// values come only from vcc.Endpoints and vcc.Outcomes; anything else is counted as "other" /
// "error", so no caller can add a series.
type VCCMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewVCCMetrics returns VCC call metrics with every endpoint and outcome series at 0, so an
// alert on a rate needs no absent() guard.
func NewVCCMetrics() *VCCMetrics {
	v := &VCCMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paybridge_vcc_requests_total",
			Help: "HTTP attempts to VCC, by endpoint (token, create, create_digital, status) and outcome " +
				"(ok, 4xx, 5xx, timeout, error). Each attempt counts: a call retried twice counts three times.",
		}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "paybridge_vcc_request_duration_seconds",
			Help: "Time of each HTTP attempt to VCC, to the end of its answer (or its failure), by endpoint.",
			// From a warm connection's few milliseconds to past the 10 s request timeout.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
	}
	for _, e := range vcc.Endpoints {
		for _, o := range vcc.Outcomes {
			v.requests.WithLabelValues(e, o)
		}
		v.duration.WithLabelValues(e)
	}
	return v
}

// Observe records one HTTP attempt to VCC; it is what vcc.Options.Observe is set to.
func (v *VCCMetrics) Observe(endpoint, outcome string, d time.Duration) {
	if !slices.Contains(vcc.Endpoints, endpoint) {
		endpoint = vcc.EndpointOther
	}
	if !slices.Contains(vcc.Outcomes, outcome) {
		outcome = vcc.OutcomeError
	}
	v.requests.WithLabelValues(endpoint, outcome).Inc()
	v.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// register adds v's collectors to the server's registry.
func (v *VCCMetrics) register(r prometheus.Registerer) {
	r.MustRegister(v.requests, v.duration)
}
