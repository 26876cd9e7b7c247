package pool

import (
	"context"
	"errors"

	"github.com/aurax/aurax/models"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one upstream call, the status label of
// aurax_engine_requests_total.
const (
	OutcomeOK          = "ok"
	OutcomeClientError = "4xx"
	OutcomeServerError = "5xx"
	OutcomeUnreachable = "unreachable"
	OutcomeTimeout     = "timeout"
	OutcomeCanceled    = "canceled"
)

var outcomes = []string{OutcomeOK, OutcomeClientError, OutcomeServerError, OutcomeUnreachable, OutcomeTimeout, OutcomeCanceled}

func outcome(err error) string {
	var ue *models.UpstreamError
	var nf *models.ModelNotFoundError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, models.ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, models.ErrUnavailable):
		return OutcomeUnreachable
	case errors.As(err, &nf):
		return OutcomeClientError
	case errors.As(err, &ue) && ue.Status >= 400 && ue.Status < 500:
		return OutcomeClientError
	}
	return OutcomeServerError
}

// poolMetrics are the engine metrics; label engine is host:port, and an
// engine's series go when it leaves the pool. A nil *poolMetrics records
// nothing.
type poolMetrics struct {
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
	loads    *prometheus.CounterVec

	up, inFlight, slots, loaded *prometheus.Desc
	p                           *Pool
}

func newPoolMetrics(reg prometheus.Registerer, p *Pool) *poolMetrics {
	if reg == nil {
		return nil
	}
	ns := "aurax"
	m := &poolMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "engine_requests_total",
			Help: "Upstream calls to each engine by outcome (ok, 4xx, 5xx, unreachable, timeout, canceled); a failover counts twice."},
			[]string{"engine", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "engine_retries_total",
			Help: "Calls that failed on this engine before their first byte and were retried on another."},
			[]string{"engine"}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "engine_model_loads_total",
			Help: "Requests routed to this engine although it did not have their model loaded (it loaded it)."},
			[]string{"engine"}),
		up: prometheus.NewDesc(ns+"_engine_up", "1 when the engine takes requests (ready), 0 otherwise; label state says where it stands.",
			[]string{"engine", "state"}, nil),
		inFlight: prometheus.NewDesc(ns+"_engine_in_flight", "Requests this gateway has in flight on the engine.", []string{"engine"}, nil),
		slots:    prometheus.NewDesc(ns+"_engine_slots", "Slots of the engine this gateway may use (its share when gateways share it).", []string{"engine"}, nil),
		loaded:   prometheus.NewDesc(ns+"_engine_model_loaded", "1 for each model the engine has loaded (/api/ps).", []string{"engine", "model"}, nil),
		p:        p,
	}
	reg.MustRegister(m.requests, m.retries, m.loads, m)
	return m
}

func (m *poolMetrics) added(e *Engine) {
	if m == nil {
		return
	}
	for _, o := range outcomes {
		m.requests.WithLabelValues(e.name, o)
	}
	m.retries.WithLabelValues(e.name)
	m.loads.WithLabelValues(e.name)
}

func (m *poolMetrics) removed(e *Engine) {
	if m == nil {
		return
	}
	for _, o := range outcomes {
		m.requests.DeleteLabelValues(e.name, o)
	}
	m.retries.DeleteLabelValues(e.name)
	m.loads.DeleteLabelValues(e.name)
}

func (m *poolMetrics) request(e *Engine, err error) {
	if m != nil {
		m.requests.WithLabelValues(e.name, outcome(err)).Inc()
	}
}

func (m *poolMetrics) retry(e *Engine) {
	if m != nil {
		m.retries.WithLabelValues(e.name).Inc()
	}
}

func (m *poolMetrics) modelLoad(e *Engine) {
	if m != nil {
		m.loads.WithLabelValues(e.name).Inc()
	}
}

// Describe implements prometheus.Collector for the gauges.
func (m *poolMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.up
	ch <- m.inFlight
	ch <- m.slots
	ch <- m.loaded
}

// Collect implements prometheus.Collector: the gauges, read at scrape time.
func (m *poolMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, s := range m.p.Engines() {
		up := 0.0
		if s.State == StateReady.String() || s.State == StateUnknown.String() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up, s.Name, s.State)
		ch <- prometheus.MustNewConstMetric(m.inFlight, prometheus.GaugeValue, float64(s.InFlight), s.Name)
		ch <- prometheus.MustNewConstMetric(m.slots, prometheus.GaugeValue, float64(s.Slots), s.Name)
		for _, model := range s.Loaded {
			ch <- prometheus.MustNewConstMetric(m.loaded, prometheus.GaugeValue, 1, s.Name, model)
		}
	}
}
