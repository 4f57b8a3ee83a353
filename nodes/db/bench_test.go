package db

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// BenchmarkWriteThroughput drives PUTs into a 3-node cluster with fsync on,
// from N concurrent clients through the leader, and reports ops/s and the
// latency percentiles (go test -bench WriteThroughput -run XXX ./nodes/db).
func BenchmarkWriteThroughput(b *testing.B) {
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("fsync/clients=%d", clients), func(b *testing.B) {
			c := newCluster(b, 3)
			leader := c.nodes[c.leader()]
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			cl := dbclient.New("http://"+leader.httpAddr, dbclient.WithHTTPClient(hc))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			var (
				next   atomic.Int64
				failed atomic.Int64
				mu     sync.Mutex
				hist   = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
				wg     sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for w := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						t0 := time.Now()
						_, err := cl.Put(ctx, fmt.Sprintf("w%d-%d", w, i), "0123456789abcdef")
						d := time.Since(t0)
						if err != nil {
							failed.Add(1)
							continue
						}
						mu.Lock()
						_ = hist.RecordValue(d.Microseconds())
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d writes failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(hist.ValueAtQuantile(50))/1000, "p50-ms")
			b.ReportMetric(float64(hist.ValueAtQuantile(99))/1000, "p99-ms")
		})
	}
}
