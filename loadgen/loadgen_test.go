package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// collect runs Attack and returns its buckets summed up.
func collect(t *testing.T, ctx context.Context, spec AttackSpec) (Totals, []Bucket, Final, error) {
	t.Helper()
	var tot Totals
	var buckets []Bucket
	final, err := Attack(ctx, spec, func(b Bucket) {
		buckets = append(buckets, b)
		require.NoError(t, tot.Add(b))
	})
	return tot, buckets, final, err
}

func TestSpecValidate(t *testing.T) {
	ok := AttackSpec{Target: "http://127.0.0.1:1", Workload: "api", Rate: 10, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*AttackSpec)
		want   string
	}{
		{"valid", func(*AttackSpec) {}, ""},
		{"fractional rate", func(s *AttackSpec) { s.Rate, s.Duration = 0.5, 2*time.Second }, ""},
		{"wrong scheme", func(s *AttackSpec) { s.Target = "ftp://127.0.0.1:1" }, "scheme"},
		{"no host", func(s *AttackSpec) { s.Target = "http://" }, "no host"},
		{"bad url", func(s *AttackSpec) { s.Target = "http://[::1" }, "target"},
		{"unknown workload", func(s *AttackSpec) { s.Workload = "nope" }, "workload"},
		{"zero rate", func(s *AttackSpec) { s.Rate = 0 }, "rate"},
		{"NaN rate", func(s *AttackSpec) { s.Rate = nan() }, "rate"},
		{"zero duration", func(s *AttackSpec) { s.Duration = 0 }, "duration"},
		{"no request", func(s *AttackSpec) { s.Rate, s.Duration = 0.1, time.Second }, "no request"},
		{"huge duration", func(s *AttackSpec) { s.Duration = MaxDuration + 1 }, "duration"},
		{"negative timeout", func(s *AttackSpec) { s.Timeout = -1 }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mutate(&s)
			err := s.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestWorkloads(t *testing.T) {
	assert.Equal(t, []string{"api", "browse"}, Workloads())

	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		assert.Equal(t, "faultline-loadgen", r.UserAgent())
	}))
	defer srv.Close()
	tests := []struct {
		workload string
		want     map[string]int
	}{
		{"api", map[string]int{"/api/hello": 20}},
		{"browse", map[string]int{"/": 10, "/static/app.css": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			paths = nil
			_, _, final, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: tt.workload, Rate: 40, Duration: 500 * time.Millisecond})
			require.NoError(t, err)
			require.EqualValues(t, 20, final.Requests)
			got := map[string]int{}
			for _, p := range paths {
				got[p]++
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConstantRate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	// Low enough that a 2-core machine under -race keeps up; the stall test
	// below is the one at 1000 req/s.
	const rate, dur = 100, 3 * time.Second
	want := int64(rate * dur.Seconds())
	tot, buckets, final, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: rate, Duration: dur})
	require.NoError(t, err)
	assert.InDelta(t, want, final.Requests, float64(want)/100, "requested count ±1%")
	assert.Equal(t, final.Requests, tot.Requests, "buckets add up to the final count")
	assert.Equal(t, final.Requests, hits.Load(), "server saw every request")
	assert.Zero(t, tot.Errors)
	assert.Equal(t, tot.Requests, tot.Latency.TotalCount())
	assert.Positive(t, final.CPUSeconds)
	assert.GreaterOrEqual(t, final.WallSeconds, dur.Seconds())
	// 3 s of intended send times span 3 or 4 unix seconds.
	seconds := map[int64]bool{}
	for _, b := range buckets {
		seconds[b.Second] = true
	}
	assert.Contains(t, []int{3, 4}, len(seconds))
}

// The project's acceptance test for coordinated omission: a server that
// stalls for 1 s in the middle of a 3 s attack must show it in the p99, even
// though the requests sent during the stall are a third of the attack and
// each of them is answered.
func TestStallShowsInP99(t *testing.T) {
	start := time.Now().Add(300 * time.Millisecond)
	stallFrom, stallTo := start.Add(time.Second), start.Add(2*time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if now := time.Now(); now.After(stallFrom) && now.Before(stallTo) {
			select {
			case <-time.After(time.Until(stallTo)):
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()

	tot, _, final, err := collect(t, context.Background(), AttackSpec{
		Target: srv.URL, Workload: "api", Rate: 1000, Duration: 3 * time.Second, StartAt: start, Timeout: 10 * time.Second,
	})
	require.NoError(t, err)
	require.Positive(t, final.Requests)
	p99 := time.Duration(tot.Latency.ValueAtQuantile(99)) * time.Microsecond
	t.Logf("requests %d, errors %v, p50 %v, p99 %v, max %v, cpu %.2fs", final.Requests, tot.ErrorsByKind,
		time.Duration(tot.Latency.ValueAtQuantile(50))*time.Microsecond, p99,
		time.Duration(tot.Latency.Max())*time.Microsecond, final.CPUSeconds)
	assert.GreaterOrEqual(t, p99, 900*time.Millisecond)
}

func TestErrorKinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0) // close with RST
			conn.Close()
		}
	}))
	t.Cleanup(reset.Close)

	tests := []struct {
		name, target, kind string
	}{
		{"refused", closed, KindRefused},
		{"5xx", status(http.StatusServiceUnavailable), Kind5xx},
		{"4xx", status(http.StatusNotFound), Kind4xx},
		{"timeout", slow.URL, KindTimeout},
		{"reset", reset.URL, KindReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tot, _, final, err := collect(t, context.Background(), AttackSpec{
				Target: tt.target, Workload: "api", Rate: 20, Duration: 500 * time.Millisecond, Timeout: 200 * time.Millisecond,
			})
			require.NoError(t, err)
			require.EqualValues(t, 10, final.Requests)
			assert.Equal(t, final.Requests, tot.Errors)
			assert.Equal(t, map[string]int64{tt.kind: tot.Errors}, tot.ErrorsByKind)
		})
	}
}

func TestAttackCancel(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var buckets int
	final, err := Attack(ctx, AttackSpec{Target: srv.URL, Workload: "api", Rate: 100, Duration: time.Minute}, func(b Bucket) {
		buckets++
		cancel() // stop after the first flush
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, final.Error, "stopped early")
	assert.Less(t, final.Requests, int64(6000), "stopped long before the end")
	assert.Equal(t, final.Requests, hits.Load())

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = Attack(ctx, AttackSpec{Target: srv.URL, Workload: "api", Rate: 1, Duration: time.Second, StartAt: time.Now().Add(time.Hour)}, func(Bucket) {})
	require.ErrorIs(t, err, context.Canceled, "cancel while waiting for StartAt")
}

func TestStartAt(t *testing.T) {
	var first atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.CompareAndSwap(0, time.Now().UnixNano())
	}))
	defer srv.Close()
	at := time.Now().Add(500 * time.Millisecond)
	tot, buckets, _, err := collect(t, context.Background(), AttackSpec{Target: srv.URL, Workload: "api", Rate: 50, Duration: 200 * time.Millisecond, StartAt: at})
	require.NoError(t, err)
	assert.EqualValues(t, 10, tot.Requests)
	assert.GreaterOrEqual(t, first.Load(), at.UnixNano(), "no request before StartAt")
	require.NotEmpty(t, buckets)
	assert.GreaterOrEqual(t, buckets[0].Second, at.Unix())
}

func TestRecorderDeltas(t *testing.T) {
	rec := recorder{pending: map[int64]*acc{}}
	t0 := time.Unix(100, 0)
	rec.record(t0, t0.Add(2*time.Millisecond), "")
	rec.record(t0.Add(1500*time.Millisecond), t0.Add(1600*time.Millisecond), KindReset)
	var got []Bucket
	rec.flush(func(b Bucket) { got = append(got, b) })
	require.Len(t, got, 2)
	assert.Equal(t, []int64{100, 101}, []int64{got[0].Second, got[1].Second}, "oldest first")
	assert.EqualValues(t, 1, got[0].Requests)
	assert.Zero(t, got[0].Errors)
	assert.Equal(t, map[string]int64{KindReset: 1}, got[1].ErrorsByKind)

	// A late result for second 100 arrives as a delta holding only itself.
	rec.record(t0.Add(10*time.Millisecond), t0.Add(70*time.Second), KindTimeout)
	got = nil
	rec.flush(func(b Bucket) { got = append(got, b) })
	require.Len(t, got, 1)
	assert.EqualValues(t, 100, got[0].Second)
	assert.EqualValues(t, 1, got[0].Requests)

	var tot Totals
	require.NoError(t, tot.Add(got[0]))
	assert.InEpsilon(t, maxLatencyMicros, tot.Latency.Max(), 0.001, "latency past the range is clamped to 60 s")
	assert.EqualValues(t, 3, rec.total)

	rec.flush(func(b Bucket) { t.Fatalf("nothing changed, yet flushed %+v", b) })
}

// A request that went out 1 s late (the loadgen itself was stuck) and was
// answered in 1 ms must count as a 1 s latency: coordinated omission would
// report 1 ms.
func TestObserveMeasuresFromIntendedSend(t *testing.T) {
	start := time.Unix(1000, 0)
	rec := recorder{pending: map[int64]*acc{}, start: start, interval: 10 * time.Millisecond}
	rec.observe(&vegeta.Result{Seq: 99, Code: 200, Timestamp: start.Add(2 * time.Second), Latency: time.Millisecond})
	rec.observe(&vegeta.Result{Seq: 0, Code: 200, Timestamp: start.Add(10 * time.Millisecond), Latency: time.Millisecond})
	var got []Bucket
	rec.flush(func(b Bucket) { got = append(got, b) })
	require.Len(t, got, 2)
	assert.EqualValues(t, 1000, got[0].Second, "Seq 0 was due at +10 ms")
	assert.EqualValues(t, 1001, got[1].Second, "Seq 99 at 10 ms intervals was due at +1 s")
	var tot Totals
	require.NoError(t, tot.Add(got[0]))
	require.NoError(t, tot.Add(got[1]))
	assert.InEpsilon(t, 1001000, tot.Latency.Max(), 0.001)
	assert.InEpsilon(t, 1000, tot.Latency.Min(), 0.001)
}

func TestPacer(t *testing.T) {
	tests := []struct {
		rate     float64
		d        time.Duration
		hits     uint64
		interval time.Duration
	}{
		{1000, 3 * time.Second, 3000, time.Millisecond},
		{3, time.Second, 3, 333333333},
		{0.5, 10 * time.Second, 5, 2 * time.Second},
		{0.25, 4 * time.Second, 1, 4 * time.Second},
		{2.5, 2 * time.Second, 5, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		p := newPacer(tt.rate, tt.d)
		assert.Equal(t, tt.hits, p.hits, "rate %v", tt.rate)
		assert.Equal(t, tt.interval, p.interval, "rate %v", tt.rate)
		assert.InEpsilon(t, tt.rate, p.Rate(0), 1e-6)

		wait, stop := p.Pace(0, 0)
		assert.False(t, stop)
		assert.Equal(t, tt.interval, wait, "first hit one interval in, as observe assumes")
		if tt.hits > 1 {
			wait, _ = p.Pace(tt.interval, 1)
			assert.Equal(t, tt.interval, wait, "then one per interval")
		}

		_, stop = p.Pace(0, tt.hits)
		assert.True(t, stop, "stops after its count")
		wait, stop = p.Pace(tt.d, 0)
		assert.False(t, stop, "late: keeps sending what it owes")
		assert.LessOrEqual(t, wait, time.Duration(0), "at once")
		_, stop = p.Pace(tt.d+tt.d/10+time.Second+1, 0)
		assert.True(t, stop, "but not past the deadline")
	}
}

func TestTotalsRejectsBadSnapshot(t *testing.T) {
	s := NewHistogram().Export()
	s.Counts = []int64{-1}
	var tot Totals
	require.Error(t, tot.Add(Bucket{Second: 1, Requests: 1, Latency: s}))
}
