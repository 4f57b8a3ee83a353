package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The two benchmarks run the same constant-rate attack against the same
// no-op loopback server: this package's engine, and plain vegeta with its
// own metrics. Compare achieved req/s, p99 and CPU to see what bucketing and
// intended-time latency cost. benchRate must stay within what the machine
// can serve, or both only measure the overload. Plain vegeta's p99 is from
// the actual send and it drops what it could not send by the deadline; this
// engine's p99 is from the intended send, so a starved loadgen shows up.
const (
	benchRate     = 1000
	benchDuration = 2 * time.Second
)

func noop(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkAttack(b *testing.B) {
	srv := noop(b)
	var tot Totals
	var reqs int64
	var wall, cpu float64
	for b.Loop() {
		final, err := Attack(context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: benchRate, Duration: benchDuration},
			func(bk Bucket) {
				if err := tot.Add(bk); err != nil {
					b.Fatal(err)
				}
			})
		if err != nil {
			b.Fatal(err)
		}
		reqs += final.Requests
		wall += final.WallSeconds
		cpu += final.CPUSeconds
	}
	b.ReportMetric(float64(reqs)/wall, "req/s")
	b.ReportMetric(float64(tot.Latency.ValueAtQuantile(99))/1000, "p99-ms")
	b.ReportMetric(cpu/wall, "cpu-cores")
	b.ReportMetric(float64(tot.Errors), "errors")
}

func BenchmarkVegeta(b *testing.B) {
	srv := noop(b)
	var m vegeta.Metrics
	cpu0 := cpuSeconds()
	start := time.Now()
	for b.Loop() {
		atk := vegeta.NewAttacker(vegeta.MaxBody(0))
		tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: srv.URL + "/api/hello"})
		for r := range atk.Attack(tr, vegeta.ConstantPacer{Freq: benchRate, Per: time.Second}, benchDuration, "bench") {
			m.Add(r)
		}
	}
	wall := time.Since(start).Seconds()
	m.Close()
	b.ReportMetric(float64(m.Requests)/wall, "req/s")
	b.ReportMetric(float64(m.Latencies.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric((cpuSeconds()-cpu0)/wall, "cpu-cores")
	b.ReportMetric(float64(m.Requests)-float64(m.Success)*float64(m.Requests), "errors")
}
