package lb

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	// Per policy, so runs with different policies compare on one dashboard.
	requests prometheus.Counter
	latency  prometheus.Observer
	retries  prometheus.Counter
	noneUp   prometheus.Counter

	bRequests, bErrors, bEjections, bChecks *prometheus.CounterVec
	bInflight, bState                       *prometheus.GaugeVec
	bLeft                                   *prometheus.GaugeVec

	// Every state change, timed as it happens (GET /lb/transitions): when
	// the lb took a dead backend out, not a scrape interval later.
	tmu         sync.Mutex
	last        map[string]string // backend → state last set
	transitions []Transition      // the latest maxTransitions
}

// Transition is one change of a backend's state.
type Transition struct {
	Addr string    `json:"addr"`
	From string    `json:"from"` // "" for a new backend
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

// maxTransitions bounds the list; autoscaling churn cannot grow it.
const maxTransitions = 1000

type backendMetrics struct {
	requests, errors, ejections, checks prometheus.Counter
	inflight                            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, policy string) *metrics {
	byPolicy := prometheus.Labels{"policy": policy}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: byPolicy})
	}
	perBackend := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"backend"})
	}
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lb_request_duration_seconds", Help: "Time to answer a request through the LB, retries included.",
		ConstLabels: byPolicy,
		Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	m := &metrics{
		requests:   counter("lb_requests_total", "Requests the LB received for its backends."),
		latency:    latency,
		retries:    counter("lb_retries_total", "GET/HEAD requests retried on another backend after a refused connection."),
		noneUp:     counter("lb_no_backend_total", "Requests answered 502 because no backend was in rotation."),
		bRequests:  perBackend("lb_backend_requests_total", "Requests proxied to a backend."),
		bErrors:    perBackend("lb_backend_errors_total", "Proxied requests that failed at the backend (connect, reset, timeout)."),
		bEjections: perBackend("lb_backend_ejections_total", "Times a backend was ejected after consecutive proxy errors."),
		bChecks:    perBackend("lb_backend_checks_total", "Active health checks of a backend."),
		bInflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lb_backend_in_flight", Help: "Requests running on a backend.",
		}, []string{"backend"}),
		bState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lb_backend_state", Help: "1 for the backend's current state (unchecked, up, down, ejected, draining).",
		}, []string{"backend", "state"}),
		bLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lb_backend_left_rotation_timestamp_seconds", Help: "When the backend last left the rotation (checks failed, ejected or drained), in unix seconds.",
		}, []string{"backend"}),
		last: map[string]string{},
	}
	reg.MustRegister(m.requests, latency, m.retries, m.noneUp,
		m.bRequests, m.bErrors, m.bEjections, m.bChecks, m.bInflight, m.bState, m.bLeft)
	return m
}

func (m *metrics) backend(addr string) backendMetrics {
	return backendMetrics{
		requests:  m.bRequests.WithLabelValues(addr),
		errors:    m.bErrors.WithLabelValues(addr),
		ejections: m.bEjections.WithLabelValues(addr),
		checks:    m.bChecks.WithLabelValues(addr),
		inflight:  m.bInflight.WithLabelValues(addr),
	}
}

func (m *metrics) setState(addr, state string) {
	m.transition(addr, state)
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.bState.WithLabelValues(addr, s).Set(v)
	}
}

// forget drops a gone backend's gauges so autoscaling churn does not leave
// stale series; its counters stay, as counters should.
func (m *metrics) forget(addr string) {
	m.bInflight.DeleteLabelValues(addr)
	m.bState.DeletePartialMatch(prometheus.Labels{"backend": addr})
	m.bLeft.DeleteLabelValues(addr)
	m.tmu.Lock()
	delete(m.last, addr)
	m.tmu.Unlock()
}

// transition records addr's state if it changed. setState runs on every
// rotation rebuild, right after a check or a proxy error changed a
// backend, so the time is the lb's decision's.
func (m *metrics) transition(addr, state string) {
	now := time.Now()
	m.tmu.Lock()
	defer m.tmu.Unlock()
	from := m.last[addr]
	if from == state {
		return
	}
	m.last[addr] = state
	if len(m.transitions) == maxTransitions {
		m.transitions = append(m.transitions[:0], m.transitions[1:]...)
	}
	m.transitions = append(m.transitions, Transition{Addr: addr, From: from, To: state, At: now})
	if from == StateUp {
		m.bLeft.WithLabelValues(addr).Set(float64(now.UnixNano()) / 1e9)
	}
}

// Transitions are the backends' state changes, oldest first.
func (m *metrics) Transitions() []Transition {
	m.tmu.Lock()
	defer m.tmu.Unlock()
	return append([]Transition(nil), m.transitions...)
}
