package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BenchmarkOpenLoopVsVegeta runs, in each iteration, this package's
// open-loop engine and then the plain vegeta library at the same constant
// rate against the same no-op loopback server, and reports both side by
// side. The server shares the machine's cores with both, so the figures are
// a floor. Plain vegeta's p99 is from the actual send and it drops what it
// could not send by the deadline; this engine's p99 is from the intended
// send, so a starved loadgen shows up in it: an equal p99 is a stricter
// result here. The 1-minute load average is reported, since other work on a
// shared machine moves every figure.
func BenchmarkOpenLoopVsVegeta(b *testing.B) {
	rate := 10_000
	if s := os.Getenv("FAULTLINE_BENCH_RATE"); s != "" {
		r, err := strconv.Atoi(s)
		if err != nil || r <= 0 {
			b.Fatalf("FAULTLINE_BENCH_RATE=%q: want a positive integer", s)
		}
		rate = r
	}
	const dur = 2 * time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	base, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}

	var fl, vg struct {
		requests, target, errors int64
		wall, cpu                float64
	}
	var flTot Totals
	var vgm vegeta.Metrics
	vgIntended := NewHistogram()
	load0 := loadAvg()
	runFaultline := func() {
		final, err := Attack(context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: float64(rate), Duration: dur},
			func(bk Bucket) {
				if err := flTot.Add(bk); err != nil {
					b.Fatal(err)
				}
			})
		if err != nil {
			b.Fatal(err)
		}
		fl.requests += final.Requests
		fl.target += final.Target
		fl.wall += dur.Seconds()
		fl.cpu += final.CPUSeconds
	}
	runVegeta := func() {
		cpu0 := cpuSeconds()
		atk := vegeta.NewAttacker(vegeta.MaxBody(0))
		tr := workloads["api"].targeter(base) // the same request mix
		var n int64
		began := time.Now()
		for r := range atk.Attack(tr, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, dur, "bench") {
			vgm.Add(r)
			// The constant pacer meant request seq for began + (seq+1)/rate:
			// measured from there, vegeta's p99 is on this engine's footing.
			intended := began.Add(time.Duration(r.Seq+1) * time.Second / time.Duration(rate))
			us := r.Timestamp.Add(r.Latency).Sub(intended).Microseconds()
			_ = vgIntended.RecordValue(max(us, 1))
			n++
		}
		vg.requests += n
		vg.target += int64(rate) * int64(dur/time.Second)
		vg.wall += dur.Seconds()
		vg.cpu += cpuSeconds() - cpu0
	}
	// Whichever goes second finds the server warm: take turns going first.
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			runFaultline()
			runVegeta()
		} else {
			runVegeta()
			runFaultline()
		}
	}
	vgm.Close()
	load1 := loadAvg()

	flRate, vgRate := float64(fl.requests)/fl.wall, float64(vg.requests)/vg.wall
	flP99 := float64(flTot.Latency.ValueAtQuantile(99)) / 1000
	vgP99 := float64(vgm.Latencies.P99.Microseconds()) / 1000
	vgP99Intended := float64(vgIntended.ValueAtQuantile(99)) / 1000
	b.ReportMetric(flRate, "faultline-req/s")
	b.ReportMetric(float64(fl.requests)/float64(fl.target), "faultline-achieved/target")
	b.ReportMetric(flP99, "faultline-p99-ms")
	b.ReportMetric(fl.cpu/fl.wall, "faultline-cpu-cores")
	b.ReportMetric(float64(flTot.Errors), "faultline-errors")
	b.ReportMetric(vgRate, "vegeta-req/s")
	b.ReportMetric(float64(vg.requests)/float64(vg.target), "vegeta-achieved/target")
	b.ReportMetric(vgP99, "vegeta-p99-ms")
	b.ReportMetric(vgP99Intended, "vegeta-p99-intended-ms")
	b.ReportMetric(vg.cpu/vg.wall, "vegeta-cpu-cores")
	b.ReportMetric(flRate/vgRate, "faultline/vegeta")
	b.ReportMetric(load0, "loadavg-before")
	b.ReportMetric(load1, "loadavg-after")
	b.Logf("target %d req/s for %v: faultline %.0f req/s (%.3f of target, p99 %.2f ms from intended send, %d errors); "+
		"vegeta %.0f req/s (%.3f, p99 %.2f ms from intended send, %.2f ms from actual send); ratio %.3f; load average %.2f → %.2f",
		rate, dur, flRate, float64(fl.requests)/float64(fl.target), flP99, flTot.Errors,
		vgRate, float64(vg.requests)/float64(vg.target), vgP99Intended, vgP99, flRate/vgRate, load0, load1)
}

// loadAvg is the machine's 1-minute load average, or -1 if unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return -1
	}
	return f
}
