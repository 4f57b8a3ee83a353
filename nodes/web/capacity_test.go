package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lg "github.com/faultline/faultline/loadgen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCapacityBoundsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int64
	h := newCapacity(3, 20*time.Millisecond).wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond) // overlap with the others if the bound leaks
		inFlight.Add(-1)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	start := time.Now()
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := srv.Client().Get(srv.URL)
			if assert.NoError(t, err) {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	// The bound is the property; whether all three cores were ever busy at
	// once depends on the scheduler of a loaded machine.
	assert.LessOrEqual(t, peak.Load(), int64(3), "never more than cores at once")
	assert.Positive(t, peak.Load())
	// 12 requests through 3 cores at ≥ 25 ms each take at least 4 rounds.
	assert.GreaterOrEqual(t, time.Since(start), 4*25*time.Millisecond)
}

func TestCapacityGivesUpWithTheClient(t *testing.T) {
	var served atomic.Int64
	h := newCapacity(1, time.Hour).wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Zero(t, served.Load())
}

// One node with cores = 4 and service time 50 ms serves about 80 req/s: a
// step attack finds the highest rate whose every second keeps p99 under
// 150 ms within 10% of that. Above 80 req/s the queue grows by the excess
// every second, so the p99 passes the bound within the step's second
// second; at or below it stays near the 50 ms service time.
func TestCapacityStepSearch(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s load run")
	}
	srv := httptest.NewServer(Handler("web-1", "r", prometheus.NewRegistry(), WithCapacity(4, 50*time.Millisecond)))
	defer srv.Close()

	// Start on a whole second so each 2 s step holds two full seconds.
	start := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second)
	spec := lg.AttackSpec{
		Target: srv.URL, Workload: "api", Duration: 10 * time.Second, StartAt: start, Timeout: 5 * time.Second,
		Step: &lg.Step{From: 70, By: 5, Max: 90, Every: 2 * time.Second},
	}
	var buckets []lg.Bucket
	final, err := lg.Attack(context.Background(), spec, func(b lg.Bucket) { buckets = append(buckets, b) })
	require.NoError(t, err)
	c, err := lg.MaxSustainableRate(spec, start, buckets, lg.SLO{P99: 150 * time.Millisecond})
	require.NoError(t, err)
	secs, err := lg.PerSecond(buckets)
	require.NoError(t, err)
	for _, s := range secs {
		t.Logf("t=%2d target %3d sent %3d p99 %4dms cpu %.2f", s.Second-start.Unix(), s.Target, s.Requests,
			s.Latency.ValueAtQuantile(99)/1000, s.CPU)
	}
	t.Logf("max sustainable %.0f req/s after %d steps; broke: %s; loadgen cpu %.2fs", c.Rate, c.Steps, c.Broke, final.CPUSeconds)
	assert.InEpsilon(t, 80, c.Rate, 0.10)
	assert.NotEmpty(t, c.Broke, "the search found the limit rather than running out of steps")
}

func TestCapacityFlags(t *testing.T) {
	tests := []struct {
		cores   int
		st      time.Duration
		options int
		err     bool
	}{
		{0, 0, 0, false},
		{4, 50 * time.Millisecond, 1, false},
		{4, 0, 1, false},
		{0, time.Millisecond, 0, true},
		{-1, 0, 0, true},
		{1, -1, 0, true},
	}
	for _, tt := range tests {
		opts, err := capacityOptions(tt.cores, tt.st)
		if tt.err {
			require.Error(t, err, "%d %v", tt.cores, tt.st)
			continue
		}
		require.NoError(t, err)
		assert.Len(t, opts, tt.options)
	}
}
