package wan

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// statsCollector exposes the engine's per-link counters at scrape time, so
// the packet path carries no metric updates of its own.
type statsCollector struct {
	e *Engine
}

var (
	descForwardedPackets = prometheus.NewDesc("wan_forwarded_packets_total", "Packets forwarded on a directed region link.", []string{"from", "to"}, nil)
	descForwardedBytes   = prometheus.NewDesc("wan_forwarded_bytes_total", "Bytes forwarded on a directed region link.", []string{"from", "to"}, nil)
	descDroppedPackets   = prometheus.NewDesc("wan_dropped_packets_total", "Packets dropped on a directed region link, by cause.", []string{"from", "to", "cause"}, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descForwardedPackets
	ch <- descForwardedBytes
	ch <- descDroppedPackets
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.e.Stats() {
		ch <- prometheus.MustNewConstMetric(descForwardedPackets, prometheus.CounterValue, float64(s.ForwardedPackets), s.From, s.To)
		ch <- prometheus.MustNewConstMetric(descForwardedBytes, prometheus.CounterValue, float64(s.ForwardedBytes), s.From, s.To)
		for cause, n := range map[string]uint64{"partition": s.PartitionDrops, "loss": s.LossDrops, "queue": s.QueueDrops} {
			ch <- prometheus.MustNewConstMetric(descDroppedPackets, prometheus.CounterValue, float64(n), s.From, s.To, cause)
		}
	}
}

// newRegistry holds the wan's metrics plus the process and Go collectors
// every faultline node exposes.
func newRegistry(e *Engine) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{e}, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return reg
}
