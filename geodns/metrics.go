package geodns

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// The query counters use small fixed label sets: a label per arbitrary qtype
// would let any client grow the series without bound, and resolving fixed
// counters up front keeps label hashing off the answer path.
var (
	qtypeLabels = []string{"A", "AAAA", "NS", "SOA", "ANY", "OTHER"}
	rcodeLabels = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER"}
)

// unknownRegion labels clients that match no region subnet.
const unknownRegion = "unknown"

type metrics struct {
	reg           *prometheus.Registry
	queries       [][]prometheus.Counter // [qtype][rcode]
	answers       [][]prometheus.Counter // [client region, unknown last][served region]
	healthy       *prometheus.GaugeVec
	healthChanges *prometheus.CounterVec
}

func newMetrics(regions []Region) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geodns_queries_total",
		Help: "DNS queries answered, by query type and response code.",
	}, []string{"qtype", "rcode"})
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geodns_answers_total",
		Help: "Geo-routed answers, by the client's region and the region whose LB was answered.",
	}, []string{"client_region", "served_region"})
	m.healthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "geodns_region_healthy",
		Help: "1 while the region's LB passes its health checks.",
	}, []string{"region"})
	m.healthChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geodns_health_changes_total",
		Help: "Health state changes, by region and new state.",
	}, []string{"region", "to"})
	m.reg.MustRegister(queries, answers, m.healthy, m.healthChanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.queries = make([][]prometheus.Counter, len(qtypeLabels))
	for i, t := range qtypeLabels {
		m.queries[i] = make([]prometheus.Counter, len(rcodeLabels))
		for j, rc := range rcodeLabels {
			m.queries[i][j] = queries.WithLabelValues(t, rc)
		}
	}
	clients := make([]string, 0, len(regions)+1)
	for _, r := range regions {
		clients = append(clients, r.Name)
		m.healthy.WithLabelValues(r.Name).Set(1)
	}
	clients = append(clients, unknownRegion)
	m.answers = make([][]prometheus.Counter, len(clients))
	for i, c := range clients {
		m.answers[i] = make([]prometheus.Counter, len(regions))
		for j, r := range regions {
			m.answers[i][j] = answers.WithLabelValues(c, r.Name)
		}
	}
	return m
}

func qtypeIndex(t uint16) int {
	switch t {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeNS:
		return 2
	case dns.TypeSOA:
		return 3
	case dns.TypeANY:
		return 4
	}
	return 5
}

// rcodeIndex has a label for every rcode ServeDNS returns today, and for
// SERVFAIL, which it must never return: its count proves that.
func rcodeIndex(rc int) int {
	switch rc {
	case dns.RcodeSuccess:
		return 0
	case dns.RcodeFormatError:
		return 1
	case dns.RcodeServerFailure:
		return 2
	case dns.RcodeNameError:
		return 3
	case dns.RcodeNotImplemented:
		return 4
	case dns.RcodeRefused:
		return 5
	case dns.RcodeBadVers:
		return 6
	}
	return 7
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		// A plain counter's Write cannot fail; zero is the honest fallback.
		return 0
	}
	return m.GetCounter().GetValue()
}

// answerCounts is the answers counter as client region → served region →
// count, for State.
func (m *metrics) answerCounts(regions []Region) map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64, len(m.answers))
	for i, row := range m.answers {
		client := unknownRegion
		if i < len(regions) {
			client = regions[i].Name
		}
		out[client] = make(map[string]uint64, len(row))
		for j, c := range row {
			out[client][regions[j].Name] = uint64(counterValue(c))
		}
	}
	return out
}

// rcodeCounts sums the queries counter over query types, by response code.
func (m *metrics) rcodeCounts() map[string]uint64 {
	out := make(map[string]uint64, len(rcodeLabels))
	for _, row := range m.queries {
		for j, c := range row {
			out[rcodeLabels[j]] += uint64(counterValue(c))
		}
	}
	return out
}
