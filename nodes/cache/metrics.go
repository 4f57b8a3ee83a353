package cache

import "github.com/prometheus/client_golang/prometheus"

// collector exports the same figures as the stats command, read once per
// scrape so the hot path carries no metric updates.
type collector struct {
	srv   *Server
	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
	value      func(Stats, *Server) float64
}

var metricDefs = []metricDef{
	{"faultline_cache_items", "Items currently stored (curr_items).", prometheus.GaugeValue, func(st Stats, _ *Server) float64 { return float64(st.CurrItems) }},
	{"faultline_cache_bytes", "Bytes used by items (bytes).", prometheus.GaugeValue, func(st Stats, _ *Server) float64 { return float64(st.Bytes) }},
	{"faultline_cache_limit_bytes", "Memory bound (limit_maxbytes).", prometheus.GaugeValue, func(st Stats, _ *Server) float64 { return float64(st.LimitMaxBytes) }},
	{"faultline_cache_connections", "Open client connections (curr_connections).", prometheus.GaugeValue, func(_ Stats, s *Server) float64 { return float64(s.currConns.Load()) }},
	{"faultline_cache_connections_total", "Accepted client connections (total_connections).", prometheus.CounterValue, func(_ Stats, s *Server) float64 { return float64(s.totalConns.Load()) }},
	{"faultline_cache_get_total", "Keys requested by get commands (cmd_get).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.CmdGet) }},
	{"faultline_cache_set_total", "Storage commands (cmd_set).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.CmdSet) }},
	{"faultline_cache_get_hits_total", "Gets that found a live item (get_hits).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.GetHits) }},
	{"faultline_cache_get_misses_total", "Gets that found nothing (get_misses).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.GetMisses) }},
	{"faultline_cache_evictions_total", "Live items evicted to stay under the memory bound (evictions).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.Evictions) }},
	{"faultline_cache_reclaimed_total", "Expired items reclaimed (reclaimed).", prometheus.CounterValue, func(st Stats, _ *Server) float64 { return float64(st.Reclaimed) }},
}

func newCollector(srv *Server) *collector {
	c := &collector{srv: srv, descs: make(map[string]*prometheus.Desc, len(metricDefs))}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, nil, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.store.Stats()
	for _, d := range metricDefs {
		ch <- prometheus.MustNewConstMetric(c.descs[d.name], d.kind, d.value(st, c.srv))
	}
}
