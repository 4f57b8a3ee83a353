package lb

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkThroughput compares requests/s straight to a backend with the
// same requests through the lb (both on loopback, keep-alive clients). The
// gap is the lb's cost; HAProxy's side-by-side run is `make bench`.
func BenchmarkThroughput(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	backendAddr := backend.Listener.Addr().String()
	for _, policy := range []string{RoundRobin, LeastConn} {
		cfg := Config{Backends: []string{backendAddr}, Policy: policy, HealthInterval: time.Hour,
			Fall: 2, Rise: 1, DialTimeout: time.Second, Timeout: 10 * time.Second}
		l, err := New(cfg, prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		l.checkRound(context.Background())
		front := httptest.NewServer(l)
		b.Run("lb-"+policy, func(b *testing.B) { load(b, front.URL+"/x") })
		front.Close()
	}
	b.Run("direct", func(b *testing.B) { load(b, backend.URL+"/x") })
}

func load(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
